"""Decode throughput: han2mqtt vs amshan 2.1.1 on the same long mixed stream, in the same run.

The stream is real corpus frames (Aidon, Kaifa and Kamstrup lists 1, 2 and 3) repeated, fed in
64-byte chunks (a serial read delivers small chunks).  The *fleet* stream is the same mix with
every frame from another meter: the meter id in each frame that carries one is replaced (same
vendor prefix, a new serial each frame) and the FCS recomputed, as a broker relaying a fleet
delivers it. Each library reads frames and decodes every
valid one into its normalized dictionary. amshan is installed into its own virtual environment
(``benchmarks/.venv-amshan``) on first use, so it never becomes a dependency of ours.

P1 telegrams are compared with ndokter's dsmr_parser (``TelegramParser``, DSMR 5 specification,
CRC checked) *in the same process*: it is installed into ``benchmarks/.venv-dsmr`` on first use
and imported from there, never into our environment. Ours reads the same telegrams through the
documented stream path, ``ContentReader("auto")`` + ``AutoDecoder.feed``, in 4096-byte chunks;
dsmr_parser is handed each telegram as text, already cut out of the stream (its cheapest case).

Each side reports the best of ``--repeats`` runs, taken in turn (ours, amshan, ours, ...), in CPU
seconds of its own process (``time.process_time``): on a shared machine, waiting for a core is
not decoding time, and a busy neighbour then disturbs the ratio much less.

Usage: python benchmarks/decode.py [--frames N] [--amshan-frames N] [--repeats N] [--no-amshan]
                                  [--stream both|one|fleet|p1] [--no-dsmr] [--telegrams N]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from han2mqtt import AutoDecoder, HdlcFrameReader
from han2mqtt.protocol.crc import crc16_x25
from han2mqtt.protocol.stream import ContentReader

ROOT = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("HAN2MQTT_CORPUS", ROOT.parent / "tests" / "vectors" / "frames.json"))
AMSHAN_VENV = ROOT / ".venv-amshan"
AMSHAN_VERSION = "2.1.1"
DSMR_VENV = ROOT / ".venv-dsmr"
DSMR_VERSION = "1.11.2"
P1_TELEGRAM = "nl-dsmr50-iskra"
P1_CHUNK = 4096
CHUNK = 64
MIX = (
    "no-aidon-6534-list1",
    "no-aidon-6534-list2",
    "no-aidon-6534-list3",
    "no-kaifa-ma304h3e-list1-2017",
    "no-kaifa-ma304h3e-list2-2017",
    "no-kaifa-ma304h4-list1-tn",
    "no-kamstrup-list1-2018",
    "no-kamstrup-list2-2017-oldfw",
    "no-kamstrup-1p-list1-nullpad",
    "se-aidon-doc-3p-list",
)

AMSHAN_WORKER = """
import json, sys, time, tracemalloc
from han.hdlc import HdlcFrameReader
from han.autodecoder import AutoDecoder
stream = bytes.fromhex(sys.stdin.read())
chunk = int(sys.argv[1])
def run():
    reader, decoder, decoded = HdlcFrameReader(), AutoDecoder(), 0
    for start in range(0, len(stream), chunk):
        for frame in reader.read(stream[start:start + chunk]):
            if frame.is_good_ffc and frame.is_expected_length and frame.payload:
                if decoder.decode_message_payload(frame.payload) is not None:
                    decoded += 1
    return decoded
elapsed = float("inf")
for _ in range(int(sys.argv[2])):
    begin = time.process_time()
    decoded = run()
    elapsed = min(elapsed, time.process_time() - begin)
tracemalloc.start()
run()
peak = tracemalloc.get_traced_memory()[1]
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"decoded": decoded, "seconds": elapsed, "peak_bytes": peak,
                  "maxrss_kib": int(hwm.split()[1])}))
