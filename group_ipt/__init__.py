"""group-ipt: run community programmes of group Interpersonal Psychotherapy, offline first.

The layers, bottom to top: base < store < formfiles < core < reporting < sync, pdf, demo
< web < cli (docs/DEVELOPING.md, "The house"; tests/test_layers.py keeps it true)."""

__version__ = "0.2.0"
