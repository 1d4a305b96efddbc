"""Configuration: a YAML file, overridden by environment variables, with secrets from files.

Precedence, highest first:

1. environment variables ``HAN2MQTT_<SECTION>__<KEY>`` (``HAN2MQTT_MQTT__HOST=broker``);
2. secret files named ``<section>__<key>`` (``mqtt__password``) in ``$CREDENTIALS_DIRECTORY``
   (systemd ``LoadCredential``) or ``/run/secrets`` (Docker secrets);
3. the YAML file (``--config``; else ``/etc/han2mqtt/config.yaml`` or ``./config.yaml`` if present);
4. the defaults below.

Every model forbids unknown keys, so a misspelt key is an error that names it; likewise every
``HAN2MQTT_<SECTION>__<KEY>`` variable must name a known section and key.  Secrets are
``SecretStr``: they never appear in a repr, a log line, ``bridge/info`` or an error message.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import ssl
import stat
from collections.abc import Iterator, Mapping
from datetime import UTC, tzinfo
from itertools import pairwise
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from han2mqtt.errors import ConfigError

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CONFIG_PATHS",
    "GridSettings",
    "HealthSettings",
    "HomeAssistantSettings",
    "LogSettings",
    "MeterSettings",
    "MqttSettings",
    "PublishSettings",
    "RetainSettings",
    "Settings",
    "SourceSettings",
    "StateSettings",
    "TariffSeason",
    "TariffSettings",
    "TariffWeight",
    "TlsSettings",
    "WebSettings",
    "host_zone",
    "load_settings",
    "setting_keys",
]

DEFAULT_CONFIG_PATHS = (Path("/etc/han2mqtt/config.yaml"), Path("config.yaml"))
ENV_PREFIX = "HAN2MQTT_"
ENV_DELIMITER = "__"
DEFAULT_CLIENT_ID = "han2mqtt"
"""``mqtt.client_id`` by default (a replay makes it ``han2mqtt-replay``)."""
NON_SETTING_VARIABLES = frozenset({"HAN2MQTT_CORPUS"})
"""``HAN2MQTT_…`` variables that are no settings: ``HAN2MQTT_CORPUS`` points the tests and
benchmarks at a capture file."""
SECRET_DIRECTORIES = ("/run/secrets",)
METER_TYPES = ("auto", "aidon", "kaifa", "kamstrup", "landisgyr", "generic")
MQTT_STRING_MAX = 65535
"""Octets of UTF-8 in an MQTT string: its length is two octets (MQTT 3.1.1 §1.5.3, 5 §1.5.4)."""
TOPIC_PART_MAX = 16384
"""Octets allowed for ``mqtt.base_topic``, ``homeassistant.prefix`` and ``meter.id`` each.

