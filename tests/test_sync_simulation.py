"""A few seeded schedules of laptops syncing through faults: nothing lost, duplicated, diverged,
dangling or left in quarantine (benchmarks/sync_sim.py runs a thousand)."""

from __future__ import annotations

import pytest

from .sync_simulation import make_template, schedule

SCHEDULES = 6
STEPS = 60
EXERCISED: dict[str, int] = {}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_template(tmp_path_factory.mktemp("sim") / "template")


@pytest.mark.parametrize("seed", range(SCHEDULES))
def test_laptops_and_centre_converge_whatever_the_schedule(template, tmp_path, seed):
    root, tokens = template
    counts, exercised = schedule(root, tokens, tmp_path / "world", seed, STEPS)
    assert counts == {"lost": 0, "duplicated": 0, "diverged": 0, "dangling": 0, "quarantined": 0}
    # Each schedule meets the cases the rules are for, or the check above would prove little.
    assert exercised["merged"] > 0 and exercised["renamed"] > 0, exercised
