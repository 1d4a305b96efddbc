"""Command line: ``han2mqtt run | decode | demo | purge | healthcheck``.

Exit codes: 0 ok, 2 usage or configuration error (one line on stderr naming the problem), 1 for a
health check that fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from han2mqtt._version import __version__
from han2mqtt.errors import ConfigError, LayoutError

__all__ = ["main"]

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_USAGE = 2


def _read_source(argument: str) -> bytes:
    if argument == "-":
        return sys.stdin.buffer.read()
    path = Path(argument)
    if path.is_file():
        return path.read_bytes()
    return argument.encode("ascii", errors="replace")


def _cmd_decode(args: argparse.Namespace) -> int:
    from han2mqtt.decodecmd import run_decode  # noqa: PLC0415 - keep start-up light

    try:
        source = _read_source(args.input)
    except OSError as exc:
        raise ConfigError(f"cannot read {args.input}: {exc.strerror}") from exc
    try:
        return run_decode(source, meter_type=args.meter_type, raw=args.raw, out=sys.stdout)
    except LayoutError as exc:
        raise ConfigError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="han2mqtt",
        description="Smart meter HAN/P1 port to MQTT and Home Assistant.",
    )
    parser.add_argument("--version", action="version", version=f"han2mqtt {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    decode = commands.add_parser(
        "decode",
        help="decode captured frames and print one JSON object per frame",
        description="Decode HDLC frames or APDUs given as hex, a file of raw bytes or hex lines, "
        "or - for standard input.",
    )
    decode.add_argument("input", help="hex string, file path, or - for stdin")
    decode.add_argument("--raw", action="store_true", help="add the OBIS values and A-XDR tree")
    decode.add_argument(
        "--meter-type", default="auto", help="auto (default), aidon, kaifa, kamstrup ..."
    )
    decode.set_defaults(handler=_cmd_decode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``han2mqtt`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"han2mqtt: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
