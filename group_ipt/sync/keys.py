"""Ed25519 key pairs that sign sync files: one per laptop, one for the centre's replies.

A laptop's private key is a file in its data folder (``device_key``); the centre keeps
only its public key (``sync_devices.public_key``), so a copy of the central database
cannot sign a file in a laptop's name. The centre signs its reply files with its own
key, kept in a file beside the database (``sync_reply_key``), never in it; the laptop
learns the matching public key when it is set up. Both files are created with mode 600.
Signatures come from ``cryptography`` (a vetted library), not from our own code.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DEVICE_KEY_FILE = "device_key"
CENTRE_KEY_FILE = "sync_reply_key"


class KeyError_(ValueError):  # noqa: N801 (KeyError is a builtin with another meaning)
    """A key file or a public key that cannot be used; the message says what to do."""


def load_or_create(path: Path) -> Ed25519PrivateKey:
    """Return the private key in ``path``, making a new one (mode 600) if the file does not exist."""
    path = Path(path)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load(path)  # made by another process meanwhile
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return key
    return load(path)


def load(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyError_(f"The signing key {path} cannot be read ({exc}).") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"The signing key {path} is not an Ed25519 key.")
    return key


def public_text(key: Ed25519PrivateKey) -> str:
    """The public half as base64 text (44 characters), what the other side stores."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def parse_public(text: object) -> Ed25519PublicKey:
    """Read a public key sent as base64 text; KeyError_ if it is not one."""
    try:
        raw = base64.b64decode(text if isinstance(text, str) else "", validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise KeyError_("The public key is not a base64 Ed25519 key of 32 bytes.") from exc


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def verify(public: str, signature: str, message: bytes) -> bool:
    """Tell whether ``signature`` (base64) was made over ``message`` by the holder of ``public``."""
    try:
        parse_public(public).verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, KeyError_, ValueError, binascii.Error):
        return False
    return True


def data_dir_of(db) -> Path:
    """The folder of the database file (where a laptop keeps its key)."""
    for _seq, name, file in db.execute("pragma database_list").fetchall():
        if name == "main" and file:
            return Path(file).parent
    raise KeyError_("This database has no folder (it is in memory): no key file can be kept beside it.")
