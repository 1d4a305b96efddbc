"""Round trip: random readings encoded (by the test-side encoder) in each vendor layout decode
back to the same values, through the HDLC reader, in any chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt import AutoDecoder, HdlcFrameReader
from tests import encoder as enc

u16 = st.integers(min_value=0, max_value=0xFFFF)
u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
meter_ids = st.text(alphabet="0123456789", min_size=16, max_size=16)

_POWER = ("1.7.0", "2.7.0", "3.7.0", "4.7.0")
_POWER_FIELDS = (
    "active_power_import",
    "active_power_export",
    "reactive_power_import",
    "reactive_power_export",
)


def _read_back(information: bytes) -> dict[str, int | float | str]:
    frames = HdlcFrameReader().read(enc.hdlc(enc.LLC + information))
    assert len(frames) == 1
    assert frames[0].is_valid
    return AutoDecoder().decode(frames[0].payload).fields


@settings(max_examples=150, deadline=None)
@given(
    meter_id=meter_ids,
    powers=st.tuples(u32, u32, u32, u32),
    currents=st.tuples(u16, u16, u16),
    volts=st.tuples(u16, u16, u16),
    energy=u32,
)
def test_aidon_list3(meter_id, powers, currents, volts, energy):
    def register(code: str, value: bytes, scaler: int, unit: int) -> bytes:
        return enc.structure(enc.obis(code), value, enc.scaler_unit(scaler, unit))

    elements = [
        enc.structure(enc.obis("1-1:0.2.129.255"), enc.visible("AIDON_V0001")),
        enc.structure(enc.obis("0-0:96.1.0.255"), enc.visible(meter_id)),
        *(
            register(f"1-0:{c}.255", enc.u32(p), 0, 27 if c < "3" else 29)
            for c, p in zip(_POWER, powers, strict=True)
        ),
        *(
            register(f"1-0:{c}.7.0.255", enc.i16(i - 0x8000), -1, 33)
            for c, i in zip((31, 51, 71), currents, strict=True)
        ),
        *(
            register(f"1-0:{c}.7.0.255", enc.u16(v), -1, 35)
            for c, v in zip((32, 52, 72), volts, strict=True)
        ),
        register("1-0:1.8.0.255", enc.u32(energy), 1, 30),
    ]
    fields = _read_back(enc.notification(enc.array(*elements)))
    assert fields["meter_manufacturer"] == "Aidon"
    assert fields["meter_id"] == meter_id
    for name, value in zip(_POWER_FIELDS, powers, strict=True):
        assert fields[name] == value
    for phase, raw in enumerate(currents, start=1):
        assert fields[f"current_l{phase}"] == (raw - 0x8000) / 10
    for phase, raw in enumerate(volts, start=1):
        assert fields[f"voltage_l{phase}"] == raw / 10
    assert fields["active_power_import_total"] == energy / 100


@settings(max_examples=150, deadline=None)
@given(
    meter_id=meter_ids,
    powers=st.tuples(u32, u32, u32, u32),
    currents=st.tuples(u32, u32, u32),
    volts=st.tuples(u32, u32, u32),
    energies=st.tuples(u32, u32, u32, u32),
    three_phase=st.booleans(),
)
def test_kaifa_positional_list3(meter_id, powers, currents, volts, energies, three_phase):
    phases = 3 if three_phase else 1
    values = [
        enc.octets(b"KFM_001"),
        enc.octets(meter_id.encode()),
        enc.octets(b"MA304H3E"),
        *(enc.u32(p) for p in powers),
        *(enc.u32(i) for i in currents[:phases]),
        *(enc.u32(v) for v in volts[:phases]),
        enc.octets(enc.date_time(2024, 5, 17, 13, 0, 0)),
        *(enc.u32(e) for e in energies),
    ]
    fields = _read_back(
        enc.notification(
            enc.structure(*values), enc.date_time(2024, 5, 17, 13, 0, 10), typed_stamp=True
        )
    )
    assert fields["meter_manufacturer"] == "Kaifa"
    assert fields["meter_id"] == meter_id
    assert fields["meter_datetime"] == "2024-05-17T13:00:00"
    for phase in range(1, phases + 1):
        assert fields[f"current_l{phase}"] == currents[phase - 1] / 1000
        assert fields[f"voltage_l{phase}"] == volts[phase - 1] / 10
    if not three_phase:
        assert "current_l2" not in fields
    for name, value in zip(_POWER_FIELDS, energies, strict=True):
        assert fields[name + "_total"] == value / 1000


@settings(max_examples=150, deadline=None)
@given(
    meter_id=meter_ids,
    powers=st.tuples(u32, u32, u32, u32),
    currents=st.tuples(st.integers(0, 6300), st.integers(0, 6300), st.integers(0, 6300)),
    volts=st.tuples(st.integers(180, 260), st.integers(180, 260), st.integers(180, 260)),
    single_phase=st.booleans(),
)
def test_kamstrup_list1(meter_id, powers, currents, volts, single_phase):
    pairs = [
        enc.visible("Kamstrup_V0001"),
        enc.obis("1-1:0.0.5.255"),
        enc.visible(meter_id),
        enc.obis("1-1:96.1.1.255"),
        enc.visible("6841131BN243101040"),
    ]
    for code, value in zip(_POWER, powers, strict=True):
        pairs += [enc.obis(f"1-1:{code}.255"), enc.u32(value)]
    for index, current_code in enumerate((31, 51, 71)):
        pairs += (
            [enc.null(), enc.null()]
            if single_phase and index
            else [enc.obis(f"1-1:{current_code}.7.0.255"), enc.u32(currents[index])]
        )
    for index, voltage_code in enumerate((32, 52, 72)):
        pairs += (
            [enc.null(), enc.null()]
            if single_phase and index
            else [enc.obis(f"1-1:{voltage_code}.7.0.255"), enc.u16(volts[index])]
        )
    fields = _read_back(enc.notification(enc.structure(*pairs), enc.date_time(2024, 1, 2, 3, 4, 5)))
    assert fields["meter_manufacturer"] == "Kamstrup"
    assert fields["meter_id"] == meter_id
    assert fields["meter_datetime"] == "2024-01-02T03:04:05"
    for name, value in zip(_POWER_FIELDS, powers, strict=True):
        assert fields[name] == value
    assert fields["current_l1"] == currents[0] / 100
    assert fields["voltage_l1"] == volts[0]
    assert ("current_l2" in fields) is not single_phase
