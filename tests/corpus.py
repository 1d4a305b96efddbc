"""The real-meter corpus for the tests: a copy of ``../shared/corpus/frames.json`` in ``vectors/``.

The copy makes the suite complete in any clone; ``test_the_corpus_copy_is_current`` fails when
the shared corpus beside the repository has changed and the copy has not been refreshed.
``HAN2MQTT_CORPUS`` points the tests at another file.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from han2mqtt.protocol.hdlc import HdlcFrameReader, HdlcSegmentAssembler

VENDORED = Path(__file__).resolve().parent / "vectors" / "frames.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "frames.json"
CORPUS_PATH = Path(os.environ.get("HAN2MQTT_CORPUS", str(VENDORED)))

Item = dict[str, Any]


@cache
def items() -> tuple[Item, ...]:
    """Every corpus item (a missing corpus is an error: these tests must not vanish quietly)."""
    return tuple(json.loads(CORPUS_PATH.read_text(encoding="utf-8")))


def by_id(item_id: str) -> Item:
    """The corpus item with this id."""
    for item in items():
        if item["id"] == item_id:
            return item
    raise KeyError(item_id)


def ids(predicate: Any) -> list[str]:
    """Ids of the items for which ``predicate(item)`` holds (evaluated at collection time)."""
    return [item["id"] for item in items() if predicate(item)]


def raw(item: Item) -> bytes:
    """The item's bytes (hex items) or its text encoded as ASCII (P1 telegrams)."""
    if item["format"] == "p1":
        return str(item["hex_or_text"]).encode("ascii")
    return bytes.fromhex(item["hex_or_text"])


def content(item: Item) -> bytes | None:
    """Frame content (LLC + APDU) of an item: reassembled HDLC information fields or the APDU."""
    if item["format"] == "dlms-apdu":
        return raw(item)
    assembler = HdlcSegmentAssembler()
    result = None
    for frame in HdlcFrameReader().read(raw(item)):
        result = assembler.add(frame) or result
    return result
