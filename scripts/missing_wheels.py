"""Which of han2mqtt's dependencies pip can only build from source on this machine.

Used by scripts/setup.sh to install a compiler only where it is needed. The evidence is pip's own:
a dry-run install of the requirements in pyproject.toml with ``--only-binary=:all:`` fails on the
first requirement (direct, or one of theirs) that has no wheel for this interpreter and platform.
A direct requirement found so is set aside and the dry run repeated, so every direct one without a
wheel is named; one that other requirements need ends the search, since pip cannot resolve past
it.

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
CONFLICT = re.compile(r"Cannot install ([A-Za-z0-9][A-Za-z0-9._-]*)==")
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


class CannotTellError(Exception):
    """pip failed for a reason other than a missing wheel (no network, say)."""


class UnnamedError(Exception):
    """A requirement of this requirement has no wheel, and pip names only this one."""


def first_without_wheel(wanted: list[str]) -> str | None:
    """None when pip resolves ``wanted`` from wheels alone, else the first name it could not.

    A requirement of a requirement without any wheel makes pip report a conflict on the one that
    needs it ("Cannot install cryptography==...") without naming it: UnnamedError then.
    """
    if not wanted:
        return None
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    command += ["--only-binary=:all:", "--quiet", "--disable-pip-version-check", *wanted]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return None
    if match := NO_WHEEL.search(done.stderr):
        return match.group(1)
    if match := CONFLICT.search(done.stderr):
        raise UnnamedError(match.group(1))
    raise CannotTellError((done.stderr.strip().splitlines() or ["no output"])[-1])


def on_the_index(name: str) -> bool:
    """Whether pip finds any release of ``name`` at all, source ones included.

    pip reports an index it cannot reach as it reports a project without a wheel (and says
    nothing more when told not to retry): this tells the two apart.
    """
    command = [sys.executable, "-m", "pip", "index", "versions", name]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode == 0


def missing(wanted: list[str]) -> list[str]:
    """The requirements pip finds no wheel for, in the order it meets them."""
    found: list[str] = []
    while True:
        try:
            name = first_without_wheel(wanted)
        except UnnamedError as unnamed:
            # What is left needs what was found (or something pip does not name).
            return found or [f"a dependency of {unnamed.args[0]}"]
        except CannotTellError:
            if found:
                return found
            raise
        if name is None or name in found:
            return found
        if not on_the_index(name):
            raise CannotTellError(f"no release of {name} found at all: is the index reachable?")
        found.append(name)
        rest = [r for r in wanted if canonical(r) != canonical(name)]
        if rest == wanted:  # a requirement of a requirement: pip cannot resolve past it
            return found
        wanted = rest


def main() -> None:
    """Print the names, or say on stderr why pip could not tell and exit 2."""
    try:
        print(" ".join(missing(requirements(sys.argv[1:]))))
    except CannotTellError as error:
        print(f"pip: {error}", file=sys.stderr)
        raise SystemExit(CANNOT_TELL) from error


if __name__ == "__main__":
    main()
