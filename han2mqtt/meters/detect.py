"""Turn a data-notification body into a reading: find the OBIS values, recognise the vendor.

Four shapes cover every plaintext push list we know of:

1. OBIS/value(/scaler-unit) structures in an array (Aidon, Landis+Gyr, Iskra, Sagemcom ...).
2. A flat structure of alternating OBIS code and value, with loose values in between (Kamstrup,
   Swedish Kaifa, Austrian Sagemcom), possibly with null-data padding.
3. A structure of bare values in a fixed order (Norwegian Kaifa lists 1-3).
4. A self-describing list: the capture objects, then the values (Swiss VSE lists; see
   :mod:`han2mqtt.meters.capture`).

A value is published only where its OBIS code and scaling are known for certain: a list whose
values cannot all be paired exactly with an OBIS code (a number among OBIS-coded values without
one, an OBIS code without its value) is a :class:`LayoutError`, never a guess.

:func:`extract` walks the value tree once and yields shapes 1 and 2 uniformly; shape 3 is read with
the vendor's positional table.  The vendor is recognised from the list version identifier or the
meter number in the frame itself, every frame anew: a frame never inherits the layout of the frame
before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, NamedTuple, TypeGuard

from han2mqtt import model
from han2mqtt.errors import LayoutError
from han2mqtt.meters import aidon, iskra, kaifa, kamstrup
from han2mqtt.meters.capture import CaptureList, capture_items, described_items, scaler_unit
from han2mqtt.meters.landisgyr import E450_AT
from han2mqtt.meters.normalize import (
    TEXT,
    ObisValue,
    Quantity,
    build_reading,
    describe,
    field_for,
)
from han2mqtt.meters.profile import VendorProfile
from han2mqtt.model import FieldValue, MeterReading
from han2mqtt.protocol.apdu import DataNotification, decode_data_notification, strip_llc
from han2mqtt.protocol.axdr import AxdrValue
from han2mqtt.protocol.cosem import CosemDateTime, date_time_text, unit_symbol
from han2mqtt.protocol.obis import OBIS_LENGTH, Obis

__all__ = [
    "GENERIC",
    "PROFILES",
    "Extracted",
    "Plan",
    "Slot",
    "decode_content",
    "decode_notification",
    "execute",
    "extract",
    "identifier_text",
    "identifier_traits",
    "leaves",
    "make_plan",
    "profile_named",
    "stamp_text",
]

LANDIS_GYR = VendorProfile(name="landisgyr", manufacturer="Landis+Gyr", list_ids=("EMBRIQ_",))
GENERIC = VendorProfile(name="generic", manufacturer="")
SELF_DESCRIBING = VendorProfile(name="self-describing", manufacturer="")
"""Lists that name their capture objects: read as they say, whatever the vendor."""
PROFILES: Final = (
    aidon.PROFILE,
    kaifa.PROFILE,
    kamstrup.PROFILE,
    LANDIS_GYR,
    E450_AT,
    iskra.PROFILE,
)
"""Known vendors, in the order they are tried."""
METER_ID_OBIS: Final = Obis(0, 0, 96, 1, 0, 255)
"""COSEM device identification 1: where a meter number sent without a code is reported."""
LIST_ID_OBIS: Final = Obis(1, 1, 0, 2, 129, 255)
"""OBIS code NEK lists give the list version identifier (Kamstrup sends it without the code)."""
_DATE_TIME_OCTETS: Final = 12
_METER_NUMBER_DIGITS: Final = (6, 20)
"""Length range of a meter number sent as a bare value (see :func:`_trailing_meter_number`)."""


class _Item(NamedTuple):
    obis: Obis
    value: AxdrValue
    scaler_unit: tuple[int, int] | None
    leaf: int
    """Index of the value among the body's leaves in wire order (for templates)."""


class Extracted(NamedTuple):
    """OBIS-coded items of a body, and the values that came without an OBIS code."""

    items: list[_Item]
    loose: list[AxdrValue]
    loose_leaves: list[int]


_OBIS_OF: dict[bytes, Obis] = {}
_MAX_CACHED: Final = 4096