A quarter of :data:`MQTT_STRING_MAX`: every topic han2mqtt builds (``<base>/<meter>/obis/<code>``,
``<prefix>/device/han2mqtt_<meter>/config``) then stays within MQTT's limit.
"""
HEARTBEAT_MAX = 64
"""A heartbeat file is one line with a time stamp; anything longer is not ours."""


def _utf8_length(value: str, key: str) -> int:
    """The UTF-8 length of ``value``; an environment variable may hold undecodable bytes."""
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{key} is not valid UTF-8") from None


def _check_mqtt_string(value: str, key: str, limit: int = MQTT_STRING_MAX) -> str:
    """An MQTT UTF-8 string: at most ``limit`` octets, no NUL or other control characters."""
    if _utf8_length(value, key) > limit:
        raise ValueError(f"{key} is longer than {limit} bytes of UTF-8")
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise ValueError(f"{key} must not contain control characters (NUL, newline, ...)")
    return value


def _check_topic_prefix(value: str, key: str) -> str:
    """A topic prefix we publish under and subscribe below: plain levels, none of them empty.

    Wildcards (``+``, ``#``) are not allowed in a topic name; an empty level (``a//b``, a leading
    or trailing ``/``) makes subscriptions and ``purge`` miss our topics; ``$`` at the start is
    reserved for the broker (MQTT 3.1.1 §4.7.2).
    """
    _check_mqtt_string(value, key, TOPIC_PART_MAX)
    if any(c in value for c in "+#"):
        raise ValueError(f"{key} must not contain the wildcards + or #")
    if "" in value.split("/"):
        raise ValueError(f"{key} must not have an empty level (a leading, trailing or double /)")
    if value.startswith("$"):
        raise ValueError(f"{key} must not start with $ (reserved for the broker)")
    return value


class _Section(BaseModel):
    # inf and nan are never a sensible number of seconds (or of anything else here).
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


TIC_BAUDRATE: Final = 1200
"""The TIC's historique mode, every Linky's factory setting (the standard mode is 9600)."""


class SourceSettings(_Section):
    """Where the meter's bytes come from."""

    type: Literal["serial", "tcp", "demo", "mqtt", "file"] = "serial"
    device: str = Field(default="/dev/ttyUSB0", min_length=1)
    baudrate: int = Field(default=2400, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: int = Field(default=8, ge=5, le=8)
    stopbits: float = 1
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    format: Literal["auto", "hdlc", "mbus", "p1", "apdu", "tic"] = "auto"
    """Framing on the port: HDLC (Nordic HAN), M-Bus long frames (Austria), P1 telegrams, TIC
    (France's Linky: with ``tic`` the serial defaults become 1200 baud 7E1, the historique mode;
    set ``baudrate: 9600`` for the standard mode)."""
    watchdog: float | None = Field(default=60.0, gt=0)
    """Seconds without a valid frame after which the connection is reopened (null: never).

    Valid frames, not bytes: a port that delivers only noise (wrong line settings, a confused
    adapter) is reopened as a silent one is.  Valid frames that do not decode (a wrong key) keep
    it open: reopening would not change them, and their decode errors are logged."""
    reconnect_min: float = Field(default=1.0, gt=0)
    reconnect_max: float = Field(default=60.0, gt=0)
    connect_timeout: float | None = Field(default=30.0, gt=0)
    """Seconds one connection attempt may take (a serial server that drops SYNs; null: no limit)."""
    octet_stuffing: bool = False
    """HDLC with octet stuffing (7D xx): only for links that stuff; meters' HAN ports never do."""
    demo_interval: float = Field(default=2.0, ge=0)
    """Seconds between the steps of the built-in demo source (simulated meters)."""
    demo_speed: float = Field(default=1.0, gt=0)
    """demo: meter seconds per real second (1440: a day in a minute)."""
    demo_hours: float | None = Field(default=None, gt=0)
    """demo: meter hours after which the demo ends (None: it runs until stopped)."""
    topic: str | None = None
    """mqtt: the topic (wildcards allowed) on which relays publish the meters' raw bytes."""
    payload: Literal["auto", "binary", "hex", "base64"] = "auto"
    """mqtt, file: how a message carries the bytes (auto: hex or base64 text, else binary)."""
    shared_group: str | None = None
    """mqtt: subscribe as ``$share/<group>/<topic>`` so several processes split one fleet."""
    mqtt_host: str | None = None
    """mqtt: the broker the relays publish to, if not the ``mqtt`` section's."""
    mqtt_port: int | None = Field(default=None, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    max_topics: int = Field(default=10_000, ge=1)
    """mqtt, file: source topics whose framing and decoder state is kept (least recent go)."""
    path: Path | None = None
    """file: a recording made by ``han2mqtt record``."""
    speed: Literal["realtime", "max"] | float = "realtime"
    """file: ``realtime`` (the recorded pace), ``max`` (no waiting) or a factor (2: 2× as fast)."""

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError("stopbits must be 1, 1.5 or 2")
        return value

    @field_validator("shared_group")
    @classmethod
    def _group_is_one_level(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in "/+#\0")):
            raise ValueError("source.shared_group is one topic level, without /, + or #")
        return value

    @field_validator("speed")
    @classmethod
    def _speed_is_positive(cls, value: str | float) -> str | float:
        if isinstance(value, float) and not value > 0:
            raise ValueError("source.speed is realtime, max or a factor above 0")
        return value

    @model_validator(mode="after")
    def _tic_line_defaults(self) -> SourceSettings:
        """TIC is 7E1 at 1200 baud (historique) unless the line is set (Enedis-NOI-CPT_54E)."""
        if self.format != "tic":
            return self
        unset = {"baudrate", "parity", "bytesize"} - self.model_fields_set
        for key, value in (("baudrate", TIC_BAUDRATE), ("parity", "E"), ("bytesize", 7)):
            if key in unset:
                object.__setattr__(self, key, value)
        return self

    @model_validator(mode="after")
    def _tcp_needs_an_address(self) -> SourceSettings:
        if self.type == "tcp" and (not self.host or self.port is None):
            raise ValueError("source.type tcp needs source.host and source.port")
        if self.type == "mqtt" and not self.topic:
            raise ValueError("source.type mqtt needs source.topic")
        if self.type == "file" and self.path is None:
            raise ValueError("source.type file needs source.path")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("source.reconnect_max must be >= source.reconnect_min")
        return self


class MeterSettings(_Section):
    """The meter behind the port."""

    type: Literal["auto", "aidon", "kaifa", "kamstrup", "landisgyr", "generic"] = "auto"
    offline_after: float = Field(default=60.0, gt=0)
    """Seconds without a frame before the meter's availability turns offline."""
    max_meters: int = Field(default=2000, ge=1)
    """Meters remembered at once; a new one beyond evicts the longest-offline (a fleet of 1,000
    meters on one MQTT relay fits twice)."""
    id: str | None = None
    """Topic segment for this meter instead of its serial number."""
    encryption_key: SecretStr | None = None
    """AES-128 key (32 hex digits) for meters that encrypt (Danish Kamstrup, Austrian meters)."""
    authentication_key: SecretStr | None = None
    """Authentication key (32 hex digits); with it the GCM tag of every frame is verified."""
    timezone: str | None = None
    """IANA zone of the meter's local time (hours, days, months); default: the host's."""
    max_power: float = Field(default=50.0, gt=0)
    """kW the installation can draw at most: a register rising faster is rejected."""
    max_gas_flow: float = Field(default=16.0, gt=0)
    """m³/h a gas meter behind the P1 port passes at most (G10: 16): a faster ``gas_total`` is
    rejected."""
    main_fuse: float | None = Field(default=None, gt=0)
    """The main fuse in A, for ``phase_load_l1..3``."""
    energy_resolution: Literal["auto", 1, 10] = "auto"
    """Wh per unit of a Kamstrup meter's energy registers; ``auto``: decided from evidence
    (``han2mqtt.energy.resolution``), the list's usual resolution until then."""

    @field_validator("energy_resolution", mode="before")
    @classmethod
    def _resolution(cls, value: object) -> object:
        # Environment variables and secrets arrive as text: "10" means the number.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r} (an IANA name: Europe/Oslo)"
                ) from None
        return value

    def zone(self) -> tzinfo:
        """``timezone`` as a zone; unset: the host's (``$TZ``, ``/etc/localtime``), else UTC."""
        if self.timezone is not None:
            return ZoneInfo(self.timezone)
        return host_zone()

    @field_validator("encryption_key", "authentication_key")
    @classmethod
    def _hex_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().replace(" ", "").replace(":", "")
        if len(text) != 32 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ValueError("a key is 32 hex digits (16 octets)")
        return SecretStr(text)

    @field_validator("id")
    @classmethod
    def _id_fits_a_topic(cls, value: str | None) -> str | None:
        if value is not None and _utf8_length(value, "meter.id") > TOPIC_PART_MAX:
            raise ValueError(f"meter.id is longer than {TOPIC_PART_MAX} bytes of UTF-8")
        return value

    def key_bytes(self) -> tuple[bytes | None, bytes | None]:
        """The encryption and authentication keys as octets."""

        def octets(key: SecretStr | None) -> bytes | None:
            return None if key is None else bytes.fromhex(key.get_secret_value())

        return octets(self.encryption_key), octets(self.authentication_key)


