"""The parallel run's own promise (tests/conftest.py): tests grouped with `xdist_group` reach
xdist's scheduler as one group, so they run in one worker, one after the other."""

from __future__ import annotations

import os

import pytest


@pytest.mark.xdist_group("probe")
def test_a_group_reaches_the_scheduler(request: pytest.FixtureRequest):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("not run by pytest-xdist (tools/test runs it so)")
    # `--dist loadgroup` schedules by this suffix; pytest 9.2 stopped reading the field xdist sets.
    assert request.node.nodeid.endswith("@probe")
