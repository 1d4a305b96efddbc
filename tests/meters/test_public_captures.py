"""Public captures of self-describing and other lists (``vectors/public-captures.json``).

Each item is decoded as the README's library section does it (frames from the port's bytes, each
frame's content fed to one :class:`AutoDecoder`), and checked against what its source states:
scaled fields where the source states them, the numbers as sent where it states only those, and
no normalized field at all for a number whose scaling no source states.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from han2mqtt import AutoDecoder
from han2mqtt.meters.normalize import TEXT, field_for
from han2mqtt.model import MeterReading
from han2mqtt.mqtt.topics import UNSCALED
from han2mqtt.protocol.obis import parse_obis
from han2mqtt.protocol.stream import ContentReader
from tests.meters.test_corpus_values import _expected_fields

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "public-captures.json"
ITEMS: dict[str, dict[str, Any]] = {
    item["id"]: item for item in json.loads(VECTORS.read_text(encoding="utf-8"))
}


def decode(item: dict[str, Any]) -> MeterReading:
    """The one reading an item gives through the library path."""
    raw = bytes.fromhex(item["hex_or_text"])
    key = item["key_hex"]
    decoder = AutoDecoder(encryption_key=bytes.fromhex(key) if key else None)
    if item["format"] == "dlms-apdu":
        return decoder.decode(raw)
    readings = [decoder.feed(content) for content in ContentReader("hdlc").read(raw)]
    (reading,) = [reading for reading in readings if reading is not None]
    return reading


def _physical(code: str) -> bool:
    known = field_for(parse_obis(code))
    return known is not None and known[1] is not TEXT


@pytest.mark.parametrize("item_id", ITEMS)
def test_each_stated_value_is_decoded(item_id: str):
    item = ITEMS[item_id]
    reading = decode(item)
    for name, value in _expected_fields(item["expected"]).items():
        if name == "meter_clock":
            assert str(reading.fields["meter_datetime"]).startswith(str(value))
        elif isinstance(value, float):
            assert reading.fields[name] == pytest.approx(value, abs=1e-9), name
        else:
            assert reading.fields[name] == value, name
    for code, value in item["expected"].get("_obis_as_sent", {}).items():
        assert reading.obis[code] == value, code
    if item["expected"].get("_meter_id_absent"):
        assert reading.meter_id is None


@pytest.mark.parametrize(
    "item_id", [key for key, item in ITEMS.items() if "_scaling" in item["expected"]]
)
def test_numbers_no_source_scales_feed_no_field_and_are_marked(item_id: str):
    reading = decode(ITEMS[item_id])
    physical = [code for code in reading.obis if _physical(code) or ":24.2." in code]
    assert physical  # the lists do carry registers
    assert set(physical) <= set(reading.unscaled)
    assert not set(reading.unscaled) & set(reading.units)
    assert not set(reading.fields.values()) - {
        reading.fields.get(name) for name in ("meter_id", "meter_datetime")
    }


def test_the_state_json_lists_unscaled_numbers_apart():
    from datetime import UTC, datetime  # noqa: PLC0415 - only this test needs it

    from han2mqtt.config import Settings  # noqa: PLC0415
    from han2mqtt.mqtt.topics import messages_for_reading  # noqa: PLC0415

    reading = decode(ITEMS["cy-landisgyr-e450-dlms-parser"])
    settings = Settings()
    messages = messages_for_reading(
        reading, "m", datetime(2026, 6, 8, tzinfo=UTC), settings.mqtt, settings.publish
    )
    state = json.loads(next(m.payload for m in messages if m.topic.endswith("/state")))
    assert state[UNSCALED]["1-0:31.7.0.255"] == 130
    assert "current_l1" not in state
    topics = {m.topic: m.payload for m in messages}
    assert topics["han2mqtt/m/obis/1-0:31.7.0.255"] == "130"
