"""P1 reader throughput on hostile and real streams: MB/s for each, fed in fixed-size chunks.

A reader that rescans its buffer for every ``/`` is quadratic on some inputs (a stream of ``/``
ran at 0.85 MB/s); this prints the rate per stream so such a regression shows as a number.

Streams: ``/`` only; ``/`` with a ``!`` now and then; seeded random bytes; printable junk
without ``/``; real DSMR 5 telegrams (corpus) back to back.

Usage: python benchmarks/p1_reader.py [--megabytes N] [--chunk N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from han2mqtt.protocol.p1 import P1TelegramReader

ROOT = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("HAN2MQTT_CORPUS", ROOT.parent / "tests" / "vectors" / "frames.json"))


def _telegrams(size: int) -> bytes:
    items = {item["id"]: item for item in json.loads(CORPUS.read_text())}
    telegram = str(items["nl-dsmr50-iskra"]["hex_or_text"]).encode() + b"\r\n"
    return telegram * (size // len(telegram) + 1)


def _random(size: int) -> bytes:
    return random.Random(11).randbytes(size)


def _slashes_and_bangs(size: int) -> bytes:
    return (b"/" * 4000 + b"!\r\n") * (size // 4003 + 1)


STREAMS: dict[str, Callable[[int], bytes]] = {
    "'/' only": lambda size: b"/" * size,
    "'/' x4000 then '!'": _slashes_and_bangs,
    "random bytes (seeded)": _random,
    "printable junk, no '/'": lambda size: b"0123456789abcdef!\r\n" * (size // 19 + 1),
    "real telegrams (DSMR 5)": _telegrams,
}


def measure(stream: bytes, chunk: int, repeats: int) -> float:
    """Best MB/s of ``repeats`` runs over ``stream``."""
    best = float("inf")
    for _ in range(repeats):
        reader = P1TelegramReader()
        begin = time.perf_counter()
        for start in range(0, len(stream), chunk):
            reader.read(stream[start : start + chunk])
        best = min(best, time.perf_counter() - begin)
    return len(stream) / best / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=float, default=4.0)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args()
    size = int(args.megabytes * 1e6)
    print(f"P1 reader, {size / 1e6:g} MB per stream, {args.chunk}-byte chunks, ", end="")
    print(f"best of {args.repeats}")
    for label, make in STREAMS.items():
        rate = measure(make(size)[:size], args.chunk, args.repeats)
        print(f"  {label:28} {rate:10.2f} MB/s")


if __name__ == "__main__":
    main()