def _obis(value: AxdrValue) -> Obis | None:
    if type(value) is not bytes or len(value) != OBIS_LENGTH:
        return None
    obis = _OBIS_OF.get(value)
    if obis is None:
        if len(_OBIS_OF) >= _MAX_CACHED:
            _OBIS_OF.clear()
        obis = _OBIS_OF[value] = Obis(*value)
    return obis


def extract(body: AxdrValue) -> Extracted:
    """Collect (OBIS, value, scaler-unit) items and loose values from a notification body."""
    result = Extracted([], [], [])
    _walk(body, result, 0)
    return result


def _is_sequence(value: AxdrValue) -> TypeGuard[list[AxdrValue] | tuple[AxdrValue, ...]]:
    """Array or structure.  ``type() is``: date-times and bit-strings are NamedTuples."""
    return type(value) is list or type(value) is tuple


def _walk(node: AxdrValue, out: Extracted, leaf: int) -> int:
    """Walk ``node`` whose first leaf has index ``leaf``; return the index after its last leaf."""
    if not _is_sequence(node):
        if node is not None:
            out.loose.append(node)
            out.loose_leaves.append(leaf)
        return leaf + 1
    index, count = 0, len(node)
    while index < count:
        element = node[index]
        obis = _obis(element)
        if obis is not None and index + 1 < count:
            value = node[index + 1]
            if not _is_sequence(value):
                pair = scaler_unit(node[index + 2]) if index + 2 < count else None
                out.items.append(_Item(obis, value, pair, leaf + 1))
                index += 3 if pair is not None else 2
                leaf += 4 if pair is not None else 2
                continue
        leaf = _walk(element, out, leaf)
        index += 1
    return leaf


def leaves(node: AxdrValue) -> list[AxdrValue]:
    """The leaves of a value tree in wire order (what the templates' slots hold)."""
    if not _is_sequence(node):
        return [node]
    result: list[AxdrValue] = []
    for element in node:
        result += leaves(element)
    return result


def _text(value: AxdrValue) -> str | None:
    """Octet/visible strings that hold text (meter ids pad with NULs or spaces)."""
    if isinstance(value, str):
        return value.rstrip("\x00 ")
    if isinstance(value, bytes):
        stripped = value.rstrip(b"\x00 ")
        if stripped and all(0x20 <= byte < 0x7F for byte in stripped):
            return stripped.decode("ascii")
    return None


def _leading(extracted: Extracted) -> list[AxdrValue]:
    """The body's first value, if it came without an OBIS code (where lists put their id)."""
    return extracted.loose[:1] if extracted.loose_leaves[:1] == [0] else []


def _identify(extracted: Extracted) -> VendorProfile | None:
    texts = [_text(value) for value in _leading(extracted)]
    texts += [_text(item.value) for item in extracted.items if item.obis.cde == (0, 2, 129)]
    for text in texts:
        if text:
            for profile in PROFILES:
                if profile.matches_list_id(text):
                    return profile
    for item in extracted.items:
        known = field_for(item.obis)
        text = _text(item.value)
        if known and known[0] == model.FIELD_METER_ID and text:
            for profile in PROFILES:
                if profile.matches_meter_id(text):
                    return profile
    return None


def _choose_profile(
    notification: DataNotification, extracted: Extracted, forced: VendorProfile | None
) -> VendorProfile:
    body = notification.body
    found = _identify(extracted)
    if found is None and not extracted.items and _is_kaifa_list1(body):
        found = kaifa.PROFILE
    if found is None and not extracted.items:
        found = _positional_match(extracted, notification) if _is_flat(body) else None
    if found is None and _is_array_of_structures(body):
        found = aidon.PROFILE
    if forced is not None and forced is not GENERIC:
        if found is not None and found is not forced:
            raise LayoutError(
                f"frame is a {found.manufacturer} list but the meter type is set to {forced.name}"
            )
        return forced
    return found or GENERIC


def _is_array_of_structures(body: AxdrValue) -> bool:
    """The NEK Aidon shape: an array of (OBIS, value, scaler-unit) structures.

    Aidon list 1 carries nothing else to recognise it by.  (The Landis+Gyr E350 list copies the
    shape but names itself "EMBRIQ_..." in list 2.)
    """
    return type(body) is list and bool(body) and all(type(x) is tuple for x in body)


