"""Laptops registered with the central server: each has a token, shown once and stored hashed.

Each laptop signs its sync files with its own Ed25519 key and registers the public half
here (``register_key``); the centre keeps no secret that could sign in a laptop's name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import sqlite_utils

from ..core import audit
from ..store.db import new_id, one, row, rows, utcnow, write

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{2,60}$")
# Each push and pull names the laptop's group-ipt version in this header (a USB file: "app_version").
VERSION_HEADER = "X-Group-IPT-Version"
VERSION_RE = re.compile(r"^[0-9]{1,4}(\.[0-9]{1,4}){0,3}([.+-]?[A-Za-z0-9.]{1,20})?\Z")
TOKEN_PREFIX = "gipt_"  # noqa: S105 (a prefix that makes tokens recognisable)
FILE_SIGNING_CONTEXT = b"group-ipt file signing"


class DeviceError(ValueError):
    """A device could not be added, found or revoked; the message says why."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def signing_key(token: str) -> str:
    """The legacy (version 1) file key: derived from the token; the centre keeps it only for devices
    that have not registered a public key yet."""
    return hmac.new(token.encode("utf-8"), FILE_SIGNING_CONTEXT, hashlib.sha256).hexdigest()


def free_code_block(db: sqlite_utils.Database, site_id: str) -> int | None:
    """The smallest code block (1 to 9) no active device of the site holds; None when all are taken.

    A laptop makes its codes from its block, so two laptops never make the same code offline
    (schema/m0017_code_blocks.py); block 0 is the central server's own.
    """
    taken = {
        r["code_block"]
        for r in rows(
            db,
            "select code_block from sync_devices where site_id = ? and revoked_at is null and code_block is not null",
            (site_id,),
        )
    }
    return next((b for b in range(1, 10) if b not in taken), None)


def add_device(db: sqlite_utils.Database, name: str, site_code: str, *, actor: dict | None = None) -> tuple[dict, str]:
    """Register a laptop for one site; return the device and its token (the only time it is shown)."""
    from ..core.users import get_site

    name = name.strip()
    if not NAME_RE.match(name):
        raise DeviceError("A device name is 2 to 60 letters, digits, dots, dashes or underscores, e.g. kmp-laptop-1.")
    site = get_site(db, site_code)
    if site is None:
        raise DeviceError(f"Unknown site {site_code!r}. 'group-ipt sites list' shows the sites.")
    if row(db, "select id from sync_devices where name = ?", (name,)):
        raise DeviceError(f"A device called {name!r} already exists.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    device = {
        "id": new_id(),
        "name": name,
        "site_id": site["id"],
        "token_hash": hash_token(token),
        "signing_key": "",  # none: the laptop registers its public key when it is set up
        "created_at": utcnow(),
    }
    with write(db):
        device["code_block"] = free_code_block(db, site["id"])
        db.table("sync_devices").insert(device)
        audit.log(
            db,
            user=actor,
            action="create",
            table="sync_devices",
            record_id=device["id"],
            site_id=site["id"],
            after={"name": name, "site_id": site["id"]},
        )
    return device, token


def list_devices(db: sqlite_utils.Database) -> list[dict]:
    return rows(
        db, "select d.*, s.code as site_code from sync_devices d join sites s on s.id = d.site_id order by d.name"
    )


def revoke_device(db: sqlite_utils.Database, name: str, *, actor: dict | None = None) -> dict:
    device = row(db, "select * from sync_devices where name = ?", (name,))
    if device is None:
        raise DeviceError(f"No device called {name!r}.")
    if device["revoked_at"]:
        return device
    return _update_device(db, device, {"revoked_at": utcnow()}, action="revoke", actor=actor)


def authenticate(db: sqlite_utils.Database, token: str | None) -> dict | None:
    """Return the active device holding ``token``, or None (unknown, malformed or revoked)."""
    if not token or len(token) > 200:
        return None
    device = row(db, "select * from sync_devices where token_hash = ?", (hash_token(token),))
    if device is None or device["revoked_at"]:
        return None
    return device


def get_device(db: sqlite_utils.Database, device_id: str) -> dict | None:
    return row(db, "select * from sync_devices where id = ?", (device_id,))


def note_version(db: sqlite_utils.Database, device: dict, version: str | None) -> None:
    """Remember the group-ipt version a laptop said it runs (nothing when it did not say: before 0.2.0).

    Raises DeviceError for text that is not a version.
    """
    if version is None:
        return
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise DeviceError("The group-ipt version sent is not a version number such as 0.2.0.")
    if device.get("app_version") == version:
        return  # no write on every batch: app_version_at says since when it runs this version
    _update_device(
        db, device, {"app_version": version, "app_version_at": utcnow()}, action="version", audited="app_version"
    )


def newest_version(db: sqlite_utils.Database, own: str) -> str:
    """Return the newest version among this server's own and the laptops' (the one to be on)."""
    from ..store.upgrade import version_key

    seen = [
        r["app_version"]
        for r in rows(
            db, "select distinct app_version from sync_devices where app_version is not null and revoked_at is null"
        )
    ]
    return max([own, *seen], key=version_key)


def behind(db: sqlite_utils.Database, own: str) -> list[dict]:
    """Return the active laptops running a version older than the newest (or one too old to say)."""
    from ..store.upgrade import is_older

    newest = newest_version(db, own)
    return [
        d
        for d in list_devices(db)
        if not d["revoked_at"] and (d["app_version"] is None or is_older(d["app_version"], newest))
    ]


def register_key(db: sqlite_utils.Database, device: dict, public_key: object, *, actor: dict | None = None) -> dict:
    """Keep the laptop's public key for its signed files and forget its legacy HMAC key.

    Only the token's holder gets here (the API checks it), as only they could push data.
    """
    from . import keys

    keys.parse_public(public_key)  # KeyError_ if it is not a key
    if device.get("public_key") == public_key and not device.get("signing_key"):
        return device
    return _update_device(
        db,
        device,
        {"public_key": public_key, "key_registered_at": utcnow(), "signing_key": ""},
        action="register_key",
        actor=actor,
        audited="public_key",
    )


def _update_device(
    db: sqlite_utils.Database,
    device: dict,
    changes: dict,
    *,
    action: str,
    actor: dict | None = None,
    audited: str | None = None,
) -> dict:
    """Change a device's columns and log it (with the ``audited`` column before and after) in one
    transaction; return the device as it is now."""
    with write(db):
        db.execute(
            f"update sync_devices set {', '.join(f'{column} = ?' for column in changes)} where id = ?",
            (*changes.values(), device["id"]),
        )
        audit.log(
            db,
            user=actor,
            action=action,
            table="sync_devices",
            record_id=device["id"],
            site_id=device["site_id"],
            before={audited: device.get(audited)} if audited else None,
            after={audited: changes[audited]} if audited else None,
        )
    return one(db, "select * from sync_devices where id = ?", (device["id"],))


def key_state(device: dict) -> str:
    """How this device's files are checked: 'ed25519', 'legacy' (an old HMAC key) or 'none' yet."""
    if device.get("public_key"):
        return "ed25519"
    return "legacy" if device.get("signing_key") else "none"
