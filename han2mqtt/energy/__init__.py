"""The energy stage (sans-IO): live counters, interval energy, guard, tariff, state format.

Hour-correct live counters, interval energy, the counter guard, the capacity tariff and the
state file's format.

It runs on readings and the meter's own timestamps, never on a wall clock, and knows nothing of
asyncio, MQTT or the configuration: :class:`EnergyEngine` takes plain
:class:`EnergyParameters`.
"""

from han2mqtt.energy.engine import (
    EnergyEngine,
    EnergyParameters,
    EnergyResult,
    GuardEvent,
    is_register,
)
from han2mqtt.energy.guard import CounterGuard, Register, Verdict
from han2mqtt.energy.state import decode_state, encode_state
from han2mqtt.energy.tariff import (
    PRESETS,
    WEEKDAYS,
    CapacityTariff,
    Peak,
    SeasonPrice,
    TariffModel,
    Weight,
)

__all__ = [
    "PRESETS",
    "WEEKDAYS",
    "CapacityTariff",
    "CounterGuard",
    "EnergyEngine",
    "EnergyParameters",
    "EnergyResult",
    "GuardEvent",
    "Peak",
    "Register",
    "SeasonPrice",
    "TariffModel",
    "Verdict",
    "Weight",
    "decode_state",
    "encode_state",
    "is_register",
]