def _is_kaifa_list1(body: AxdrValue) -> bool:
    """Kaifa's list 1 is a structure of one bare integer: nobody else sends that.

    (A bare integer without the structure is not it: nothing says what that would be.)
    """
    return type(body) is tuple and len(body) == 1 and type(body[0]) is int


def _positional_match(extracted: Extracted, notification: DataNotification) -> VendorProfile | None:
    """The vendor whose positional table fits an unidentified list of bare values.

    Fitting means the same count and the right kind at every position (text for identifiers,
    a number elsewhere), so a list of another shape is never read with someone else's table.
    Only vendors without list identifiers are recognised so: Kaifa's lists 2 and 3 name
    themselves (``KFM_001``), and list 1 has a shape of its own.
    """
    for profile in PROFILES:
        if profile.list_ids:
            continue  # a vendor with list identifiers is recognised by them, not by a shape
        codes = profile.positional.get(len(extracted.loose))
        if (
            codes is not None
            and all(map(_fits, codes, extracted.loose))
            and _structure_fits(profile, extracted, notification)
        ):
            return profile
    return None


def _structure_fits(
    profile: VendorProfile, extracted: Extracted, notification: DataNotification
) -> bool:
    """Where a vendor states its lists' full structure: every element's type, and the prefix."""
    tags = profile.positional_tags.get(len(extracted.loose))
    if tags is None:
        return True
    first = _text(extracted.loose[0]) if extracted.loose else None
    return notification.leaf_tags() == tags and (first or "").startswith(profile.positional_prefix)


def _fits(code: Obis | None, value: AxdrValue) -> bool:
    if code is None:
        return True
    known = field_for(code)
    if known is None:  # an identifier the NEK table does not name (logical device name ...)
        return _text(value) is not None or type(value) is int
    if known[1] is TEXT:
        return _text(value) is not None
    return type(value) is int


def _is_flat(body: AxdrValue) -> bool:
    """A structure of bare values: the only shape a positional table describes."""
    return type(body) is tuple and all(v is not None and not _is_sequence(v) for v in body)


def _positional(body: AxdrValue, extracted: Extracted, profile: VendorProfile) -> list[_Item]:
    if not _is_flat(body):
        raise LayoutError("values without OBIS codes, but not a structure of bare values")
    codes = profile.positional.get(len(extracted.loose))
    if codes is None:
        raise LayoutError(
            f"{len(extracted.loose)} values without OBIS codes match no "
            f"{profile.manufacturer or 'known'} list layout"
        )
    pairs = zip(codes, extracted.loose, extracted.loose_leaves, strict=True)
    return [_Item(code, value, None, leaf) for code, value, leaf in pairs if code is not None]


class Slot(NamedTuple):
    """A value the plan reads from the frame at decode time (the rest of a plan is constant).

    Attributes:
        leaf: index of the value among the frame's slots (body leaves, or a template's fields).
        obis: the OBIS code it is reported under.
        exponent: the scaler sent or implied.
        unit: the unit symbol sent, if any.
        is_stamp: True for a COSEM date-time (12 octets), False for a number.
    """

    leaf: int
    obis: Obis
    exponent: int
    unit: str | None
    is_stamp: bool


Step = ObisValue | Slot


@dataclass(frozen=True, slots=True)
class Plan:
    """How to turn one shape of frame into a reading: the vendor, and one step per value.

    A plan depends only on what is constant between two frames of the same list (structure,
    OBIS codes, identifiers); numbers and time stamps are read through :class:`Slot` steps.
    That is what lets :mod:`han2mqtt.meters.template` reuse it for every later frame.
    """

    profile: VendorProfile
    steps: tuple[Step, ...]
    extra: dict[str, FieldValue]
    sources: tuple[int | None, ...] = ()
    """Per step: the leaf whose octet/visible string the step's text was read from (meter id,
    meter type, list id), else None.  Those texts differ from meter to meter while the plan does
    not, as long as each keeps its :func:`identifier_traits`: a template reads them per frame."""
    unscaled: frozenset[Obis] = frozenset()
    """Codes whose numbers no source scales: published raw under the code only, marked."""
    overrides: dict[tuple[int, int, int], tuple[str, Quantity] | None] | None = None
    """Field meanings of this list that differ from the NEK lists' (see :func:`build_reading`)."""
    unmapped: frozenset[Obis] = frozenset()
    """Codes published under their OBIS code only, as sent: objects of an M-Bus channel (the
    gas meter's device ID is not the electricity meter's)."""

    typed: bool = True
    """False for bodies with untyped attribute descriptors: their leaves have no A-XDR offsets."""

    @property
    def templated(self) -> bool:
        """Whether templates may serve this plan: not where leaves have no A-XDR offsets.

        (A template runs plans with unscaled numbers or overrides the reference way.)
        """
        return self.typed


