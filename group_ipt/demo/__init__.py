"""Demo data: the small demo programme and the national-sized generator for benchmarks.

Imports sync (scale.py logs its rows for sync), reporting and the layers below; no Flask."""
