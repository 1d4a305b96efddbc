"""Ciphered xDLMS APDUs: general-glo-ciphering and general-ded-ciphering with AES-128-GCM.

Wire layout (IEC 62056-5-3 §9.2.7.2.4, DLMS UA Green Book §9.2.4)::

    DB|DC | len=08 | system title (8) | length | security control (1) | frame counter (4) | data

* Security control: bits 0-3 the security suite, bit 4 authentication (0x10), bit 5 encryption
  (0x20), bit 6 the key set (broadcast), bit 7 compression.
* The GCM initialisation vector is system title ‖ frame counter (12 octets).
* Authenticated (0x10): the data ends in a 12-octet tag; the additional authenticated data is
  security control ‖ authentication key (‖ the plaintext, when it is sent in clear: 0x10 alone,
  authentication only, where the tag is GCM's over an empty plaintext).

Decryption without the authentication key is AES-CTR from GCM's first data counter block
(IV ‖ 00000002): the same plaintext, without the tag check.  Then the plaintext must parse as
an APDU (or a P1 telegram: Luxembourg's Smarty meters cipher their DSMR telegram so), so a wrong
key is an error, never garbage values.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Final, NamedTuple

from han2mqtt.errors import ApduError, AxdrError, DecryptionError, MissingKeyError, SecurityError
from han2mqtt.protocol.apdu import ApduTag
from han2mqtt.protocol.axdr import decode_length

__all__ = ["CipheredApdu", "Deciphered", "decipher", "decrypt_apdu", "parse_ciphered_apdu"]


@cache
def _crypto() -> tuple[ModuleType, ModuleType]:
    """``cryptography``'s ciphers and exceptions modules, loaded on the first ciphered frame.

    Most HAN ports (Norway's, Sweden's) send in clear: loading OpenSSL's bindings only when a
    frame needs them keeps some 6 MiB off a Pi Zero daemon that never decrypts.
    """
    from cryptography import exceptions  # noqa: PLC0415 - deferred on purpose, see above
    from cryptography.hazmat.primitives import ciphers  # noqa: PLC0415

    return ciphers, exceptions


SYSTEM_TITLE_LENGTH: Final = 8
TAG_LENGTH: Final = 12
KEY_LENGTH: Final = 16
AUTHENTICATED: Final = 0x10
ENCRYPTED: Final = 0x20
_FIRST_DATA_COUNTER: Final = b"\x00\x00\x00\x02"
_PLAINTEXT_TAGS: Final = frozenset({ApduTag.DATA_NOTIFICATION})
TELEGRAM_START: Final = b"/"
"""A P1 telegram as plaintext (DSMR inside general-glo-ciphering: Luxembourg's Smarty)."""


class CipheredApdu(NamedTuple):
    """The parts of a general-glo/ded-ciphering APDU."""

    tag: int
    system_title: bytes
    security_control: int
    frame_counter: int
    ciphertext: bytes
    """Encrypted data, including the authentication tag when there is one."""

    @property
    def authenticated(self) -> bool:
        """True when the data ends in an authentication tag."""
        return bool(self.security_control & AUTHENTICATED)

    @property
    def encrypted(self) -> bool:
        """True when the data is encrypted."""
        return bool(self.security_control & ENCRYPTED)

    @property
    def initialization_vector(self) -> bytes:
        """System title ‖ frame counter."""
        return self.system_title + self.frame_counter.to_bytes(4, "big")

    def describe(self) -> str:
        """``system title 4B414D4501349083 (KAM), frame counter 17784996``, for error messages."""
        maker = self.system_title[:3].decode("ascii", errors="replace")
        title = self.system_title.hex().upper()
        return f"system title {title} ({maker}), frame counter {self.frame_counter}"


def parse_ciphered_apdu(apdu: bytes) -> CipheredApdu:
    """Split a general-glo-ciphering (0xDB) or general-ded-ciphering (0xDC) APDU.

    Raises:
        ApduError: not a ciphered APDU, or its header is malformed or truncated.
    """
    if not apdu or apdu[0] not in (ApduTag.GENERAL_GLO_CIPHERING, ApduTag.GENERAL_DED_CIPHERING):
        raise ApduError("not a general-glo/ded-ciphering APDU", offset=0)
    if len(apdu) < 2 or apdu[1] != SYSTEM_TITLE_LENGTH:
        raise ApduError("ciphered APDU: system title must have 8 octets", offset=1)
    title_end = 2 + SYSTEM_TITLE_LENGTH
    try:
        length, pos = decode_length(apdu, title_end)
    except AxdrError as exc:
        raise ApduError("ciphered APDU: bad length", offset=title_end) from exc
    if length < 5 or pos + length > len(apdu):
        raise ApduError(f"ciphered APDU truncated: {length} octets announced", offset=pos)
    return CipheredApdu(
        apdu[0],
        apdu[2:title_end],
        apdu[pos],
        int.from_bytes(apdu[pos + 1 : pos + 5], "big"),
        apdu[pos + 5 : pos + length],
    )


def _check_key(name: str, key: bytes) -> None:
    if len(key) != KEY_LENGTH:
        raise SecurityError(f"the {name} must have 16 octets (32 hex digits), not {len(key)}")


class Deciphered(NamedTuple):
    """What a ciphered APDU carried, and whether its GCM tag was checked."""

    plaintext: bytes
    verified: bool
    """True when the authentication tag was checked: the content is the meter's, unaltered."""
    ciphered: CipheredApdu


def decipher(
    apdu: bytes, encryption_key: bytes | None, authentication_key: bytes | None = None
) -> Deciphered:
    """Return the content of a ciphered APDU: an APDU, or a P1 telegram (Luxembourg's Smarty).

    Raises:
        MissingKeyError: no encryption key.
        SecurityError: a key of the wrong length.
        DecryptionError: the tag does not match, or, without a tag check, the plaintext is
            neither an APDU nor a telegram (a wrong key).
        ApduError: the ciphered APDU is malformed, or its authenticated plaintext is neither an
            APDU nor a telegram.
    """
    ciphered = parse_ciphered_apdu(apdu)
    if not ciphered.encrypted:
        if not ciphered.authenticated:
            return Deciphered(ciphered.ciphertext, verified=False, ciphered=ciphered)
        verified = encryption_key is not None and authentication_key is not None
        if encryption_key is not None and authentication_key is not None:
            _check_key("encryption key", encryption_key)
            _verify_clear(ciphered, encryption_key, authentication_key)
        data = ciphered.ciphertext[:-TAG_LENGTH]  # authenticated only: data is in clear
        return _checked(Deciphered(data, verified=verified, ciphered=ciphered))
    if encryption_key is None:
        raise MissingKeyError(f"ciphered frame from {ciphered.describe()}: no encryption key set")
    _check_key("encryption key", encryption_key)
    if ciphered.authenticated and authentication_key is not None:
        plaintext = _decrypt_verified(ciphered, encryption_key, authentication_key)
        return _checked(Deciphered(plaintext, verified=True, ciphered=ciphered))
    data = ciphered.ciphertext[:-TAG_LENGTH] if ciphered.authenticated else ciphered.ciphertext
    plaintext = _decrypt_unverified(ciphered.initialization_vector, data, encryption_key)
    return _checked(Deciphered(plaintext, verified=False, ciphered=ciphered))


def _checked(result: Deciphered) -> Deciphered:
    """The plaintext must be an APDU we decode or a P1 telegram; say what it is otherwise."""
    plaintext = result.plaintext
    if plaintext[:1] == TELEGRAM_START or (plaintext and plaintext[0] in _PLAINTEXT_TAGS):
        return result
    what = f"0x{plaintext[0]:02x}" if plaintext else "nothing"
    meter = result.ciphered.describe()
    if result.verified:  # the key is right: the meter sent something we do not decode
        raise ApduError(
            f"deciphered frame from {meter} (tag verified) is neither a data-notification APDU "
            f"nor a P1 telegram: it starts with {what}"
        )
    raise DecryptionError(
        f"decrypted frame from {meter} is neither an APDU nor a P1 telegram (it starts with "
        f"{what}): wrong encryption key (or a frame counter the meter did not use)"
    )


def decrypt_apdu(
    apdu: bytes, encryption_key: bytes | None, authentication_key: bytes | None = None
) -> bytes:
    """Return the plaintext inside a ciphered APDU (see :func:`decipher`)."""
    return decipher(apdu, encryption_key, authentication_key).plaintext


def _decrypt_verified(ciphered: CipheredApdu, key: bytes, authentication_key: bytes) -> bytes:
    """Authenticated encryption (0x30): the data is the ciphertext; AAD = SC ‖ AK."""
    return _open(ciphered, key, authentication_key, in_clear=False)


def _verify_clear(ciphered: CipheredApdu, key: bytes, authentication_key: bytes) -> None:
    """Authentication only (0x10): the data is in clear and part of the AAD = SC ‖ AK ‖ data."""
    _open(ciphered, key, authentication_key, in_clear=True)


def _open(
    ciphered: CipheredApdu, key: bytes, authentication_key: bytes, *, in_clear: bool
) -> bytes:
    """GCM with the tag checked: the plaintext of encrypted data (empty for data in clear).

    Raises:
        ApduError: the data is shorter than a tag.
        DecryptionError: the tag does not match (a wrong key, or altered data).
    """
    _check_key("authentication key", authentication_key)
    if len(ciphered.ciphertext) < TAG_LENGTH:
        raise ApduError("ciphered APDU shorter than its authentication tag")
    data, tag = ciphered.ciphertext[:-TAG_LENGTH], ciphered.ciphertext[-TAG_LENGTH:]
    aad = bytes((ciphered.security_control,)) + authentication_key + (data if in_clear else b"")
    ciphers, exceptions = _crypto()
    decryptor = ciphers.Cipher(
        ciphers.algorithms.AES(key),
        ciphers.modes.GCM(ciphered.initialization_vector, tag, min_tag_length=TAG_LENGTH),
    ).decryptor()
    decryptor.authenticate_additional_data(aad)
    try:
        plaintext: bytes = b"" if in_clear else decryptor.update(data)
        rest: bytes = decryptor.finalize()  # typed here: the module is loaded lazily, untyped
        return plaintext + rest
    except exceptions.InvalidTag as exc:
        raise DecryptionError(
            f"authentication tag mismatch for {ciphered.describe()}: "
            "wrong encryption or authentication key, or altered data"
        ) from exc


def _decrypt_unverified(iv: bytes, data: bytes, key: bytes) -> bytes:
    ciphers, _ = _crypto()
    mode = ciphers.modes.CTR(iv + _FIRST_DATA_COUNTER)
    decryptor = ciphers.Cipher(ciphers.algorithms.AES(key), mode).decryptor()
    plaintext: bytes = decryptor.update(data)
    rest: bytes = decryptor.finalize()
    return plaintext + rest