def host_zone() -> tzinfo:
    """The host's time zone with its DST rules: ``$TZ`` if an IANA name, else /etc/localtime."""
    name = os.environ.get("TZ", "").removeprefix(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with Path("/etc/localtime").open("rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        return UTC


class TlsSettings(_Section):
    """TLS towards the broker."""

    enabled: bool = False
    ca_certs: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    insecure: bool = False
    """Skip the broker's host name check (self-signed certificates on a LAN)."""

    @model_validator(mode="after")
    def _files_load(self) -> TlsSettings:
        """Load the files as the connection will, so that a bad one is a config error now."""
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("mqtt.tls.keyfile needs mqtt.tls.certfile")
        if not self.enabled:
            return self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.ca_certs is not None:
            _load_tls(context.load_verify_locations, "ca_certs", self.ca_certs)
        if self.certfile is not None:
            _load_tls(
                # An empty password: an encrypted key fails instead of prompting on a terminal.
                lambda path: context.load_cert_chain(path, self.keyfile, password=""),
                "certfile",
                self.certfile,
            )
        return self


def _load_tls(load: Any, key: str, path: Path) -> None:  # noqa: ANN401 - an ssl.SSLContext method
    what = {
        "ca_certs": "holds no PEM certificate",
        "certfile": "is no certificate with its private key (set mqtt.tls.keyfile if the key is "
        "in another file; encrypted keys are not supported)",
    }[key]
    try:
        load(path)
    except ssl.SSLError:
        raise ValueError(f"mqtt.tls.{key}: {path} {what}") from None
    except OSError as exc:
        raise ValueError(f"mqtt.tls.{key}: cannot read {path}: {exc.strerror}") from None


class RetainSettings(_Section):
    """Retain flags of the reading topics (bridge and availability topics are always retained)."""

    state: bool = False
    fields: bool = False
    obis: bool = False


class MqttSettings(_Section):
    """The broker and how to talk to it."""

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str = DEFAULT_CLIENT_ID
    base_topic: str = "han2mqtt"
    qos: int = Field(default=0, ge=0, le=2)
    retain: RetainSettings = RetainSettings()
    tls: TlsSettings = TlsSettings()
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive: int = Field(default=60, ge=5, le=65535)
    """Seconds; MQTT sends it as two octets."""
    queue_size: int = Field(default=1000, ge=1)
    """Messages held while the broker is unreachable; the oldest go first when it is full."""

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() or c == "\0" for c in value):
            raise ValueError("mqtt.host must be a host name or address (not empty, no spaces)")
        return value

    @field_validator("base_topic")
    @classmethod
    def _topic_is_plain(cls, value: str) -> str:
        return _check_topic_prefix(value, "mqtt.base_topic")

    @field_validator("client_id", "username")
    @classmethod
    def _mqtt_string(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The rule for a client id: 1 to 65,535 bytes of UTF-8 without control characters.

        MQTT 3.1.1 (§3.1.3.1) guarantees only 1 to 23 letters and digits; brokers may accept
        more (mosquitto does), and a broker that refuses one says so in its CONNACK, which is
        logged.  Beyond 65,535 bytes the CONNECT packet cannot carry it at all.
        """
        if value is None:
            return None
        if info.field_name == "client_id" and not value:
            raise ValueError("mqtt.client_id must not be empty")
        return _check_mqtt_string(value, f"mqtt.{info.field_name}")

    @model_validator(mode="after")
    def _password_needs_username(self) -> MqttSettings:
        if self.password is not None and self.username is None:
            raise ValueError("mqtt.password is set without mqtt.username (MQTT sends neither then)")
        if self.password is not None:
            _check_mqtt_string(self.password.get_secret_value(), "mqtt.password")
        return self


class HomeAssistantSettings(_Section):
    """Home Assistant MQTT discovery."""

    discovery: bool = True
    prefix: str = "homeassistant"
    mode: Literal["device", "entity"] = "device"

    @field_validator("prefix")
    @classmethod
    def _prefix_is_plain(cls, value: str) -> str:
        return _check_topic_prefix(value, "homeassistant.prefix")


class PublishSettings(_Section):
    """Which topic families to publish."""

    state: bool = True
    fields: bool = True
    obis: bool = True
    info_interval: float = Field(default=60.0, gt=0)
    """Seconds between ``bridge/info`` updates."""


class LogSettings(_Section):
    """Logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class HealthSettings(_Section):
    """Liveness for Docker's HEALTHCHECK (decoded frames) and systemd's watchdog (valid frames)."""

    heartbeat_file: Path | None = None
    """Written after decoded frames; only a file that is missing or already a heartbeat."""
    max_age: float = Field(default=120.0, gt=0)
    """``han2mqtt healthcheck`` fails when the last decoded frame is older than this (seconds);
    systemd's watchdog pings stop when the last valid frame is."""

    @field_validator("heartbeat_file", mode="before")
    @classmethod
    def _names_a_file(cls, value: object) -> object:
        if isinstance(value, str) and (not value.strip() or value.endswith("/")):
            raise ValueError("health.heartbeat_file must name a file (or be null)")
        return value

    @field_validator("heartbeat_file")
    @classmethod
    def _only_our_own_file(cls, value: Path | None) -> Path | None:
        """The daemon replaces the file: refuse one that exists and is no heartbeat."""
        if value is not None:
            problem = _not_a_heartbeat(value)
            if problem is not None:
                raise ValueError(f"health.heartbeat_file: {value} {problem}")
        return value


def _not_a_heartbeat(path: Path) -> str | None:
    """None when ``path`` is missing or holds a heartbeat; else what it is instead."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be checked: {exc.strerror}"
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        return f"is {kind}"
    try:
        with path.open("rb") as file:
            text = file.read(HEARTBEAT_MAX + 1)
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    try:
        float(text.decode("ascii"))
    except ValueError:
        if text:  # an empty file is a heartbeat interrupted before its first write
            return "exists and is not a han2mqtt heartbeat file (it would be replaced)"
    return None


class WebSettings(_Section):
    """The status page and its JSON, event and metrics endpoints (read-only).

    With ``username`` and ``password`` every route asks for them (HTTP Basic authentication):
    the page shows a household's consumption, hour by hour.  Basic authentication sends the
    password with every request, readable by anyone on the network path: it keeps the page from
    the rest of a home network, not from the internet (put a TLS proxy in front for that).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    """Address to listen on; ``0.0.0.0`` opens the page to the whole network (the image does)."""
    port: int = Field(default=8080, ge=1, le=65535)
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    """Secret: a file ``web__password`` (Docker secret, systemd credential) rather than YAML."""

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str | None) -> str | None:
        if value is not None and ":" in value:
            raise ValueError("web.username cannot contain ':' (HTTP Basic authentication)")
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> WebSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("web.username and web.password go together: set both, or neither")
        if self.password is not None and not self.password.get_secret_value():
            raise ValueError("web.password is empty")
        return self


_HOURS = re.compile(r"^([01]?\d|2[0-4])-([01]?\d|2[0-4])$")


_WEEKDAY = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _check_hours(value: list[str] | None) -> list[str] | None:
    for text in value or ():
        found = _HOURS.match(text)
        if found is None or int(found[1]) >= int(found[2]):
            raise ValueError(f'hours are ranges like "06-22" (from < to <= 24), not {text!r}')
    return value


def _check_months(value: list[int] | None) -> list[int] | None:
    if value is not None and any(not 1 <= month <= 12 for month in value):
        raise ValueError("months are 1-12")
    return value


class TariffWeight(_Section):
    """A window whose start matches counts ``factor`` times its energy (the first match wins)."""

    factor: float = Field(gt=0)
    hours: list[str] | str | None = None
    """A range ``"22-24"`` or a list of ranges; unset: every hour."""
    weekdays: list[_WEEKDAY] | None = None
    months: list[int] | None = None

    @field_validator("hours", mode="before")
    @classmethod
    def _one_range(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("hours")
    @classmethod
    def _hour_ranges(cls, value: list[str] | str | None) -> list[str] | str | None:
        return _check_hours([value] if isinstance(value, str) else value)

    _months = field_validator("months")(_check_months)


class TariffSeason(_Section):
    """A season's capacity prices: ``months`` (unset: all) and ``price`` or ``prices``."""

    months: list[int] | None = None
    price: float | None = Field(default=None, ge=0)
    """Per kW per month (with ``tariff.price_per_kw``)."""
    prices: list[float] | None = None
    """One per tier, per month (with ``tariff.prices``)."""

    _months = field_validator("months")(_check_months)


class TariffSettings(_Section):
    """The capacity (peak) tariff: off unless ``preset`` is set.

    ``no`` (Norway: 60 min, 3 peaks on distinct days, tiers 2/5/10/15/20/25/50/75/100 kW) and
    ``be`` (Flanders, Fluvius: 15 min, 1 peak, floor 2.5 kW, rolling-12) set the defaults;
    ``custom`` starts from 60 min, 1 peak.  Any key given overrides the preset's value.
    """

    preset: Literal["no", "be", "custom"] | None = None
    window: int | None = None
    """Minutes per window: 60 or 15."""
    peaks: int | None = Field(default=None, ge=1, le=31)
    """How many of the month's highest windows are averaged."""
    distinct_days: bool | None = None
    """At most one window per day counts."""
    tiers: list[float] | None = None
    """Upper thresholds of the tiers in kW, ascending."""
    hours: list[str] | None = None
    """Local hours in which windows count, as ``"06-22"``; unset: all day."""
    months: list[int] | None = None
    """Months (1-12) in which windows count; unset: all."""
    weekdays: list[_WEEKDAY] | None = None
    """Weekdays on which windows count; unset: all."""
    period: Literal["month", "rolling-12"] | None = None
    """``month``, or ``rolling-12``: the mean of the last 12 monthly values that exist."""
    floor: float | None = Field(default=None, ge=0)
    """kW each month's value is at least, before any averaging."""
    weights: list[TariffWeight] | None = None
    """Factors for the energy of windows by their local start; the first match wins, else 1."""
    holidays: bool | None = None
    """Whether windows on public holidays (of ``grid.holidays``) count; unset: they do."""
    prices: list[float] | list[TariffSeason] | None = None
    """One price per tier (currency per month), or a list of seasons with ``months``/``prices``."""
    price_per_kw: float | list[TariffSeason] | None = None
    """Currency per kW of the billed value per month, or seasons with ``months``/``price``."""
    currency: str | None = None
    """The prices' currency (``NOK``, ``SEK``, ``EUR``): the unit of ``tariff_capacity_cost``."""
    past: dict[str, float] | None = None
    """Monthly values from the bill, ``"2026-01": 3.4`` (kW), for ``rolling-12``."""

    @field_validator("preset", mode="before")
    @classmethod
    def _yaml_no(cls, value: object) -> object:
        if value is False:
            raise ValueError('write preset: "no" in quotes (YAML reads a bare no as false)')
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: int | None) -> int | None:
        if value not in (None, 15, 60):
            raise ValueError("a tariff window is 60 or 15 minutes")
        return value

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (
            any(t <= 0 for t in value) or any(b <= a for a, b in pairwise(value))
        ):
            raise ValueError("tiers are positive and ascending (kW)")
        return value

    _hour_ranges = field_validator("hours")(_check_hours)
    _months = field_validator("months")(_check_months)

    @field_validator("past")
    @classmethod
    def _past_months(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for month, power in (value or {}).items():
            if _MONTH.match(month) is None or power < 0:
                raise ValueError(f'past is "YYYY-MM": kW (at least 0), not {month!r}: {power!r}')
        return value

    @model_validator(mode="after")
    def _needs_a_preset(self) -> TariffSettings:
        if self.preset is None:
            given = [key for key in type(self).model_fields if getattr(self, key) is not None]
            if given:
                raise ValueError(f"tariff.{given[0]} needs tariff.preset (no, be or custom)")
        return self

    @model_validator(mode="after")
    def _one_kind_of_price(self) -> TariffSettings:
        if self.prices is not None and self.price_per_kw is not None:
            raise ValueError("tariff.prices (per tier) or tariff.price_per_kw, not both")
        if (self.prices is not None or self.price_per_kw is not None) and self.currency is None:
            raise ValueError("tariff.prices and tariff.price_per_kw need tariff.currency")
        key, kind = ("prices", "prices") if self.prices is not None else ("price_per_kw", "price")
        for season in _seasons(self.prices) + _seasons(self.price_per_kw):
            if getattr(season, kind) is None:
                raise ValueError(f"each season of tariff.{key} gives its {kind}")
        self._one_price_per_tier()
        return self

    def _one_price_per_tier(self) -> None:
        from han2mqtt.energy.tariff import PRESETS  # noqa: PLC0415 - lazy, as for grid.holidays

        tiers = self.tiers
        if tiers is None and self.preset is not None:
            tiers = (
                list(PRESETS.get(self.preset, PRESETS["no"]).tiers)
                if self.preset != "custom"
                else []
            )
        wanted = len(tiers or ()) + 1
        lists = [season.prices for season in _seasons(self.prices)]
        if self.prices and not _seasons(self.prices):
            lists = [self.prices]  # type: ignore[list-item]
        for prices in lists:
            if prices is not None and len(prices) != wanted:
                raise ValueError(f"tariff.prices needs {wanted} prices, one per tier")


def _seasons(value: object) -> list[TariffSeason]:
    if isinstance(value, list):
        return [season for season in value if isinstance(season, TariffSeason)]
    return []


PRICE_SOURCES = ("entsoe", "energidataservice", "hvakosterstrommen", "elprisetjustnu", "mqtt")
"""Price sources that deliver days of prices (``fixed`` is one number, ``none`` is off)."""
PriceSource = Literal["entsoe", "energidataservice", "hvakosterstrommen", "elprisetjustnu", "mqtt"]


class PricesSettings(_Section):
    """Spot prices: where they come from, in which currency, and the supplier's markup."""

    source: Literal[PriceSource, "fixed", "none"] = "none"
    fallback: list[PriceSource] = []
    """Further sources tried in order when the one before fails or lacks the day."""
    area: str | None = None
    """Bidding zone (NO1…NO5, SE1…SE4, DK1, DK2, FI, DE-LU, NL, BE, AT, …)."""
    currency: Literal["NOK", "SEK", "DKK", "EUR"] | None = None
    """Default: the area's own currency."""
    resolution: int = 60
    """60: each hour at the mean of its quarters (Nordic billing); 15: each quarter."""
    token: SecretStr | None = None
    """ENTSO-E security token (better: the secret file ``prices__token``)."""
    url: str | None = None
    """Base URL of ``source`` instead of its public one (a proxy or a test server)."""
    urls: dict[str, str] | None = None
    """Base URLs of the fallbacks (and of ``ecb``), by source name."""
    topic: str | None = None
    """For ``source: mqtt``: the topic carrying prices."""
    fixed: float | None = None
    """For ``source: fixed``: the price per kWh excl. VAT."""
    markup: float = 0.0
    export_markup: float = 0.0
    vat: float = Field(default=0.0, ge=0, lt=1)
    exchange_rate: float | None = Field(default=None, gt=0)
    """Units of ``currency`` per EUR for EUR prices; unset: the ECB's daily reference rate."""
    gas: float | None = Field(default=None, ge=0)
    """The price of gas per m³ as paid (all included): ``cost_gas_today`` / ``cost_gas_month`` on
    a gas meter behind a P1 port, and the gas meter's history costs (``currency``)."""

    @field_validator("area")
    @classmethod
    def _known_area(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from han2mqtt.prices.areas import area  # noqa: PLC0415 - lazy

        return area(value).name

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: int) -> int:
        if value not in (15, 60):
            raise ValueError("prices.resolution is 60 (hours) or 15 (quarters)")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _check_url(value, "prices.url")

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, url in (value or {}).items():
            if name not in (*PRICE_SOURCES, "ecb"):
                raise ValueError(f"prices.urls: unknown source {name!r}")
            _check_url(url, f"prices.urls.{name}")
        return value

    @model_validator(mode="after")
    def _source_needs(self) -> PricesSettings:
        needs = {
            "entsoe": (
                "token",
                "prices.source entsoe needs prices.token (or the file prices__token)",
            ),
            "mqtt": ("topic", "prices.source mqtt needs prices.topic"),
            "fixed": ("fixed", "prices.source fixed needs prices.fixed (the price per kWh)"),
        }
        for source in (self.source, *self.fallback):
            if source in needs and getattr(self, needs[source][0]) is None:
                raise ValueError(needs[source][1])
        if self.source != "none" and self.area is None:
            raise ValueError("prices.source needs prices.area (the bidding zone, e.g. NO1)")
        if self.source == "none" and self.fallback:
            raise ValueError("prices.fallback needs prices.source")
        return self


def _check_url(value: str | None, key: str) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError(f"{key} is an http:// or https:// URL")
    return value


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class EnergyRuleSettings(_Section):
    """One grid energy rate: ``price`` where every given filter matches; the first rule wins."""

    price: float
    hours: str | list[str] | None = None
    """Local hours ``"06-22"`` (``"22-06"`` wraps midnight), or a list of ranges."""
    weekdays: list[Weekday] | None = None
    months: list[int] | None = None
    holidays: bool | None = None
    """false: not on public holidays; true: only on them; unset: both."""

    @field_validator("hours")
    @classmethod
    def _ranges(cls, value: str | list[str] | None) -> str | list[str] | None:
        from han2mqtt.prices.grid import parse_hours  # noqa: PLC0415 - lazy

        for text in [value] if isinstance(value, str) else value or []:
            parse_hours(text)
        return value

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(not 1 <= month <= 12 for month in value):
            raise ValueError("months are 1-12")
        return value


class SubsidySettings(_Section):
    """Norway's support schemes (per kWh excl. VAT; the state changes the numbers)."""

    scheme: Literal["none", "stromstotte", "norgespris"] = "none"
    threshold: float = 0.75
    """strømstøtte: the hour's mean spot above which it pays (NOK/kWh excl. VAT, 2025)."""
    share: float = Field(default=0.9, ge=0, le=1)
    """strømstøtte: the share of the spot above the threshold it pays."""
    norgespris: float = 0.40
    """Norgespris: the fixed price (NOK/kWh excl. VAT)."""
    monthly_kwh: float = Field(default=5000.0, gt=0)
    """Norgespris: the volume a month at that price (5,000 a home, 1,000 a holiday home)."""


class GridSettings(_Section):
    """The grid: its calendar, energy rates, taxes and subsidies (per kWh excl. VAT)."""

    holidays: str | None = None
    """Country (ISO 3166-1 alpha-2, e.g. ``NO``) whose public holidays grid rates and tariff
    windows follow; unset: no day is a holiday."""
    energy: list[EnergyRuleSettings] = []
    """Time-of-use rates, the first rule that matches an interval's local start wins."""
    taxes: float = 0.0
    """Taxes and levies per kWh (Norway's forbruksavgift, Denmark's elafgift)."""
    subsidy: SubsidySettings = SubsidySettings()

    @field_validator("holidays")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None:
            from han2mqtt.energy.calendar import supported_country  # noqa: PLC0415 - lazy

            if not supported_country(value):
                raise ValueError(f"no public-holiday calendar for country {value!r}")
            return value.upper()
        return value


class RetentionSettings(_Section):
    """Days each resolution of the ledger is kept; null: for ever."""

    quarter: int | None = Field(default=400, gt=0)
    hour: int | None = Field(default=1826, gt=0)
    day: int | None = Field(default=None, gt=0)
    month: int | None = Field(default=None, gt=0)


class HistorySettings(_Section):
    """The quarter-hour ledger in ``<state.dir>/history.sqlite``."""

    enabled: bool = True
    """Keep the ledger (import and export per quarter, hour, day and month)."""
    retention: RetentionSettings = RetentionSettings()


class StateSettings(_Section):
    """Where the energy stage keeps what must survive a restart."""

    dir: Path | None = None
    """Default: ``$STATE_DIRECTORY`` (systemd's ``StateDirectory=``), else ``./state``."""


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        validate_default=True,
    )

    source: SourceSettings = SourceSettings()
    meter: MeterSettings = MeterSettings()
    mqtt: MqttSettings = MqttSettings()
    homeassistant: HomeAssistantSettings = HomeAssistantSettings()
    publish: PublishSettings = PublishSettings()
    log: LogSettings = LogSettings()
    health: HealthSettings = HealthSettings()
    web: WebSettings = WebSettings()
    tariff: TariffSettings = TariffSettings()
    prices: PricesSettings = PricesSettings()
    grid: GridSettings = GridSettings()
    state: StateSettings = StateSettings()
    history: HistorySettings = HistorySettings()

    @model_validator(mode="after")
    def _holidays_need_a_country(self) -> Settings:
        if self.tariff.holidays is False and self.grid.holidays is None:
            raise ValueError("tariff.holidays: false needs grid.holidays (the country)")
        return self

    @model_validator(mode="after")
    def _discovery_needs_field_topics(self) -> Settings:
        if self.homeassistant.discovery and not self.publish.fields:
            raise ValueError(
                "homeassistant.discovery needs publish.fields (the sensors read the field topics)"
            )
        return self

    @model_validator(mode="after")
    def _one_currency(self) -> Settings:
        """The capacity fee and the prices' costs are in one currency (one unit in HA)."""
        prices, tariff = self.prices, self.tariff
        if prices.source == "none" or tariff.currency is None:
            return self
        currency: str | None = prices.currency
        if currency is None and prices.area is not None:
            from han2mqtt.prices.areas import area  # noqa: PLC0415 - sans-IO, only when needed

            currency = area(prices.area).currency
        if currency is not None and currency != tariff.currency:
            raise ValueError(
                f"tariff.currency is {tariff.currency} but the prices are in {currency}: "
                "set one currency (prices.currency, tariff.currency)"
            )
        return self

    def redacted(self) -> dict[str, Any]:
        """The configuration without secrets, safe to log or publish."""
        data = self.model_dump(mode="json")
        for section, key in (
            ("mqtt", "password"),
            ("source", "mqtt_password"),
            ("meter", "encryption_key"),
            ("meter", "authentication_key"),
            ("web", "password"),
            ("prices", "token"),
        ):
            if data[section].get(key) is not None:
                data[section][key] = "**********"
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - replaced below
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment over secret files over YAML over defaults."""
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            _SecretFiles(settings_cls),
        ]
        yaml_file = settings_cls.model_config.get("yaml_file")
        if yaml_file:
            sources.append(
                YamlConfigSettingsSource(
                    settings_cls, yaml_file=yaml_file, yaml_file_encoding="utf-8"
                )
            )
        return tuple(sources)


class _SecretFiles(PydanticBaseSettingsSource):
    """Files named ``section__key`` (or ``han2mqtt_section__key``) in the secret directories."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` reads whole directories."""
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        """Nested settings from the secret files.

        Files whose names are not ``[han2mqtt_]<section>__<key>`` with a known section are other
        applications' secrets (``/run/secrets`` is shared in Docker) and are left alone.

        Raises:
            ConfigError: a directory or one of our files cannot be read (one line naming it).
        """
        found: dict[str, Any] = {}
        for directory in _secret_directories():
            for path in _directory_entries(directory):
                name = path.name.lower().removeprefix(ENV_PREFIX.lower())
                section, separator, key = name.partition(ENV_DELIMITER)
                if separator and section in Settings.model_fields and _is_secret_file(path):
                    found.setdefault(section, {})[key] = _read_secret(path)
        return found


def _directory_entries(directory: Path) -> Iterator[Path]:
    """The entries of a secret directory, none if it does not exist."""
    try:
        yield from sorted(directory.iterdir()) if directory.is_dir() else ()
    except OSError as exc:
        raise ConfigError(f"cannot read {directory}: {exc.strerror}") from exc


def _is_secret_file(path: Path) -> bool:
    """A file of ours, else False; a directory of our name is an error.

    Docker creates a directory for a secret whose source is missing: that is a mistake to name,
    not a secret that silently is not there.
    """
    if _is_file(path):
        return True
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a secret file")
    return False


def _read_secret(path: Path) -> str:
    """A secret file's text; an error names the file but never quotes its content."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except PermissionError as exc:
        # Docker Compose bind-mounts a secret file with the host file's owner and mode.
        uid = os.getuid()
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}; han2mqtt runs as uid {uid}: make the file "
            f"readable by it (on the host: chown {uid} FILE && chmod 0400 FILE)"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        # The decoder's message quotes the offending byte: part of the secret.
        raise ConfigError(f"{path}: not UTF-8 text") from None


def _secret_directories() -> list[Path]:
    directories = [Path(d) for d in SECRET_DIRECTORIES]
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        directories.insert(0, Path(credentials))
    return directories


def _check_environment(environ: Mapping[str, str]) -> None:
    """Every ``HAN2MQTT_…`` variable must name a known section and key.

    pydantic-settings silently ignores a variable whose section it does not know
    (``HAN2MQTT_MQQT__HOST``) or that joins section and key with one underscore
    (``HAN2MQTT_MQTT_HOST``), and turns an undecodable value for a section
    (``HAN2MQTT_MQTT=broker``) into a ``SettingsError`` traceback.  Each becomes one line naming
    the variable and the nearest valid name here.  :data:`NON_SETTING_VARIABLES` are no
    configuration keys and are left alone.  Names are matched case-insensitively, as
    pydantic-settings does.  The value of a variable is never quoted: it may be a secret.

    Raises:
        ConfigError: naming the first variable that is wrong.
    """
    for name, value in sorted(environ.items()):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NON_SETTING_VARIABLES:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if ENV_DELIMITER in rest or rest in Settings.model_fields:
            _check_variable(name, rest.split(ENV_DELIMITER), value)
        else:
            hint = _nearest(rest, [key.replace(".", ENV_DELIMITER) for key in setting_keys()])
            nearest = f"did you mean {ENV_PREFIX}{hint.upper()}? " if hint else ""
            raise ConfigError(
                f"{name} names no setting: {nearest}(a section and its key are joined by two "
                f"underscores: {ENV_PREFIX}<SECTION>{ENV_DELIMITER}<KEY>)"
            )


def setting_keys(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every setting's dotted name (``mqtt.host``, ``mqtt.tls.enabled``), sections excluded."""
    keys: list[str] = []
    for name, field in (model or Settings).model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(setting_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(prefix + name)
    return keys


def _nearest(word: str, candidates: list[str]) -> str | None:
    """The candidate most like ``word`` (a misspelling), if any is close enough."""
    found = difflib.get_close_matches(word.lower(), candidates, n=1, cutoff=0.6)
    return found[0] if found else None


def _check_variable(name: str, parts: list[str], value: str) -> None:
    model: type[BaseModel] = Settings
    for depth, part in enumerate(parts):
        dotted = ".".join(parts[: depth + 1])
        field = model.model_fields.get(part)
        if field is None:
            what = "section" if depth == 0 else "key"
            known = ", ".join(model.model_fields)
            hint = _nearest(part, list(model.model_fields))
            mean = f"; did you mean {'.'.join([*parts[:depth], hint])}?" if hint else ""
            raise ConfigError(f"{name}: unknown {what} {dotted}{mean} (known: {known})")
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif depth < len(parts) - 1:
            raise ConfigError(f"{name}: {dotted} is a value, it has no keys")
        else:
            return
    # The variable sets a whole section (or nested model): pydantic-settings decodes it as JSON.
    try:
        decoded = json.loads(value)
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        raise ConfigError(
            f"{name}: {dotted} is a section, set its keys as {name.upper()}{ENV_DELIMITER}<KEY>"
            " (or give a JSON object)"
        )


def _one_line(error: ValidationError, path: Path | None = None) -> str:
    """``config.yaml line 3: mqtt.prot: unknown key (did you mean mqtt.protocol?)``.

    The first problem, where it is (the file and line when the value came from the YAML file),
    and how many more there are.  Values are never quoted: one may be a secret.
    """
    first = error.errors()[0]
    loc = tuple(first["loc"])
    where = ".".join(str(part) for part in loc) or "configuration"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        hint = _nearest(str(loc[-1]), list(_model_at(loc[:-1]).model_fields))
        prefix = "".join(f"{part}." for part in loc[:-1])
        message = "unknown key" + (f" (did you mean {prefix}{hint}?)" if hint else "")
    elif first["type"] == "string_type" and isinstance(first.get("input"), int | float):
        message = (
            "write it in quotes: YAML reads an unquoted number as a number, and a key or id "
            'like 0011… loses its leading zeros (encryption_key: "0011…")'
        )
    line = _yaml_line(path, loc) if path is not None and not _from_environment(loc) else None
    located = f"{path} line {line}: " if line is not None else ""
    more = len(error.errors()) - 1
    return f"{located}{where}: {message}" + (f" (and {more} more)" if more else "")


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model that holds the key at ``loc`` (``("mqtt", "tls")`` → :class:`TlsSettings`)."""
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = None if field is None else field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return model


def _from_environment(loc: tuple[int | str, ...]) -> bool:
    """Whether an environment variable sets the value at ``loc`` (or its section as a whole)."""
    names = {name.upper() for name in os.environ}
    parts = [str(part).upper() for part in loc if isinstance(part, str)]
    return any(
        ENV_PREFIX + ENV_DELIMITER.join(parts[:depth]) in names
        for depth in range(1, len(parts) + 1)
    )


def _yaml_line(path: Path, loc: tuple[int | str, ...]) -> int | None:
    """The line (1-based) of the deepest key of ``loc`` found in the YAML file, if any."""
    try:
        node: yaml.Node | None = yaml.compose(
            path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader
        )
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((pair for pair in node.value if pair[0].value == str(part)), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _find_config(path: Path | None) -> Path | None:
    if path is not None:
        if not _is_file(path):
            raise ConfigError(f"config file not found: {path}")
        return path
    return next((candidate for candidate in DEFAULT_CONFIG_PATHS if _is_file(candidate)), None)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, but a directory we may not enter is a one-line error, not a crash."""
    try:
        return path.is_file()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    PyYAML keeps the last one silently: a second ``mqtt:`` section would replace the first.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden by the keys beside it
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_yaml(path: Path) -> None:
    """Parse once ourselves so that a YAML error becomes a one-line ConfigError with a line."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or ""
        if problem.startswith("duplicate key"):
            what = problem
        else:
            context = getattr(exc, "context", None)
            reason = "; ".join(part for part in (context, problem) if part)
            what = f"invalid YAML: {reason}" if reason else "invalid YAML"
        raise ConfigError(f"{path}{where}: {what}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")


def load_settings(config_path: Path | None = None) -> Settings:
    """Load the configuration (see the module docstring for the sources and their order).

    Raises:
        ConfigError: one line naming the file or key that is wrong.
    """
    path = _find_config(config_path)
    if path is not None:
        _check_yaml(path)

    class _Loaded(Settings):
        model_config = SettingsConfigDict(yaml_file=path)

    _check_environment(os.environ)
    try:
        loaded = _Loaded()
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, path)) from None
    except SettingsError as exc:
        # A source could not decode a value.  The message names the field and the source, never
        # the value; the cause (a JSON error, say) might quote it, so it is dropped.
        raise ConfigError("cannot load the configuration: " + " ".join(str(exc).split())) from None
    return Settings.model_validate(loaded.model_dump())
