"""Kamstrup lists with meter timestamps, built with the test-side encoder (a day's worth).

List 2 (every 10 s): list id, meter id and type, the four powers, L1 current and voltage, in a
data-notification whose header carries the meter clock.  List 3 (hourly, sent a few seconds after
the hour): the same plus the clock object and the four energy registers in 10 Wh (the value at
the hour, as NVE lists define it).  One phase, a direct meter (U·I matches the power).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests import encoder as enc

METER_ID = "5706567000000042"
LIST3_DELAY = timedelta(seconds=5)


def _stamp(moment: datetime) -> bytes:
    return enc.date_time(
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second
    )


def kamstrup_frame(moment: datetime, power: int, registers: tuple[int, int] | None = None) -> bytes:
    """One HDLC frame; ``moment`` is the naive local meter time, ``registers`` in 10 Wh."""
    current = round(power / 230 * 100)  # 0.01 A
    pairs = [
        enc.visible("Kamstrup_V0001"),
        enc.obis("1-1:0.0.5.255"),
        enc.visible(METER_ID),
        enc.obis("1-1:96.1.1.255"),
        enc.visible("6841121BN243101040"),
        enc.obis("1-1:1.7.0.255"),
        enc.u32(power),
        enc.obis("1-1:2.7.0.255"),
        enc.u32(0),
        enc.obis("1-1:3.7.0.255"),
        enc.u32(0),
        enc.obis("1-1:4.7.0.255"),
        enc.u32(0),
        enc.obis("1-1:31.7.0.255"),
        enc.u32(current),
        enc.obis("1-1:32.7.0.255"),
        enc.u16(230),
    ]
    if registers is not None:
        imported, exported = registers
        pairs += [
            enc.obis("0-1:1.0.0.255"),
            enc.octets(_stamp(moment)),
            enc.obis("1-1:1.8.0.255"),
            enc.u32(imported),
            enc.obis("1-1:2.8.0.255"),
            enc.u32(exported),
            enc.obis("1-1:3.8.0.255"),
            enc.u32(0),
            enc.obis("1-1:4.8.0.255"),
            enc.u32(0),
        ]
    body = enc.notification(enc.structure(*pairs), _stamp(moment))
    return enc.hdlc(enc.LLC + body)


def power_at(index: int) -> int:
    """A household's power, varying from one 10 s frame to the next (300-4,000 W)."""
    return 300 + (index * 7919 + (index // 360) * 1237) % 3700


def day_of_frames(
    day: datetime, start_register: int = 12_345_600
) -> tuple[list[bytes], dict[datetime, int]]:
    """A day of list 2 every 10 s and list 3 five seconds after every hour.

    Returns the frames and the import register (10 Wh) the meter holds at each hour boundary.
    """
    frames: list[bytes] = []
    registers: dict[datetime, int] = {}
    energy = start_register * 10.0  # Wh, power held between frames as the meter counts it
    step = timedelta(seconds=10)
    for index in range(24 * 360 + 1):
        moment = day + index * step
        power = power_at(index)
        frames.append(kamstrup_frame(moment, power))
        if moment.minute == 0 and moment.second == 0:
            register = registers[moment] = int(energy // 10)
            frames.append(kamstrup_frame(moment + LIST3_DELAY, power, (register, 0)))
        energy += power * 10 / 3600
    return frames, registers
