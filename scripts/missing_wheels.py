"""Which of han2mqtt's dependencies pip can only build from source on this machine.

Used by scripts/setup.sh to install a compiler only where it is needed. The evidence is pip's own:
a dry-run install of the requirements in pyproject.toml with ``--only-binary=:all:`` fails on the
first requirement (direct, or one of theirs) that has no wheel for this interpreter and platform.
A direct requirement found so is set aside and the dry run repeated, so every direct one without a
wheel is named; a dependency of a dependency ends the search, since pip cannot resolve past it.

Usage: ``.venv/bin/python scripts/missing_wheels.py [EXTRA ...]``. Prints the names found, one
line, space-separated (empty when everything comes as a wheel); exits 2 when pip fails for another
reason (no network, say), with pip's last line on stderr.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NO_WHEEL = re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CANNOT_TELL = 2


def canonical(requirement: str) -> str:
    """The project name of a requirement, normalized as PEP 503 does."""
    match = NAME.match(requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def requirements(extras: list[str]) -> list[str]:
    """The project's dependencies and those of the named extras, as pyproject.toml lists them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = list(project["dependencies"])
    for extra in extras:
        found += project["optional-dependencies"][extra]
    return found


def first_without_wheel(wanted: list[str]) -> str | None:
    """None when pip resolves ``wanted`` from wheels alone, else the first name it could not."""
    if not wanted:
        return None
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    command += ["--only-binary=:all:", "--quiet", "--disable-pip-version-check", *wanted]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return None
    match = NO_WHEEL.search(done.stderr)
    if match is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip: {last}", file=sys.stderr)
        raise SystemExit(CANNOT_TELL)
    return match.group(1)


def missing(wanted: list[str]) -> list[str]:
    """The requirements pip finds no wheel for, in the order it meets them."""
    found: list[str] = []
    while (name := first_without_wheel(wanted)) is not None:
        found.append(name)
        rest = [r for r in wanted if canonical(r) != canonical(name)]
        if rest == wanted:  # a dependency of a dependency: pip cannot resolve past it
            break
        wanted = rest
    return found


if __name__ == "__main__":
    print(" ".join(missing(requirements(sys.argv[1:]))))
