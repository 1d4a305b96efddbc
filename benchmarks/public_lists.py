"""Decode throughput of the self-describing, Slovenian and Czech lists (public-captures.json).

Each capture is decoded again and again through the library path (HDLC content reader, one
AutoDecoder per list, so repeat frames meet their compiled template as a meter's would), and the
readings per second of each list are printed (a reading may take several HDLC frames), in CPU
seconds of this process (``time.process_time``: on a shared machine, waiting for a core is not
decoding time).  The best of ``--repeats`` runs.

Usage: python benchmarks/public_lists.py [--frames N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from han2mqtt import AutoDecoder
from han2mqtt.protocol.stream import ContentReader

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "public-captures.json"


def _contents(item: dict[str, object]) -> list[bytes]:
    raw = bytes.fromhex(str(item["hex_or_text"]))
    return list(ContentReader("hdlc").read(raw)) if item["format"] == "hdlc" else [raw]


def _rate(item: dict[str, object], frames: int) -> float:
    key = item.get("key_hex")
    decoder = AutoDecoder(encryption_key=bytes.fromhex(str(key)) if key else None)
    contents = _contents(item)
    start = time.process_time()
    for _ in range(frames):
        for content in contents:
            decoder.feed(content)
    return frames / (time.process_time() - start)


def main() -> None:
    """Print readings/s per public capture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    for item in json.loads(VECTORS.read_text(encoding="utf-8")):
        best = max(_rate(item, options.frames) for _ in range(options.repeats))
        print(f"{item['id']:45s} {best:10,.0f} readings/s")


if __name__ == "__main__":
    main()
