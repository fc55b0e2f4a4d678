"""The benchmarks in their short mode: CI keeps the scripts working and catches a rebuild whose
engine calls grew with N. No wall-time goal is asserted here (a slow CI machine is not a
defect of the plugin): the start-up property that matters, readers importing nothing heavy,
is asserted exactly in test_main_dispatch. The full runs are by hand (docs/development.md, Benchmarks)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.host import REPO_ROOT, clean_env

# The benchmarks install the plugin: from the session's wheelhouse, as every test does.
pytestmark = pytest.mark.usefixtures("wheelhouse")
# Timing goals are for the full runs by hand; here any ratio passes.
NO_GOAL = "1000"


def run_benchmark(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_startup_benchmark_times_every_reader_and_writer():
    result = run_benchmark("trigger_startup.py", "--runs", "2", "--max-ratio", NO_GOAL)
    assert result.returncode == 0, result.stdout + result.stderr
    names = [line.split("  ")[0] for line in result.stdout.splitlines()[2:]]
    assert "network-get-listeners" in names and "network-write-ipaddr" in names
    assert "python3 -c 'import filelock'" in names


@pytest.mark.usefixtures("test_image")
def test_rebuildall_engine_calls_stay_constant_and_beat_the_reference_pattern():
    result = run_benchmark("rebuild_scale.py", "--quick")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["4"], ["10"])]
    assert [row[0] for row in rows] == ["4", "10"]
    assert rows[0][4] == rows[1][4]  # engine API calls, the same for 4 and 10 containers


@pytest.mark.usefixtures("test_image")
def test_the_watcher_benchmark_runs_and_its_engine_calls_do_not_grow_with_the_burst():
    result = run_benchmark("watch.py", "--quick")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "engine calls per burst: 1 restarted: " in result.stdout


def test_install_benchmark_asks_plugn_nothing_on_repeat_runs():
    result = run_benchmark(
        "install.py", "--apps", "30", "--runs", "1", "--first-runs", "0", "--max-ratio", NO_GOAL
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plugn calls during the repeat runs with the record: 0\n" in result.stdout
    assert "install, 30 apps, backfill not recorded (before)" in result.stdout
