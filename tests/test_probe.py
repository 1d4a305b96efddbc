"""``han2mqtt probe``'s decisions, on a fake port giving each setting what a real line would.

The bytes are real captures (the corpus, the TIC vectors); what a wrong setting does to them is
modelled as a real UART does it: another baud rate gives unrelated bytes, an 8E1 line read at 8N1
(or the reverse) damages some frames, a 7E1 line read at 8N1 has the parity bit in bit 7.
"""

from __future__ import annotations

import random

import pytest

from han2mqtt.commands.probe import (
    AS_SET,
    SETTINGS,
    LineSetting,
    analyse,
    config_snippet,
    has_parity_bit,
    probe,
    report,
)
from han2mqtt.config import load_settings
from tests import tic
from tests.corpus import by_id, raw

N81, E81, P1_FAST, E71_9600, E71_1200 = SETTINGS


class FakePort:
    """Gives each setting its bytes; settings not listed get line noise."""

    def __init__(self, lines: dict[LineSetting, bytes], refuse: tuple[LineSetting, ...] = ()):
        self.lines = lines
        self.refuse = refuse
        self.setting: LineSetting | None = None
        self.tried: list[LineSetting] = []
        self.rng = random.Random(3)

    def configure(self, setting: LineSetting) -> bool:
        if setting in self.refuse:
            return False
        self.setting = setting
        self.tried.append(setting)
        return True

    def read(self, seconds: float) -> bytes:
        assert self.setting is not None
        assert seconds == 0.5
        return self.lines.get(self.setting, self.rng.randbytes(600))


def _damaged(frames: list[bytes], every: int) -> bytes:
    """Every ``every``-th frame with one byte wrong (a parity bit taken for a stop bit)."""
    out = []
    for index, frame in enumerate(frames):
        middle = len(frame) // 2
        damaged = frame[:middle] + bytes((frame[middle] ^ 0x10,)) + frame[middle + 1 :]
        out.append(damaged if index % every == 0 else frame)
    return b"".join(out)


def test_an_aidon_on_8e1_is_found_at_8e1_not_8n1():
    frames = [raw(by_id("no-aidon-6534-list2"))] * 6
    port = FakePort({E81: b"".join(frames), N81: _damaged(frames, 2)})
    found = probe(port, seconds=0.5)
    assert found is not None
    assert (found.setting, found.framing, found.good, found.bad) == (E81, "hdlc", 6, 0)
    assert (found.manufacturer, found.meter_id) == ("Aidon", "7359992891237028")
    assert not found.ciphered
    assert port.tried == list(SETTINGS)


def test_a_kaifa_on_8n1_is_found_at_8n1():
    frames = [raw(by_id("no-kaifa-ma304h3e-list2-2017"))] * 4
    found = probe(FakePort({N81: b"".join(frames), E81: _damaged(frames, 2)}), seconds=0.5)
    assert found is not None
    assert (found.setting, found.framing, found.meter_id) == (N81, "hdlc", "6970631401753985")


def test_a_dsmr5_p1_port():
    telegram = raw(by_id("nl-dsmr50-iskra"))
    found = probe(FakePort({P1_FAST: telegram * 3}), seconds=0.5)
    assert found is not None
    assert (found.setting, found.framing, found.manufacturer) == (P1_FAST, "p1", "Iskraemeco")
    assert found.meter_id is not None


@pytest.mark.parametrize(
    ("setting", "item", "mode"),
    [(E71_1200, tic.HISTORIQUE, "historique"), (E71_9600, None, "standard")],
)
def test_a_linky_in_either_mode(setting: LineSetting, item: str | None, mode: str):
    if item is None:  # the standard vector with a readable ADSC (the poster masked theirs)
        lines = tic.text(tic.STANDARD).splitlines()
        text = "\n".join([tic.group("ADSC", "021728123456", standard=True), *lines[1:]])
        data = b"".join(tic.frames_from_text(text))
    else:
        data = tic.wire(item)
    found = probe(FakePort({setting: data * 3}), seconds=0.5)
    assert found is not None
    assert (found.setting, found.framing, found.tic_mode) == (setting, "tic", mode)
    assert found.meter_id in {"111111111111", "021728123456"}
    snippet = config_snippet(found, device="/dev/ttyUSB0")
    assert f"baudrate: {setting.baudrate}\n  parity: E\n  bytesize: 7\n  format: tic" in snippet


