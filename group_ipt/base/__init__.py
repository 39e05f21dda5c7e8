"""Base: small helpers every layer may use (clock, errors, settings, paths, OS differences).

Imports nothing else of group_ipt."""
