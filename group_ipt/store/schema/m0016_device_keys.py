"""Per-device Ed25519 public keys for signed sync files (the centre no longer needs a secret).

Until now the centre kept each device's HMAC key (derived from its token) in clear, so
a copy of the central database could sign files in any laptop's name. A device now signs
with its own private key, kept on the laptop; the centre stores the public key here.
``signing_key`` stays only for devices set up before this version, so their files keep
working until they register a key (at their next network sync, or 'group-ipt sync setup'),
when it is emptied; devices added from now on never get one ('' is "none").
"""

SQL = """
alter table sync_devices add column public_key text;
alter table sync_devices add column key_registered_at text;
"""
