"""Store: the SQLite database, its migrations (schema/), upgrades and backups.

Imports only base."""