def make_plan(notification: DataNotification, forced: VendorProfile | None = None) -> Plan:
    """Recognise the layout of a notification and plan its decoding.

    Raises:
        LayoutError: the body matches no layout, or contradicts the configured vendor.
    """
    if not notification.typed:
        return _capture_plan(described_items(notification.body), typed=False)
    captured = capture_items(notification.body)
    if captured is not None:
        return _capture_plan(captured)
    extracted = extract(notification.body)
    _check_paired(extracted)
    profile = _choose_profile(notification, extracted, forced)
    items = extracted.items or _positional(notification.body, extracted, profile)
    steps: list[Step] = []
    sources: list[int | None] = []
    for item in items:
        step = _step(item, profile)
        if step is not None:
            steps.append(step)
            is_text = isinstance(step, ObisValue) and isinstance(item.value, bytes | str)
            sources.append(item.leaf if is_text else None)
    leading = _leading(extracted)
    list_id = _text(leading[0]) if extracted.items and leading else None
    if list_id and profile.matches_list_id(list_id):
        steps.insert(0, ObisValue(LIST_ID_OBIS, list_id))
        sources.insert(0, extracted.loose_leaves[0])
    number = _trailing_meter_number(notification.body, extracted)
    if number is not None:
        steps.append(ObisValue(METER_ID_OBIS, number))
        sources.append(extracted.loose_leaves[-1])
    if not steps:
        raise LayoutError("the notification carries no values")
    extra: dict[str, FieldValue] = {}
    if profile.manufacturer:
        extra[model.FIELD_METER_MANUFACTURER] = profile.manufacturer
    return Plan(profile, tuple(steps), extra, tuple(sources), overrides=profile.overrides)


def identifier_text(value: bytes | str) -> str:
    """The text a plan publishes for an identifier sent as ``value`` (hex when not printable)."""
    text = _text(value)
    if text is not None or isinstance(value, str):  # (text is never None for a str)
        return text or ""
    return value.hex()


def identifier_traits(value: bytes | str) -> tuple[object, ...] | None:
    """Everything :func:`make_plan` decides from an identifier's content, and nothing else.

    Whether it is text at all (else it is published as hex and fits no text position), whether
    it is empty, whether it is a bare meter number (6-20 digits), and which vendor's list id and
    meter-number prefix it carries.  Two frames of one shape whose identifiers have equal traits
    get the same plan apart from the identifiers' texts: what lets a template serve a fleet.
    """
    text = _text(value)
    if text is None:
        return None
    return (
        bool(text),
        text.isdigit() and _METER_NUMBER_DIGITS[0] <= len(text) <= _METER_NUMBER_DIGITS[1],
        tuple(profile.matches_list_id(text) for profile in PROFILES),
        tuple(profile.matches_meter_id(text) for profile in PROFILES),
    )


