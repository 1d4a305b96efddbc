"""What the daemon loads: OpenSSL's bindings only when a ciphered frame arrives (memory on a Pi)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import han2mqtt.daemon, han2mqtt.web
from han2mqtt import AutoDecoder
from han2mqtt.protocol.hdlc import HdlcFrameReader
from han2mqtt.simulator import load_samples

decoder = AutoDecoder(encryption_key=bytes(16), authentication_key=bytes(16))
for frame in HdlcFrameReader().read(b"".join(load_samples())):
    decoder.decode(frame.payload)
print("plain", "cryptography" in sys.modules)
# The test's frame builder uses cryptography itself: the first ciphered frame is made here.
from tests.protocol.test_encrypted_p1 import AUTH, KEY, _telegram, smarty_frame

frame = smarty_frame(_telegram())
del sys.modules["cryptography"]
decoder = AutoDecoder(encryption_key=KEY, authentication_key=AUTH)
decoder.decode(frame)
print("ciphered", "cryptography" in sys.modules)
"""


def test_cryptography_is_loaded_only_for_the_first_ciphered_frame():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["plain", "False", "ciphered", "True"]
