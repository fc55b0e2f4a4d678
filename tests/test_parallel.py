"""The parallel run's own promise (tests/conftest.py): tests grouped with `xdist_group` reach
xdist's scheduler as one group, so they run in one worker, one after the other."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.mark.xdist_group("probe")
def test_a_group_reaches_the_scheduler(request: pytest.FixtureRequest):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("not run by pytest-xdist (tools/test runs it so)")
    # `--dist loadgroup` schedules by this suffix; pytest 9.2 stopped reading the field xdist sets.
    assert request.node.nodeid.endswith("@probe")


def test_a_folder_whose_maker_failed_is_made_again_by_the_next_worker(
    tmp_path_factory: pytest.TempPathFactory,
):
    from tests.conftest import once_per_run

    name = f"probe-{os.getpid()}-{os.urandom(4).hex()}"

    def fail(folder: Path) -> None:
        (folder / "half").write_text("made")
        raise RuntimeError("the index went away")

    with pytest.raises(RuntimeError):
        once_per_run(tmp_path_factory, name, fail)
    made = once_per_run(tmp_path_factory, name, lambda folder: (folder / "whole").write_text("made"))

    assert sorted(path.name for path in made.iterdir()) == ["whole"]
    assert once_per_run(tmp_path_factory, name, fail) == made  # made once: not asked again