"""


def build_stream(frames: int) -> tuple[bytes, int]:
    """A stream of about ``frames`` frames cycling through the mix; returns it and its count."""
    items = {item["id"]: item for item in json.loads(CORPUS.read_text())}
    unit = [bytes.fromhex(items[name]["hex_or_text"]) for name in MIX]
    repeats = max(1, frames // len(unit))
    return b"".join(unit) * repeats, repeats * len(unit)


def build_fleet_stream(frames: int) -> tuple[bytes, int]:
    """The mix with a new meter id in every frame that carries one; returns it and its count."""
    items = {item["id"]: item for item in json.loads(CORPUS.read_text())}
    unit = [bytes.fromhex(items[name]["hex_or_text"]) for name in MIX]
    ids = [_meter_id(raw) for raw in unit]
    repeats = max(1, frames // len(unit))
    parts = []
    for serial in range(repeats * len(unit)):
        raw, meter_id = unit[serial % len(unit)], ids[serial % len(unit)]
        if meter_id is not None:
            raw = _with_meter_id(raw, meter_id, f"{meter_id[:-7]}{serial:07d}")
        parts.append(raw)
    return b"".join(parts), repeats * len(unit)


def _meter_id(raw: bytes) -> str | None:
    decoder = AutoDecoder()
    (frame,) = HdlcFrameReader().read(raw)
    reading = decoder.decode(frame.payload)
    meter_id = reading.fields.get("meter_id")
    return str(meter_id) if meter_id is not None else None


def _with_meter_id(raw: bytes, old: str, new: str) -> bytes:
    """The frame with the meter id replaced (same length) and its FCS recomputed."""
    body = raw[1:-3].replace(old.encode(), new.encode())
    return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"


def run_ours(stream: bytes) -> int:
    """Read and decode the whole stream; return the number of decoded frames."""
    reader, decoder, decoded = HdlcFrameReader(), AutoDecoder(), 0
    for start in range(0, len(stream), CHUNK):
        for frame in reader.read(stream[start : start + CHUNK]):
            if frame.is_valid and decoder.decode_frame_content(frame.payload) is not None:
                decoded += 1
    return decoded


def measure_ours(stream: bytes, repeats: int, *, trace: bool = True) -> dict[str, float]:
    """Best of ``repeats`` runs: the least disturbed by whatever else the machine does."""
    run_ours(stream[: len(stream) // 20])  # warm caches (OBIS formatting, imports)
    elapsed, decoded = float("inf"), 0
    for _ in range(repeats):
        begin = time.process_time()
        decoded = run_ours(stream)
        elapsed = min(elapsed, time.process_time() - begin)
    peak = 0
    if trace:
        tracemalloc.start()
        run_ours(stream)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {"decoded": decoded, "seconds": elapsed, "peak_bytes": peak}


def measure_both(
    stream: bytes, small: bytes, repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Both libraries, one run each in turn, best of ``repeats``: on a shared machine a burst of
    load then slows both sides alike instead of only the one measured at that moment."""
    ours: dict[str, float] = {}
    theirs: dict[str, float] = {}
    for repeat in range(repeats):
        mine = measure_ours(stream, 1, trace=repeat == repeats - 1)
        other = measure_amshan(small, 1)
        ours = mine if not ours or mine["seconds"] < ours["seconds"] else ours
        ours["peak_bytes"] = max(ours["peak_bytes"], mine["peak_bytes"])
        theirs = other if not theirs or other["seconds"] < theirs["seconds"] else theirs
    return ours, theirs


OTHER_FORMATS = (
    ("encrypted HDLC (Kamstrup, GCM tag checked)", "dk-kamstrup-omnipower-enc-testkey"),
    ("encrypted HDLC + block transfer (L&G E450)", "xx-landisgyr-e450-gbt-enc-testkey"),
    ("encrypted M-Bus, 2 segments (Kaifa AT)", "at-kaifa-tinetz-doc-testkey"),
    ("P1 telegram (DSMR 5)", "nl-dsmr50-iskra"),
)


def measure_other_formats(repeats: int, count: int = 5000) -> None:
    """Encrypted and P1 frames through ContentReader + AutoDecoder.feed (amshan has neither)."""
    items = {item["id"]: item for item in json.loads(CORPUS.read_text())}
    plain = bytes.fromhex(items["no-kamstrup-list1-2018"]["hex_or_text"])
    print("other formats (han2mqtt only: amshan cannot decrypt or read M-Bus):")
    for label, item_id in (("plaintext HDLC (Kamstrup list 1)", None), *OTHER_FORMATS):
        item = items[item_id] if item_id else None
        raw = plain if item is None else _raw(item)
        keys = _keys(item) if item else (None, None)
        stream = raw * count
        best = float("inf")
        for _ in range(repeats):
            reader = ContentReader("auto")
            decoder = AutoDecoder(encryption_key=keys[0], authentication_key=keys[1])
            begin = time.process_time()
            decoded = 0
            for start in range(0, len(stream), 4096):
                for content in reader.read(stream[start : start + 4096]):
                    decoded += decoder.feed(content) is not None
            best = min(best, time.process_time() - begin)
        print(f"  {label:45} {decoded / best:>9,.0f} frames/s {1e6 * best / decoded:6.1f} us/frame")


def _raw(item: dict[str, str]) -> bytes:
    text = item["hex_or_text"]
    return text.encode() + b"\r\n" if item["format"] == "p1" else bytes.fromhex(text)


