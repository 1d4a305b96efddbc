"""``han2mqtt simulate --meter linky``: TIC frames on a TCP port, as behind a serial server."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from han2mqtt import AutoDecoder
from han2mqtt.protocol.tic import TicFrame, TicFrameReader
from han2mqtt.simulator.linky import LINKY_ID
from tests.integration.helpers import clean_env

HAN2MQTT = Path(sys.executable).parent / "han2mqtt"
ANNOUNCE = re.compile(r"serving simulated meters linky \(meter time 1x\) on 127\.0\.0\.1:(\d+), ")

pytestmark = [pytest.mark.integration]


def test_the_linky_simulator_serves_tic_frames():
    command = [str(HAN2MQTT), "simulate", "--meter", "linky", "--port", "0", "--interval", "0.01"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env()
    )
    try:
        assert process.stdout is not None
        match = ANNOUNCE.match(process.stdout.readline())
        assert match is not None
        reader = TicFrameReader()
        frames: list[TicFrame] = []
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=10) as sock:
            while len(frames) < 5:
                chunk = sock.recv(4096)
                assert chunk
                frames += reader.read(chunk)
        decoder = AutoDecoder()
        assert all(decoder.decode(f.raw).fields["meter_id"] == LINKY_ID for f in frames)
        assert all(f.bad_groups == 0 for f in frames)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
