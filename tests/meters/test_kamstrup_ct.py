"""Kamstrup lists without a meter type: CT meters found by power balance, remembered per meter."""

from __future__ import annotations

from han2mqtt import AutoDecoder
from tests import encoder


def _frame(meter: str, currents: tuple[int, int, int], power: int) -> bytes:
    """A Danish-style Kamstrup list: no meter type, currents as sent (0.01 A or 0.001 A)."""
    pairs = [
        encoder.visible("Kamstrup_V0001"),
        encoder.obis("1-1:0.0.5.255"),
        encoder.visible(meter),
        encoder.obis("1-1:1.7.0.255"),
        encoder.u32(power),
    ]
    for code, value in zip((31, 51, 71), currents, strict=True):
        pairs += [encoder.obis(f"1-1:{code}.7.0.255"), encoder.u32(value)]
    for code in (32, 52, 72):
        pairs += [encoder.obis(f"1-1:{code}.7.0.255"), encoder.u16(230)]
    return encoder.LLC + b"\x0f\x00\x00\x00\x00\x00" + encoder.structure(*pairs)


def _currents(content: bytes) -> tuple[object, object, object]:
    fields = AutoDecoder().decode(content).fields
    return fields["current_l1"], fields["current_l2"], fields["current_l3"]


def test_a_direct_meter_with_solar_on_one_phase_keeps_its_currents():
    meter = "5706567000000001"
    # An evening frame proves the meter direct: 6.2 kW against U.I = 6.4 kVA.
    assert _currents(_frame(meter, (1300, 1350, 50), 6200)) == (13.0, 13.5, 0.5)
    # Noon: solar on L1 cancels L2's load, net 300 W: the balance alone would say "CT".
    assert _currents(_frame(meter, (1300, 1350, 50), 300)) == (13.0, 13.5, 0.5)


def test_a_ct_meter_stays_ct_at_low_load():
    meter = "5706567000000002"
    assert _currents(_frame(meter, (29000, 29000, 29000), 20000)) == (29.0, 29.0, 29.0)
    # At night, 150 W is too little to judge by: the meter is what it showed before.
    assert _currents(_frame(meter, (250, 200, 210), 150)) == (0.25, 0.2, 0.21)


def test_a_meter_first_seen_netting_is_corrected_by_its_first_ordinary_frame():
    meter = "5706567000000003"
    _currents(_frame(meter, (1300, 1350, 50), 300))  # ambiguous: ratio 21, read as CT
    assert _currents(_frame(meter, (1300, 1350, 50), 6200)) == (13.0, 13.5, 0.5)
    assert _currents(_frame(meter, (1300, 1350, 50), 300)) == (13.0, 13.5, 0.5)
