"""Core: the domain (participants, screening, cycles, sessions, referrals, follow-up, clinical
records, supervision, users, audit). Plain Python on a database, no Flask.

Imports only form files, store and base."""