def _capture_plan(captured: CaptureList, *, typed: bool = True) -> Plan:
    """The plan of a self-describing list: each value under the capture object it pairs with.

    The meter is named by the first device identifier the list sends, in this order: device ID 1
    (0-0:96.1.0), the COSEM logical device name (0-0:42.0.0, unique per meter by definition),
    device ID 2 (0-0:96.1.1; in these lists an identifier, not the meter type of NEK lists).
    """
    profile = SELF_DESCRIBING
    steps: list[Step] = []
    unscaled: set[Obis] = set()
    unmapped = {item.obis for item in captured.items if item.obis.a == 0 and item.obis.b}
    for item in captured.items:
        if not item.scaled:
            steps.append(Slot(item.leaf, item.obis, 0, None, is_stamp=False))
            unscaled.add(item.obis)
            continue
        step = _step(_Item(item.obis, item.value, item.scaler_unit, item.leaf), profile)
        if step is not None:
            steps.append(step)
    if not steps:
        raise LayoutError("the self-describing list carries no value we can publish")
    own = [item for item in captured.items if item.obis not in unmapped]
    sent = [cde for cde in _IDENTIFIERS if any(item.obis.cde == cde for item in own)]
    meanings = {cde: _METER_ID_TEXT if cde == sent[0] else None for cde in sent}
    overrides: dict[tuple[int, int, int], tuple[str, Quantity] | None] | None = {
        cde: meaning
        for cde, meaning in meanings.items()
        if meaning != field_for(Obis(0, 0, *cde, 255))  # only where the NEK meaning differs
    } or None
    extra: dict[str, FieldValue] = {}
    name = profile.name if captured.profile is None else f"{profile.name}:{captured.profile.name}"
    return Plan(
        VendorProfile(name=name, manufacturer=""),
        tuple(steps),
        extra,
        unscaled=frozenset(unscaled),
        overrides=overrides,
        typed=typed,
        unmapped=frozenset(unmapped),
    )


_IDENTIFIERS: Final = ((96, 1, 0), (42, 0, 0), (96, 1, 1))
"""Device ID 1, COSEM logical device name, device ID 2: the meter id is the first one sent."""
_METER_ID_TEXT: Final = (model.FIELD_METER_ID, TEXT)


def _check_paired(extracted: Extracted) -> None:
    """Values without an OBIS code among OBIS-coded ones must be of a kind a list sends so.

    Text (list identifier, meter number), date-times and null padding are; a number, or an OBIS
    code that no value follows, means the list is not OBIS/value pairs (capture-object
    definitions read as such pairs published their attribute index as every value).

    Raises:
        LayoutError: a loose number or OBIS code among OBIS-coded values.
    """
    if not extracted.items:
        return
    for value in extracted.loose:
        if isinstance(value, int | float):
            raise LayoutError(
                f"a number ({value}) without an OBIS code among OBIS-coded values: "
                "cannot pair the list exactly"
            )
        if type(value) is bytes and len(value) == OBIS_LENGTH and _text(value) is None:
            raise LayoutError(f"OBIS code {Obis(*value)} without a value")


def _trailing_meter_number(body: AxdrValue, extracted: Extracted) -> str | None:
    """A meter number sent as a last bare value after OBIS-coded ones (Netz NÖ, Sagemcom T210-D).

    Only when no OBIS-coded value names the meter, only digits (a number, not a label), and only
    as the body's own last element (not the end of a nested structure).
    """
    if not extracted.items or len(extracted.loose) < 2:
        return None
    if type(body) is not tuple or not body or _is_sequence(body[-1]):
        return None
    if extracted.loose_leaves[-1] != len(leaves(body)) - 1:
        return None
    for item in extracted.items:
        known = field_for(item.obis)
        if known is not None and known[0] == model.FIELD_METER_ID:
            return None
    text = _text(extracted.loose[-1])
    low, high = _METER_NUMBER_DIGITS
    return text if text is not None and text.isdigit() and low <= len(text) <= high else None


def _step(item: _Item, profile: VendorProfile) -> Step | None:
    """Plan one value: a slot for numbers and time stamps, a constant for everything else."""
    value = item.value
    if isinstance(value, bool):
        return ObisValue(item.obis, int(value))  # a constant: templates do not read booleans
    if isinstance(value, int | float):
        if item.scaler_unit is None and not profile.implied_exponents and not field_for(item.obis):
            return None  # no scaler sent, none documented, none known for the code: unknown
        return _number_slot(item, profile)
    if isinstance(value, CosemDateTime) or (
        isinstance(value, bytes) and len(value) == _DATE_TIME_OCTETS and item.obis.cde == (1, 0, 0)
    ):
        return Slot(item.leaf, item.obis, 0, None, is_stamp=True)
    if isinstance(value, bytes):
        text = _text(value)
        return ObisValue(item.obis, text if text is not None else value.hex())
    if isinstance(value, str):
        return ObisValue(item.obis, value.rstrip("\x00 "))
    return None  # null-data, bit-strings, dates, times and nested lists carry nothing we publish


