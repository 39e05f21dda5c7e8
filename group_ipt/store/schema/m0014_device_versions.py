"""The central server remembers which group-ipt version each laptop runs.

Every push and pull carries the laptop's version (an HTTP header, or a field of a USB file);
the devices page and ``sync status`` on the centre list the laptops behind the newest one.
"""

SQL = """
alter table sync_devices add column app_version text;
alter table sync_devices add column app_version_at text;
"""