def test_the_snippet_is_a_config_that_loads(tmp_path):
    found = analyse(raw(by_id("no-aidon-6534-list2")) * 3, E81)
    assert found is not None
    path = tmp_path / "config.yaml"
    path.write_text(config_snippet(found, device="/dev/ttyUSB0"), encoding="utf-8")
    source = load_settings(path).source
    assert (source.baudrate, source.parity, source.bytesize, source.format) == (
        2400,
        "E",
        8,
        "hdlc",
    )


def test_parity_bit_read_at_8n1_means_7e1():
    # A TCP serial server set to 8N1 in front of a Linky: bit 7 of each character is its parity.
    data = tic.with_parity(tic.wire(tic.HISTORIQUE) * 3)
    found = probe(FakePort({AS_SET: data}), (AS_SET,), seconds=0.5)
    assert found is not None
    assert (found.framing, found.setting.bytesize, found.setting.parity) == ("tic", 7, "E")
    snippet = config_snippet(found, address=("192.0.2.7", 8899))
    assert "type: tcp" in snippet
    assert "set it to 7E1" in snippet


def test_a_ciphered_meter_needs_a_key():
    item = by_id("at-kaifa-tinetz-doc-testkey")
    found = analyse(raw(item) * 3, E81)
    assert found is not None
    assert (found.framing, found.ciphered, found.meter_id) == ("mbus", True, None)
    assert found.manufacturer is not None
    assert any("encryption_key" in line for line in report(found))
    assert "encryption_key:" in config_snippet(found, device="/dev/ttyUSB0")


def test_a_ciphered_hdlc_meter_names_its_maker_from_the_system_title():
    found = analyse(raw(by_id("dk-kamstrup-omnipower-enc-testkey")) * 2, N81)
    assert found is not None
    assert (found.framing, found.ciphered, found.manufacturer) == ("hdlc", True, "Kamstrup")


def test_nothing_found_on_noise_only():
    log: list[str] = []
    assert probe(FakePort({}), seconds=0.5, log=log) is None
    assert len(log) == len(SETTINGS)
    assert all("no frame" in line for line in log)


def test_a_setting_the_port_refuses_is_skipped():
    frames = raw(by_id("no-aidon-6534-list2")) * 3
    port = FakePort({N81: frames}, refuse=(E81, E71_1200))
    log: list[str] = []
    found = probe(port, seconds=0.5, log=log)
    assert found is not None
    assert found.setting == N81
    assert sum("skipped" in line for line in log) == 2


@pytest.mark.parametrize("seed", range(20))
def test_random_and_binary_bytes_are_not_parity_evidence(seed: int):
    assert not has_parity_bit(random.Random(seed).randbytes(64 + seed * 50))
    assert not has_parity_bit(raw(by_id("no-aidon-6534-list2")) * 2)


def test_seven_bit_text_with_parity_is_evidence():
    assert has_parity_bit(tic.with_parity(tic.wire(tic.HISTORIQUE)))
    assert not has_parity_bit(tic.wire(tic.HISTORIQUE))  # bit 7 always 0: no evidence either way


def test_a_dsmr3_meter_at_9600_7e1_and_behind_a_server_set_8n1():
    telegram = raw(by_id("nl-dsmr30-iskra-nocrc"))
    found = probe(FakePort({E71_9600: telegram * 3}), seconds=0.5)
    assert found is not None
    assert (found.setting, found.framing) == (E71_9600, "p1")
    behind = analyse(tic.with_parity(telegram * 3), AS_SET)
    assert behind is not None
    assert (behind.framing, behind.setting.bytesize, behind.setting.parity) == ("p1", 7, "E")


def test_a_device_that_does_not_open_is_a_usage_error(capsys, tmp_path):
    from han2mqtt.cli import main  # noqa: PLC0415

    assert main(["probe", "--device", str(tmp_path / "ttyNONE"), "--seconds", "0.1"]) == 2
    assert "cannot open serial port" in capsys.readouterr().err


def test_a_server_that_refuses_is_a_usage_error(capsys):
    import socket  # noqa: PLC0415

    from han2mqtt.cli import main  # noqa: PLC0415

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert main(["probe", "--host", "127.0.0.1", "--port", str(port)]) == 2
    assert "cannot connect to 127.0.0.1" in capsys.readouterr().err