def _number_slot(item: _Item, profile: VendorProfile) -> Slot:
    if item.scaler_unit is not None:
        scaler, unit = item.scaler_unit
        return Slot(item.leaf, item.obis, scaler, unit_symbol(unit), is_stamp=False)
    known = field_for(item.obis)
    exponent = profile.implied_exponents.get(known[1].kind, 0) if known else 0
    return Slot(item.leaf, item.obis, exponent, None, is_stamp=False)


def stamp_text(raw: AxdrValue, *, trust_deviation: bool) -> str | None:
    """ISO 8601 text of a date-time slot (12 raw octets or a decoded date-time), or None."""
    if isinstance(raw, bytes):
        return date_time_text(raw, use_deviation=trust_deviation)
    if not isinstance(raw, CosemDateTime):
        return None
    return raw.isoformat(use_deviation=trust_deviation)


def execute(
    plan: Plan, slots: Sequence[AxdrValue], header_stamp: CosemDateTime | bytes | None
) -> MeterReading:
    """Build the reading of one frame from its plan, its slot values and its header time stamp."""
    profile = plan.profile
    values: list[ObisValue] = []
    append = values.append
    for step in plan.steps:
        if not isinstance(step, Slot):
            append(step)
            continue
        raw = slots[step.leaf]
        if step.is_stamp:
            text = stamp_text(raw, trust_deviation=profile.trust_clock_deviation)
            if text is not None:
                append(ObisValue(step.obis, text))
        elif isinstance(raw, int | float):
            append(ObisValue(step.obis, raw, step.exponent, step.unit))
    values = profile.adjust(values)
    extra = dict(plan.extra)
    if header_stamp is not None:
        text = stamp_text(header_stamp, trust_deviation=profile.trust_clock_deviation)
        if text is not None:
            extra[model.FIELD_METER_DATETIME] = text
    if not plan.unscaled and plan.overrides is None and not plan.unmapped:
        return build_reading(values, layout=profile.name, extra=extra)
    return _with_unscaled(plan, values, extra)


def _with_unscaled(
    plan: Plan, values: list[ObisValue], extra: dict[str, FieldValue]
) -> MeterReading:
    """A reading whose unscaled and unmapped values sit under their codes only.

    The unscaled ones are listed as such; the unmapped ones (M-Bus channel objects) are as sent.
    """
    apart = plan.unscaled | plan.unmapped
    mapped = [value for value in values if value.obis not in apart]
    raw = [value for value in values if value.obis in apart]
    reading = build_reading(mapped, layout=plan.profile.name, extra=extra, overrides=plan.overrides)
    if not raw:
        return reading
    bare = build_reading(raw, layout=plan.profile.name, map_fields=False)
    unscaled = tuple(code for code, in_plan in _codes(raw, plan.unscaled) if in_plan)
    units = {**reading.units, **bare.units}
    return replace(reading, obis={**reading.obis, **bare.obis}, units=units, unscaled=unscaled)


def _codes(values: list[ObisValue], chosen: frozenset[Obis]) -> list[tuple[str, bool]]:
    """Each value's OBIS text, and whether its code is among ``chosen``."""
    return [(describe(value.obis)[0], value.obis in chosen) for value in values]


def decode_notification(
    notification: DataNotification, forced: VendorProfile | None = None
) -> MeterReading:
    """Decode a data-notification into a reading (no template cache; see AutoDecoder for that).

    Raises:
        LayoutError: the body matches no layout, or contradicts the configured vendor.
    """
    plan = make_plan(notification, forced)
    return execute(plan, leaves(notification.body), notification.date_time)


def decode_content(content: bytes, forced: VendorProfile | None = None) -> MeterReading:
    """Decode frame content (LLC header optional + data-notification APDU) into a reading."""
    return decode_notification(decode_data_notification(strip_llc(content)), forced)


def profile_named(name: str) -> VendorProfile | None:
    """The profile for a ``meter.type`` value; None for ``auto``."""
    if name == "auto":
        return None
    for profile in (*PROFILES, GENERIC):
        if profile.name == name:
            return profile
    raise LayoutError(f"unknown meter type {name!r}")
