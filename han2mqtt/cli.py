"""Command line: ``han2mqtt run | decode | record | export | demo | simulate | probe | ...``.

Exit codes: 0 ok, 2 usage or configuration error (one line on stderr naming the problem), 1 for a
health check that fails, a purge that left retained messages behind, ``decode`` when no frame
decoded, ``export`` when no interval matched, and when the reader of the output went away
(``| head``: quietly, without a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from han2mqtt._version import __version__
from han2mqtt.errors import ConfigError, LayoutError, TransportError
from han2mqtt.simulator import DEFAULT_PORT, METERS

if TYPE_CHECKING:
    from han2mqtt.config import Settings
    from han2mqtt.recorder import RecordStats

__all__ = ["main"]

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 1
"""Output cut off by its reader (``| head``): an exit without a traceback, code 1 as Python's."""


def _interval(text: str) -> float:
    """A number of seconds, zero or more (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):  # NaN fails the comparison
        raise argparse.ArgumentTypeError(f"{text!r}: seconds, 0 or more")
    return value


def _positive(text: str) -> float:
    """A number greater than zero (argparse type)."""
    value = _interval(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: more than 0")
    return value


_HEX_ARGUMENT = re.compile(r"[0-9a-fA-F\s:,-]+")


def _read_source(argument: str) -> bytes:
    """Standard input, a file, or the argument itself as hex.

    Raises:
        ConfigError: neither an existing file nor hex.
    """
    if argument == "-":
        return sys.stdin.buffer.read()
    try:
        is_file = Path(argument).is_file()
    except OSError:  # longer than a file name may be (a list 2 frame is 300+ hex digits)
        is_file = False
    if is_file:
        return Path(argument).read_bytes()
    if not _HEX_ARGUMENT.fullmatch(argument):
        raise ConfigError(f"{argument}: no such file, and not hex")
    return argument.encode("ascii")


def _cmd_decode(args: argparse.Namespace) -> int:
    from han2mqtt.decodecmd import run_decode  # noqa: PLC0415 - keep start-up light

    try:
        source = _read_source(args.input)
    except OSError as exc:
        raise ConfigError(f"cannot read {args.input}: {exc.strerror}") from exc
    keys = (_key(args.key, "--key"), _key(args.auth_key, "--auth-key"))
    try:
        return run_decode(
            source, meter_type=args.meter_type, raw=args.raw, out=sys.stdout, keys=keys
        )
    except LayoutError as exc:
        raise ConfigError(str(exc)) from exc


def _key(text: str | None, option: str) -> bytes | None:
    if text is None:
        return None
    try:
        key = bytes.fromhex(text.replace(":", "").replace(" ", ""))
    except ValueError as exc:
        raise ConfigError(f"{option}: not hex") from exc
    if len(key) != 16:
        raise ConfigError(f"{option}: a key is 32 hex digits (16 octets)")
    return key


def _setup_logging(level: str) -> None:
    # Under journald (systemd sets JOURNAL_STREAM) the journal adds its own timestamps.
    with_time = "JOURNAL_STREAM" not in os.environ
    fmt = ("%(asctime)s " if with_time else "") + "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr)


def _settings(args: argparse.Namespace) -> Settings:
    from han2mqtt.config import load_settings  # noqa: PLC0415 - pydantic only when needed

    return load_settings(args.config)


def _cmd_run(args: argparse.Namespace) -> int:
    from han2mqtt import stopsignals  # noqa: PLC0415 - first, before the heavy imports

    # A stop signal while the configuration and the daemon's modules load is recorded, not
    # fatal: before anything started it ends here with 0, after that as a clean stop.
    with stopsignals.catch_early():
        settings = _settings(args)
        if stopsignals.requested():
            return EXIT_OK
        _setup_logging(settings.log.level)
        from han2mqtt.daemon import run_daemon  # noqa: PLC0415 - keep other commands light

        return asyncio.run(run_daemon(settings))


def _cmd_record(args: argparse.Namespace) -> int:
    from han2mqtt.recorder import record  # noqa: PLC0415 - keep start-up of other commands light

    settings = _settings(args)
    _setup_logging(settings.log.level)
    name = args.output or datetime.now(UTC).strftime("han2mqtt-%Y%m%d-%H%M%S.rec")
    show = _progress if sys.stderr.isatty() else None
    try:
        with contextlib.ExitStack() as stack:
            out = (
                sys.stdout
                if name == "-"
                else stack.enter_context(Path(name).open("x", encoding="utf-8"))
            )
            stats = asyncio.run(record(settings, out, duration=args.duration, progress=show))
    except OSError as exc:
        raise ConfigError(f"cannot write {name}: {exc.strerror}") from exc
    if show is not None:
        sys.stderr.write("\n")
    if name != "-":
        print(f"recorded {stats.chunks} chunk(s), {stats.octets} bytes to {name}", file=sys.stderr)
    return EXIT_OK


def _progress(stats: RecordStats) -> None:
    elapsed = time.monotonic() - stats.started
    sys.stderr.write(f"\rrecording: {stats.chunks} chunks, {stats.octets} bytes, {elapsed:.0f} s ")
    sys.stderr.flush()


def _cmd_demo(args: argparse.Namespace) -> int:
    from han2mqtt.commands import run_demo  # noqa: PLC0415

    _setup_logging("WARNING" if args.mqtt_host is None else "INFO")
    return asyncio.run(
        run_demo(
            args.mqtt_host,
            args.mqtt_port,
            args.interval,
            forever=args.forever,
            speed=args.speed,
            hours=args.hours,
            verbose=args.verbose,
            discovery=args.discovery,
        )
    )


def _cmd_simulate(args: argparse.Namespace) -> int:
    from han2mqtt.simulator import simulate  # noqa: PLC0415

    def announce(line: str) -> None:
        print(line, flush=True)  # a pipe reader (a test, a script) learns the port at once

    try:
        asyncio.run(
            simulate(
                args.host,
                args.port,
                args.interval,
                meters=args.meter,
                speed=args.speed,
                replay=args.replay,
                announce=announce,
            )
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        # asyncio's message repeats the address; the errno's text alone says why.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {reason}") from exc
    return EXIT_OK


def _cmd_probe(args: argparse.Namespace) -> int:
    from han2mqtt.commands.probe import run_probe  # noqa: PLC0415

    if (args.device is None) == (args.host is None) or (args.host is None) != (args.port is None):
        raise ConfigError("probe needs --device, or --host and --port")
    address = None if args.host is None else (args.host, args.port)
    try:
        return run_probe(
            device=args.device,
            address=address,
            seconds=args.seconds,
            out=sys.stdout,
            err=sys.stderr,
        )
    except TransportError as exc:
        raise ConfigError(str(exc)) from exc


def _cmd_purge(args: argparse.Namespace) -> int:
    from han2mqtt.commands import PurgeIncompleteError, purge  # noqa: PLC0415

    settings = _settings(args)
    _setup_logging(settings.log.level)
    try:
        count = asyncio.run(purge(settings))
    except TimeoutError as exc:
        raise ConfigError(
            f"cannot reach the MQTT broker {settings.mqtt.host}:{settings.mqtt.port}: no answer"
        ) from exc
    except PurgeIncompleteError as exc:
        print(f"han2mqtt: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TransportError as exc:
        raise ConfigError(str(exc)) from exc
    print(f"removed {count} retained message(s)")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from han2mqtt.exportcmd import run_export  # noqa: PLC0415 - keep start-up of others light

    return run_export(
        _settings(args),
        resolution=args.resolution,
        start=args.start,
        end=args.end,
        meter=args.meter,
        output_format=args.format,
        out=sys.stdout,
    )


def _cmd_healthcheck(args: argparse.Namespace) -> int:
    from han2mqtt.health import check_heartbeat  # noqa: PLC0415

    settings = _settings(args)
    path = settings.health.heartbeat_file
    if path is None:
        raise ConfigError("health.heartbeat_file is not set")
    problem = check_heartbeat(path, settings.health.max_age)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return EXIT_UNHEALTHY
    return EXIT_OK


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML configuration (default: /etc/han2mqtt/config.yaml or ./config.yaml if present)",
    )


def _add_simulators(commands: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """``demo`` and ``simulate``."""
    demo = commands.add_parser(
        "demo",
        help="run the whole pipeline on simulated meters (no meter needed)",
        description="Simulated Aidon, Kaifa, Kamstrup and P1 meters, their clocks sped up (a day "
        "in a minute). Without --mqtt-host, print a summary of the MQTT messages that would be "
        "published (--verbose: every message).",
    )
    demo.add_argument("--mqtt-host", help="publish to this broker instead of printing")
    demo.add_argument("--mqtt-port", type=int, default=1883)
    demo.add_argument(
        "--interval", type=_interval, default=0.1, help="real seconds between steps (0.1)"
    )
    demo.add_argument(
        "--speed", type=_positive, default=1440.0, help="meter seconds per second (1440)"
    )
    demo.add_argument("--hours", type=_positive, default=3.0, help="meter hours to run (3)")
    demo.add_argument("--forever", action="store_true", help="run until Ctrl-C (status page on)")
    demo.add_argument("--verbose", action="store_true", help="print every message in full")
    demo.add_argument(
        "--discovery",
        action="store_true",
        help="with --mqtt-host: send Home Assistant discovery too (off: no fake meters in HA)",
    )
    demo.set_defaults(handler=_cmd_demo)

    simulate = commands.add_parser(
        "simulate",
        help="meters on a TCP port: simulated meters (or the built-in captures) for han2mqtt run",
        description="Serve simulated meters whose clocks move (or, with --replay, the built-in "
        "real captures) over TCP, as a TCP serial server next to a meter would, until Ctrl-C. "
        "Point han2mqtt run at it with source.type tcp.",
    )
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    simulate.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="TCP port (8899; 0: any free)"
    )
    simulate.add_argument(
        "--interval", type=_interval, default=2.0, help="seconds between steps (2)"
    )
    simulate.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="meter seconds per second (1; 1440: a day a minute)",
    )
    simulate.add_argument(
        "--meter",
        action="append",
        help=f"a simulated meter: {', '.join(METERS)} (repeatable; default: all but linky)",
    )
    simulate.add_argument(
        "--replay", action="store_true", help="replay the built-in real captures instead"
    )
    simulate.set_defaults(handler=_cmd_simulate)


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
    decode.add_argument("--key", help="encryption key (32 hex digits) for ciphered frames")
    decode.add_argument("--auth-key", help="authentication key (32 hex digits), checks the tag")
    decode.set_defaults(handler=_cmd_decode)

    run = commands.add_parser("run", help="run the bridge daemon")
    _add_config_option(run)
    run.set_defaults(handler=_cmd_run)

    _add_simulators(commands)

    probe = commands.add_parser(
        "probe",
        help="find the port's line settings, framing, meter and encryption",
        description="Read the port a few seconds at each setting meters use (2400 8N1 and 8E1, "
        "115200 8N1, 9600 7E1, 1200 7E1) and print what was found with the config to paste. "
        "Exit 0 when a meter was found, 1 when nothing was.",
    )
    probe.add_argument("--device", help="serial device, e.g. /dev/ttyUSB0")
    probe.add_argument("--host", help="TCP serial server (its line is set on the server)")
    probe.add_argument("--port", type=int, help="its TCP port")
    probe.add_argument("--seconds", type=_interval, default=4.0, help="seconds at each setting (4)")
    probe.set_defaults(handler=_cmd_probe)

    record = commands.add_parser(
        "record",
        help="record what the configured source delivers (raw, with receive times)",
        description="Write the source's raw bytes with their receive times, one chunk per line, "
        "until Ctrl-C or --duration; replay the file with source.type file or han2mqtt decode.",
    )
    _add_config_option(record)
    record.add_argument(
        "--output", help="file to write (default han2mqtt-<time>.rec here; - for stdout)"
    )
    record.add_argument("--duration", type=_interval, default=None, help="stop after S seconds")
    record.set_defaults(handler=_cmd_record)

    export = commands.add_parser(
        "export",
        help="write the quarter-hour ledger's intervals (CSV or JSON) to standard output",
        description="The intervals of <state.dir>/history.sqlite, as /api/history gives them. "
        "Exit 0: written; 1: nothing matched; 2: a bad argument.",
    )
    _add_config_option(export)
    export.add_argument("--resolution", choices=("quarter", "hour", "day", "month"), default="hour")
    export.add_argument("--from", dest="start", help="first day or time (inclusive; local)")
    export.add_argument("--to", dest="end", help="day or time to stop at (exclusive; local)")
    export.add_argument("--meter", help="meter id (needed when several meters are stored)")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.set_defaults(handler=_cmd_export)

    purge = commands.add_parser(
        "purge", help="remove every retained message han2mqtt published (discovery included)"
    )
    _add_config_option(purge)
    purge.set_defaults(handler=_cmd_purge)

    health = commands.add_parser(
        "healthcheck", help="exit 1 when no frame arrived for health.max_age seconds"
    )
    _add_config_option(health)
    health.set_defaults(handler=_cmd_healthcheck)
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
    except (BrokenPipeError, BaseExceptionGroup) as exc:
        if not _is_broken_pipe(exc):
            raise
        return _reader_gone()


def _is_broken_pipe(exc: BaseException) -> bool:
    """A closed pipe on our output (``| head``), also inside an asyncio task group (``demo``)."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(BrokenPipeError) is not None
    return isinstance(exc, BrokenPipeError)


def _reader_gone() -> int:
    """The reader of our output went away: exit quietly, as Python's documentation advises.

    Standard output goes to /dev/null so that the flush at exit does not raise again (and print
    "Exception ignored ... BrokenPipeError").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
