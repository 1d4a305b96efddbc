"""TIC decode throughput: Linky frames read from 64-byte chunks and decoded into readings.

Two streams: the historique frames of ``han2mqtt simulate --meter linky`` (11 groups each) and
the public standard-mode frame of ``tests/vectors/tic.json`` (54 groups, its ADSC made readable),
each with the parity bit in bit 7 as a port at 8N1 reads a 7E1 line.  Reports the best of
``--repeats`` runs in CPU seconds of this process (``time.process_time``).

Usage: python benchmarks/tic.py [--frames N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from han2mqtt import AutoDecoder
from han2mqtt.protocol.stream import ContentReader
from han2mqtt.protocol.tic import checksum, frames_from_text
from han2mqtt.simulator.linky import linky_frames

ROOT = Path(__file__).resolve().parent
VECTORS = ROOT.parent / "tests" / "vectors" / "tic.json"
CHUNK = 64


def _parity(data: bytes) -> bytes:
    return bytes(b | 0x80 if b.bit_count() % 2 else b for b in data)


def _standard() -> bytes:
    items = json.loads(VECTORS.read_text(encoding="utf-8"))
    text = next(i for i in items if "standard" in i["id"])["hex_or_text"]
    body = "ADSC\t021728123456\t"
    lines = [body + chr(checksum(body.encode())), *text.splitlines()[1:]]
    return frames_from_text("\n".join(lines))[0]


def _run(stream: bytes) -> tuple[float, int]:
    reader, decoder = ContentReader("tic"), AutoDecoder()
    start = time.process_time()
    decoded = 0
    for offset in range(0, len(stream), CHUNK):
        for content in reader.read(stream[offset : offset + CHUNK]):
            decoded += decoder.feed(content) is not None
    return time.process_time() - start, decoded


def main() -> None:
    """Print frames per second for each stream."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    streams = {
        "historique (11 groups)": _parity(b"".join(linky_frames(args.frames))),
        "standard (54 groups)": _parity(_standard() * args.frames),
    }
    for name, stream in streams.items():
        best = min(_run(stream)[0] for _ in range(args.repeats))
        print(f"{name}: {args.frames / best:,.0f} frames/s ({len(stream) / best / 1e6:.1f} MB/s)")


if __name__ == "__main__":
    main()