def _keys(item: dict[str, str]) -> tuple[bytes | None, bytes | None]:
    key, auth = item.get("key_hex"), item.get("auth_key_hex")
    return (bytes.fromhex(key) if key else None), (bytes.fromhex(auth) if auth else None)


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM).

    Not ``ru_maxrss``: Linux carries it over ``execve``, so a child started by this process would
    report this process's peak as its own (the amshan worker once showed exactly ours)."""
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])


def ensure_amshan() -> Path:
    python = AMSHAN_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(AMSHAN_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"amshan=={AMSHAN_VERSION}"], check=True
        )
    return python


def measure_amshan(stream: bytes, repeats: int) -> dict[str, float]:
    result = subprocess.run(
        [str(ensure_amshan()), "-c", AMSHAN_WORKER, str(CHUNK), str(repeats)],
        input=stream.hex(),
        capture_output=True,
        text=True,
        check=True,
    )
    measured: dict[str, float] = json.loads(result.stdout)
    return measured


def ensure_dsmr_parser() -> None:
    """Install dsmr_parser into its own venv (first use) and make it importable here."""
    python = DSMR_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DSMR_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"dsmr-parser=={DSMR_VERSION}"], check=True
        )
    found = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    site = found.stdout.strip()
    if site not in sys.path:
        sys.path.append(site)  # after ours: its own dependencies never shadow ours


DSMR_NAMES = {
    "ELECTRICITY_USED_TARIFF_1": "1-0:1.8.1.255",
    "ELECTRICITY_USED_TARIFF_2": "1-0:1.8.2.255",
    "ELECTRICITY_DELIVERED_TARIFF_1": "1-0:2.8.1.255",
    "ELECTRICITY_DELIVERED_TARIFF_2": "1-0:2.8.2.255",
    "CURRENT_ELECTRICITY_USAGE": "1-0:1.7.0.255",
    "CURRENT_ELECTRICITY_DELIVERY": "1-0:2.7.0.255",
    "INSTANTANEOUS_VOLTAGE_L1": "1-0:32.7.0.255",
    "INSTANTANEOUS_VOLTAGE_L2": "1-0:52.7.0.255",
    "INSTANTANEOUS_VOLTAGE_L3": "1-0:72.7.0.255",
    "INSTANTANEOUS_CURRENT_L1": "1-0:31.7.0.255",
    "INSTANTANEOUS_CURRENT_L2": "1-0:51.7.0.255",
    "INSTANTANEOUS_CURRENT_L3": "1-0:71.7.0.255",
    "INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE": "1-0:21.7.0.255",
    "INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE": "1-0:41.7.0.255",
    "INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE": "1-0:61.7.0.255",
    "INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE": "1-0:22.7.0.255",
    "INSTANTANEOUS_ACTIVE_POWER_L2_NEGATIVE": "1-0:42.7.0.255",
    "INSTANTANEOUS_ACTIVE_POWER_L3_NEGATIVE": "1-0:62.7.0.255",
}
"""dsmr_parser's names of the DSMR 5 registers, and their OBIS codes, to compare the values."""


def compare_values(telegram: bytes, parse: Callable[[str], object]) -> str:
    """Our values (through the plan) against dsmr_parser's, register by register."""
    decoder = AutoDecoder()
    decoder.decode(telegram)  # the first telegram learns the plan
    ours = decoder.decode(telegram).obis
    theirs = parse(telegram.decode("ascii"))
    wrong = [
        f"{name}: ours {ours.get(code)!r}, dsmr_parser {getattr(theirs, name).value}"
        for name, code in DSMR_NAMES.items()
        if Decimal(str(ours.get(code))) != getattr(theirs, name).value
    ]
    if wrong:
        return "VALUES DIFFER: " + "; ".join(wrong)
    return f"the {len(DSMR_NAMES)} registers both read are equal"


def run_ours_p1(stream: bytes) -> int:
    """The documented stream path: ContentReader("auto") + AutoDecoder.feed."""
    reader, decoder, decoded = ContentReader("auto"), AutoDecoder(), 0
    for start in range(0, len(stream), P1_CHUNK):
        for content in reader.read(stream[start : start + P1_CHUNK]):
            decoded += decoder.feed(content) is not None
    return decoded


