"""Slovenian Iskra AM550 position lists: read only when the whole structure is the documented."""

from __future__ import annotations

import pytest

from han2mqtt import AutoDecoder
from han2mqtt.errors import LayoutError
from tests import encoder as enc
from tests.meters.test_public_captures import ITEMS, decode

NAME = b"ISK1030789375606"


def three_phase(
    name: bytes = NAME, voltage: bytes | None = None, count: int = 18, tail: bytes = b""
) -> bytes:
    """The 18-value list of gh615-1, re-encoded; ``voltage`` replaces the L1 voltage element."""
    elements = [
        enc.octets(name),
        enc.octets(b"16820005"),
        enc.u32(1393),
        enc.u32(0),
        enc.u32(0),
        enc.u32(738),
        voltage or enc.u16(2379),
        enc.u16(2379),
        enc.u16(2296),
        enc.u16(103),
        enc.u16(125),
        enc.u16(597),
        enc.u32(16),
        enc.u32(51),
        enc.u32(1325),
        enc.u32(0),
        enc.u32(0),
        enc.u32(0),
    ][:count]
    return enc.LLC + enc.notification(enc.structure(*elements) + tail)


def test_the_re_encoded_list_reads_as_the_capture_does():
    reading = AutoDecoder().decode(three_phase())
    captured = decode(ITEMS["si-iskra-am550-18-gh615-1"])
    assert reading.fields | {"meter_datetime": 0} == captured.fields | {"meter_datetime": 0}
    assert reading.layout == "iskra-si"


@pytest.mark.parametrize(
    "content",
    [
        three_phase(voltage=enc.u32(2379)),  # a double-long-unsigned where the list has a long
        three_phase(voltage=enc.i16(2379)),  # a signed long
        three_phase(name=b"LGZ1030789375606"),  # not an Iskra logical device name
        three_phase(count=17),  # one value short
    ],
    ids=["u32-voltage", "signed-voltage", "other-name", "17-values"],
)
def test_any_other_structure_is_refused(content: bytes):
    with pytest.raises(LayoutError, match="match no known list layout"):
        AutoDecoder().decode(content)


THREE_PHASE = [key for key, item in ITEMS.items() if "active_power_import_l1_W" in item["expected"]]


@pytest.mark.parametrize("item_id", THREE_PHASE)
def test_per_phase_powers_add_up_to_the_total(item_id: str):
    """The check that the positions mean what the layout says (three-phase lists)."""
    assert item_id.startswith("si-")
    fields = decode(ITEMS[item_id]).fields
    phases = sum(fields[f"active_power_import_l{n}"] for n in (1, 2, 3))  # type: ignore[misc]
    assert abs(phases - fields["active_power_import"]) <= 2  # type: ignore[operator]


def test_the_meter_is_named_by_its_logical_device_name():
    reading = AutoDecoder().decode(three_phase())
    assert reading.meter_id == NAME.decode()
    assert reading.obis["0-0:96.1.3.255"] == "16820005"
    assert "meter_type" not in reading.fields


def test_repeat_frames_through_the_template_read_their_own_values():
    decoder = AutoDecoder()
    first = decoder.decode(three_phase())
    second = decoder.decode(three_phase(voltage=enc.u16(2401)))
    assert decoder._templates.hits == 1
    assert first.fields["voltage_l1"] == 237.9
    assert second.fields["voltage_l1"] == 240.1
    assert second == AutoDecoder().decode(three_phase(voltage=enc.u16(2401)))
    assert second.meter_id == NAME.decode()


def test_two_meters_share_a_template_each_with_its_own_id():
    decoder = AutoDecoder()
    first = decoder.decode(three_phase())
    other = decoder.decode(three_phase(name=b"ISK1030789375699"))
    assert decoder._templates.hits == 1
    assert (first.meter_id, other.meter_id) == (NAME.decode(), "ISK1030789375699")
