"""Notification bodies whose elements carry an untyped COSEM attribute descriptor.

Sagemcom XT211 meters (ČEZ Distribuce, Czech Republic) push::

    structure(2) {
        <Data>,                                   -- e.g. enum
        array(n) {
            structure(2) {
                class-id     Unsigned16    (2 octets, no tag)
                instance-id  OCTET STRING  (6 octets, no tag and no length)
                attribute-id Integer8      (1 octet, no tag)
                <Data>                     -- the attribute's value, A-XDR typed
            } ...
        }
    }

The first element of each structure is a ``Cosem-Attribute-Descriptor`` (IEC 62056-5-3,
xDLMS ``Cosem-Attribute-Descriptor ::= SEQUENCE { class-id, instance-id, attribute-id }``)
encoded as the SEQUENCE it is — nine octets without A-XDR data tags — where a ``Data`` value
would stand.  A typed reading stops at the first of them.  :func:`decode_described_body` reads
exactly that shape from the first octet to the last, or raises: it never skips octets to
resynchronise.

The descriptor decodes to the tuple ``(class_id, logical_name, attribute_id)``, so the body
becomes ``(first, [((class_id, name, attribute), value), ...])``.
"""

from __future__ import annotations

from typing import Final

from han2mqtt.errors import AxdrError
from han2mqtt.protocol.axdr import AxdrValue, DataTag, decode_data, decode_length

__all__ = ["DESCRIPTOR_SIZE", "decode_described_body"]

DESCRIPTOR_SIZE: Final = 9
"""class-id (2) + instance-id (6) + attribute-id (1) octets."""
_PAIR: Final = 2
_HEADER: Final = bytes((DataTag.STRUCTURE, _PAIR))


def decode_described_body(buf: bytes, pos: int) -> tuple[AxdrValue, int]:
    """Decode a body of descriptor/value pairs at ``pos``; return ``(body, end)``.

    Raises:
        AxdrError: the bytes are not exactly that shape (with the offset where they differ).
    """
    pos = _expect(buf, pos, _HEADER, "a structure of two elements")
    first, pos = decode_data(buf, pos)
    pos = _expect(buf, pos, bytes((DataTag.ARRAY,)), "an array of described values")
    count, pos = decode_length(buf, pos)
    elements: list[AxdrValue] = []
    for _ in range(count):
        element, pos = _element(buf, pos)
        elements.append(element)
    return (first, elements), pos


def _element(buf: bytes, pos: int) -> tuple[AxdrValue, int]:
    pos = _expect(buf, pos, _HEADER, "structure(2) { descriptor, value }")
    end = pos + DESCRIPTOR_SIZE
    if end > len(buf):
        raise AxdrError("truncated attribute descriptor", offset=pos)
    class_id = int.from_bytes(buf[pos : pos + 2], "big")
    name = buf[pos + 2 : pos + 8]
    attribute = int.from_bytes(buf[pos + 8 : end], "big", signed=True)
    value, end = decode_data(buf, end)
    return ((class_id, name, attribute), value), end


def _expect(buf: bytes, pos: int, octets: bytes, what: str) -> int:
    if buf[pos : pos + len(octets)] != octets:
        raise AxdrError(f"expected {what}", offset=pos)
    return pos + len(octets)
