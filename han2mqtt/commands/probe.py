"""``han2mqtt probe``: find a meter port's line settings, framing, meter and encryption by itself.

The port is read a few seconds at each setting meters use (:data:`SETTINGS`), and what was read
is judged only on evidence noise cannot forge: frames whose checksums match (HDLC FCS and HCS,
M-Bus checksum, P1 CRC or identification and OBIS lines, TIC group checksums).  The setting with
the most good frames and the fewest bad ones wins: a 2400 8E1 meter read at 8N1 still gives good
frames now and then, but read at 8E1 it gives no bad ones.

A 7E1 line read at 8N1 delivers its characters with the even-parity bit in bit 7.  When nearly
every byte read at an 8-bit setting carries that bit, the line is 7E1 (a TCP serial server set to
8N1 in front of a Linky or a DSMR 2.2 meter): the bytes are read again without it, and the
setting reported is 7E1.

The decision (:func:`analyse`, :func:`choose`) is pure; :func:`probe` drives any
:class:`LinePort`, so the tests drive it with a fake port and real bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import IO, Final, Protocol

from han2mqtt.autodecoder import AutoDecoder
from han2mqtt.errors import DecodeError, MissingKeyError, SecurityError
from han2mqtt.io.lineport import AS_SET, LineSetting
from han2mqtt.meters.p1 import MANUFACTURERS
from han2mqtt.protocol.apdu import ApduTag, strip_llc
from han2mqtt.protocol.security import parse_ciphered_apdu
from han2mqtt.protocol.stream import ContentReader, Format
from han2mqtt.protocol.tic import STX, parse_frame

__all__ = [
    "AS_SET",
    "SETTINGS",
    "Finding",
    "LinePort",
    "LineSetting",
    "analyse",
    "choose",
    "config_snippet",
    "has_parity_bit",
    "probe",
    "report",
    "run_probe",
]


SETTINGS: Final = (
    LineSetting(2400, "N", 8),  # HAN: Kaifa, Kamstrup (Norway, Sweden, Denmark)
    LineSetting(2400, "E", 8),  # HAN: Aidon; Austrian M-Bus ports
    LineSetting(115200, "N", 8),  # DSMR 4/5 P1, Nordic and Belgian P1 ports
    LineSetting(9600, "E", 7),  # DSMR 2.2/3 P1; Linky TIC standard mode
    LineSetting(1200, "E", 7),  # Linky TIC historique mode (and older French meters)
)
"""The settings meters use, in the order they are tried."""
_FRAMINGS: Final[tuple[Format, ...]] = ("hdlc", "mbus", "p1", "tic")
_PARITY_SHARE: Final = 0.98
"""Share of bytes whose bit 7 must be their even-parity bit to call the line 7E1."""
_PARITY_MIN_BYTES: Final = 64
_SEVEN_BITS: Final = bytes(b & 0x7F for b in range(256))
_CIPHERED: Final = frozenset({ApduTag.GENERAL_GLO_CIPHERING, ApduTag.GENERAL_DED_CIPHERING})


class LinePort(Protocol):
    """A port the probe can set and read (a serial device, or a TCP serial server)."""

    def configure(self, setting: LineSetting) -> bool:
        """Set the line; False when the port cannot take that setting (skipped)."""
        ...

    def read(self, seconds: float) -> bytes:
        """What arrives within ``seconds``."""
        ...


@dataclass(frozen=True, slots=True)
class Finding:
    """What was found at one setting.

    Attributes:
        setting: the line setting the frames came with (7E1 when the parity bit told).
        framing: ``hdlc``, ``mbus``, ``p1`` or ``tic``.
        good: frames whose checksums match.
        bad: frames of that framing that did not.
        meter_id: the meter's id, when a frame in clear carries it.
        manufacturer: from the frame (list id, P1 flag, a ciphered frame's system title).
        ciphered: frames are encrypted: ``meter.encryption_key`` is needed.
        tic_mode: ``historique`` or ``standard`` for TIC.
    """

    setting: LineSetting
    framing: Format
    good: int
    bad: int
    meter_id: str | None = None
    manufacturer: str | None = None
    ciphered: bool = False
    tic_mode: str | None = None

    @property
    def score(self) -> tuple[int, int]:
        """More good frames first, then fewer bad ones."""
        return (self.good, -self.bad)


def has_parity_bit(data: bytes) -> bool:
    """Whether bit 7 of nearly every byte is the even-parity bit of the other seven (7E1 at 8N1).

    Random or binary bytes match half the time; an all-ASCII stream with bit 7 always 0 is 7-bit
    text, not parity evidence (at least some bytes must have bit 7 set).
    """
    if len(data) < _PARITY_MIN_BYTES or not any(b & 0x80 for b in data):
        return False
    matching = sum((b >> 7) == ((b & 0x7F).bit_count() & 1) for b in data)
    return matching >= _PARITY_SHARE * len(data)


def analyse(data: bytes, setting: LineSetting) -> Finding | None:
    """The best framing in ``data`` read at ``setting``; None when no frame checks."""
    if setting.bytesize == 8 and has_parity_bit(data):
        setting = replace(setting, parity="E", bytesize=7)
        data = data.translate(_SEVEN_BITS)
    findings = [found for framing in _FRAMINGS if (found := _framing(data, setting, framing))]
    return max(findings, key=lambda found: found.score, default=None)


def _framing(data: bytes, setting: LineSetting, framing: Format) -> Finding | None:
    reader = ContentReader(framing)
    contents = reader.read(data)
    if not contents:
        return None
    finding = Finding(setting, framing, len(contents), reader.stats.bad)
    return _describe(finding, contents)


def _describe(finding: Finding, contents: list[bytes]) -> Finding:
    """Meter id, manufacturer, encryption: from the first content that tells."""
    decoder = AutoDecoder()
    for content in contents:
        if content[:1] == bytes((STX,)):
            frame = parse_frame(content)
            finding = replace(finding, tic_mode=frame.mode.value if frame.mode else None)
        ciphered = _ciphered_maker(content)
        if ciphered is not None:
            return replace(finding, ciphered=True, manufacturer=ciphered or None)
        try:
            reading = decoder.feed(content)
        except MissingKeyError:
            return replace(finding, ciphered=True)
        except DecodeError:
            continue
        if reading is not None and reading.meter_id is not None:
            maker = reading.fields.get("meter_manufacturer")
            return replace(finding, meter_id=reading.meter_id, manufacturer=_maker(maker, finding))
    return finding


def _maker(value: object, finding: Finding) -> str | None:
    if isinstance(value, str) and value:
        return value
    return finding.manufacturer


def _ciphered_maker(content: bytes) -> str | None:
    """For a ciphered APDU, the manufacturer flag of its system title ("" if unreadable)."""
    apdu = strip_llc(content)
    if not apdu or apdu[0] not in _CIPHERED:
        return None
    try:
        flag = parse_ciphered_apdu(apdu).system_title[:3].decode("ascii")
    except (SecurityError, DecodeError, UnicodeDecodeError):
        return ""
    return MANUFACTURERS.get(flag.upper(), flag) if flag.isalpha() else ""


def choose(findings: Iterable[Finding]) -> Finding | None:
    """The best finding: most good frames, then fewest bad (earlier settings win ties)."""
    best: Finding | None = None
    for found in findings:
        if best is None or found.score > best.score:
            best = found
    return best


def probe(
    port: LinePort,
    settings: Sequence[LineSetting] = SETTINGS,
    seconds: float = 4.0,
    *,
    log: list[str] | None = None,
) -> Finding | None:
    """Read ``port`` at each setting for ``seconds``; the best finding, or None.

    ``log`` gets one line per setting tried (what was seen there).
    """
    findings = []
    for setting in settings:
        if not port.configure(setting):
            _note(log, f"{setting}: the port does not take this setting, skipped")
            continue
        data = port.read(seconds)
        found = analyse(data, setting)
        _note(log, f"{setting}: {len(data)} bytes, " + _summary(found))
        if found is not None:
            findings.append(found)
    return choose(findings)


def _note(log: list[str] | None, line: str) -> None:
    if log is not None:
        log.append(line)


def _summary(found: Finding | None) -> str:
    if found is None:
        return "no frame"
    return f"{found.good} {found.framing} frames ({found.bad} bad) at {found.setting}"


_FRAMING_NAMES: Final = {
    "hdlc": "HDLC (DLMS/COSEM, HAN port)",
    "mbus": "M-Bus long frames (DLMS/COSEM)",
    "p1": "P1 telegrams (DSMR / IEC 62056-21)",
    "tic": "TIC (Linky, Télé-Information Client)",
}


def report(found: Finding) -> list[str]:
    """The lines that tell the user what was found."""
    framing = _FRAMING_NAMES.get(found.framing, found.framing)
    if found.tic_mode:
        framing += f", {found.tic_mode} mode"
    lines = [
        f"found: {framing} at {found.setting}",
        f"frames: {found.good} good, {found.bad} bad",
        f"manufacturer: {found.manufacturer or 'not stated by the frames'}",
        f"meter id: {found.meter_id or ('in the ciphered part' if found.ciphered else 'none')}",
    ]
    if found.ciphered:
        lines.append(
            "ciphered: yes, set meter.encryption_key (and meter.authentication_key if given): "
            "ask the grid company for the meter's keys"
        )
    else:
        lines.append("ciphered: no")
    return lines


def config_snippet(
    found: Finding, *, device: str | None = None, address: tuple[str, int] | None = None
) -> str:
    """The ``source:`` (and ``meter:``) section to paste into config.yaml."""
    lines = ["source:"]
    if address is not None:
        lines += ["  type: tcp", f"  host: {address[0]}", f"  port: {address[1]}"]
    else:
        setting = found.setting
        lines += [
            "  type: serial",
            f"  device: {device}",
            f"  baudrate: {setting.baudrate}",
            f"  parity: {setting.parity}",
            f"  bytesize: {setting.bytesize}",
        ]
    lines.append(f"  format: {found.framing}")
    if address is not None and found.setting.bytesize == 7:
        lines.append("  # the serial server must send the meter's 7E1 characters (set it to 7E1)")
    if found.ciphered:
        lines += ["meter:", '  encryption_key: "<32 hex digits from the grid company>"']
    return "\n".join(lines) + "\n"


def run_probe(
    *,
    device: str | None,
    address: tuple[str, int] | None,
    seconds: float,
    out: IO[str],
    err: IO[str],
) -> int:
    """``han2mqtt probe``: 0 when a meter was found (report and snippet on ``out``), else 1.

    Raises:
        TransportError: the port cannot be opened (or is lost while probing).
    """
    from han2mqtt.io.lineport import SerialLinePort, TcpLinePort  # noqa: PLC0415 - I/O edge

    log: list[str] = []
    if address is not None:
        with TcpLinePort(*address) as tcp:
            found = probe(tcp, (AS_SET,), seconds * len(SETTINGS), log=log)
    else:
        assert device is not None
        with SerialLinePort(device) as port:
            found = probe(port, SETTINGS, seconds, log=log)
    for line in log:
        err.write(f"han2mqtt probe: {line}\n")
    if found is None:
        err.write("han2mqtt probe: no meter frame found at any setting (is the adapter wired?)\n")
        return 1
    out.write("\n".join(report(found)) + "\n\n")
    out.write(config_snippet(found, device=device, address=address))
    return 0