def compare_p1(repeats: int, count: int, *, dsmr: bool) -> None:
    """DSMR 5 telegrams: ours through the stream path, dsmr_parser's TelegramParser, in turn."""
    items = {item["id"]: item for item in json.loads(CORPUS.read_text())}
    telegram = _raw(items[P1_TELEGRAM])
    stream = telegram * count
    texts = [telegram.decode("ascii")] * count
    parse: Callable[[str], object] | None = None
    if dsmr:
        ensure_dsmr_parser()
        # Imported by name: the module lives in the benchmark's venv, not in ours (nor mypy's).
        specifications = importlib.import_module("dsmr_parser.telegram_specifications")
        parsers = importlib.import_module("dsmr_parser.parsers")
        parse = parsers.TelegramParser(specifications.V5).parse
    run_ours_p1(stream[: len(stream) // 20])  # warm up (first telegram learns its plan)
    ours = theirs = float("inf")
    for _ in range(repeats):
        begin = time.process_time()
        decoded = run_ours_p1(stream)
        ours = min(ours, time.process_time() - begin)
        if parse is not None:
            begin = time.process_time()
            for text in texts:
                parse(text)
            theirs = min(theirs, time.process_time() - begin)
    rate = decoded / ours
    print(f"P1 telegrams ({P1_TELEGRAM}, {len(telegram)} bytes) x {count}, best of {repeats}:")
    print(f"  han2mqtt   : {rate:>9,.0f} telegrams/s, {1e6 / rate:6.1f} us/telegram")
    if decoded != count:
        print(f"WARNING: han2mqtt decoded {decoded} of {count} telegrams")
    if parse is not None:
        their_rate = count / theirs
        print(
            f"  dsmr_parser {DSMR_VERSION}: {their_rate:>9,.0f} telegrams/s, "
            f"{1e6 / their_rate:6.1f} us/telegram"
        )
        print(f"  ratio      : han2mqtt is {rate / their_rate:.1f}x dsmr_parser's throughput")
        print(f"  values     : {compare_values(telegram, parse)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--amshan-frames", type=int, default=5_000)
    parser.add_argument("--no-amshan", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--stream", choices=("both", "one", "fleet", "p1"), default="both")
    parser.add_argument("--no-dsmr", action="store_true", help="P1 without dsmr_parser")
    parser.add_argument("--telegrams", type=int, default=3000, help="P1 telegrams per run")
    args = parser.parse_args()
    if args.stream == "p1":
        compare_p1(args.repeats, args.telegrams, dsmr=not args.no_dsmr)
        return
    if args.stream in ("both", "one"):
        compare(args, "one meter", build_stream)
    if args.stream in ("both", "fleet"):
        compare(args, "fleet (every frame from another meter)", build_fleet_stream)
    if args.stream != "fleet":
        measure_other_formats(args.repeats)
        compare_p1(args.repeats, args.telegrams, dsmr=not args.no_dsmr)


def compare(
    args: argparse.Namespace, label: str, build: Callable[[int], tuple[bytes, int]]
) -> None:
    """Measure one stream with both libraries and print the ratio."""
    stream, count = build(args.frames)
    small, small_count = build(args.amshan_frames)
    theirs: dict[str, float] = {}
    if args.no_amshan:
        ours = measure_ours(stream, args.repeats)
    else:
        ours, theirs = measure_both(stream, small, args.repeats)
    ours_rate = ours["decoded"] / ours["seconds"]
    print(
        f"{label}: {count} frames, {len(stream)} bytes, {CHUNK}-byte chunks, "
        f"mix of {len(MIX)} lists"
    )
    print(
        f"  han2mqtt : {ours['decoded']:>7} frames decoded in {ours['seconds']:.3f} s = "
        f"{ours_rate:>9.0f} frames/s, {1e6 / ours_rate:.1f} us/frame, "
        f"peak traced memory {ours['peak_bytes'] / 1024:.0f} KiB"
    )
    if ours["decoded"] != count:
        print(f"WARNING: han2mqtt decoded {ours['decoded']} of {count} frames")
    if not theirs:
        return
    theirs_rate = theirs["decoded"] / theirs["seconds"]
    print(
        f"  amshan {AMSHAN_VERSION}: {theirs['decoded']:>7} frames decoded in "
        f"{theirs['seconds']:.3f} s = "
        f"{theirs_rate:>9.0f} frames/s, {1e6 / theirs_rate:.1f} us/frame, "
        f"peak traced memory {theirs['peak_bytes'] / 1024:.0f} KiB (of {small_count} frames)"
    )
    print(f"  ratio    : han2mqtt is {ours_rate / theirs_rate:.1f}x amshan's throughput")
    rss = peak_rss_kib()
    print(
        f"  max RSS  : han2mqtt process {rss / 1024:.1f} MiB, "
        f"amshan process {theirs['maxrss_kib'] / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
