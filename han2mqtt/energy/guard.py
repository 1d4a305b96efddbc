"""The counter guard: an energy register that could not be true is never published.

A register that goes backwards, or rises by more than ``max_power`` could deliver since the
previous accepted register, is rejected: Home Assistant would book it as a meter reset plus a
huge consumption and keep it in its long-term statistics forever.  Three consecutive rejected
registers that agree with each other (each step forward and possible at ``max_power``) are a meter
exchange or reset, and accepted.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from enum import Enum
from itertools import pairwise
from typing import Final, NamedTuple

__all__ = ["EXCHANGE_AFTER", "REGISTER_SLACK", "CounterGuard", "Register", "Verdict"]

REGISTER_SLACK: Final = 0.01
"""kWh a register may rise beyond what ``max_power`` allows (one step of a 10 Wh register)."""
EXCHANGE_AFTER: Final = 3
"""Consecutive agreeing registers that prove a meter exchange or reset."""


class Verdict(Enum):
    """What the guard decided about one register."""

    ACCEPTED = "accepted"
    BACKWARDS = "backwards"
    TOO_FAST = "too_fast"
    EXCHANGE = "exchange"
    """Accepted, but it starts over: a meter exchange or reset."""


class Register(NamedTuple):
    """One register value (kWh or kvarh) at its meter time (UTC)."""

    value: float
    time: datetime


class CounterGuard:
    """Judge the successive values of one register.

    Args:
        max_power: kW the installation can draw at most (``meter.max_power``).
        last: the last accepted register (from the state file), if any.
    """

    def __init__(self, max_power: float, last: Register | None = None) -> None:
        self._max_power = max_power
        self.last = last
        self._pending: deque[Register] = deque(maxlen=EXCHANGE_AFTER)

    def check(self, register: Register) -> Verdict:
        """Accept or reject ``register``; an accepted one becomes the reference."""
        verdict = ACCEPTED if self.last is None else self._judge(self.last, register)
        if verdict is ACCEPTED:
            self._pending.clear()
            self.last = register
            return verdict
        self._pending.append(register)
        if len(self._pending) == EXCHANGE_AFTER and self._agree(list(self._pending)):
            self._pending.clear()
            self.last = register
            return Verdict.EXCHANGE
        return verdict

    def _judge(self, before: Register, after: Register) -> Verdict:
        if after.value < before.value:
            return Verdict.BACKWARDS
        hours = max((after.time - before.time).total_seconds(), 0.0) / 3600
        if after.value - before.value > self._max_power * hours + REGISTER_SLACK:
            return Verdict.TOO_FAST
        return ACCEPTED

    def _agree(self, registers: list[Register]) -> bool:
        return all(self._judge(before, after) is ACCEPTED for before, after in pairwise(registers))


ACCEPTED: Final = Verdict.ACCEPTED
