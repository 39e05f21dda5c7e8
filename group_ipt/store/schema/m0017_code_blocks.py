"""Codes made offline never collide: each laptop of a site makes codes from its own block.

``sync_devices.code_block`` (1 to 9) is given when a device is registered, the smallest one
no other active device of its site holds; the central server itself uses block 0. A laptop
learns its block from the centre (``sync_state`` key ``code_block``) and makes participant
codes whose digits start with it and cycle numbers that end with it (participants.py,
cycles.py). With more than nine laptops at one site the tenth has no block: a clash is then
still caught, and the code received renamed, at the centre (sync/rules.py).
"""

SQL = """
alter table sync_devices add column code_block integer;
"""


def up(db):
    # Devices registered before: blocks in the order they were made, per site.
    for site in [r[0] for r in db.execute("select distinct site_id from sync_devices")]:
        ids = [
            r[0]
            for r in db.execute(
                "select id from sync_devices where site_id = ? and revoked_at is null order by created_at, name",
                (site,),
            )
        ]
        for block, device_id in enumerate(ids[:9], 1):
            db.execute("update sync_devices set code_block = ? where id = ?", (block, device_id))
