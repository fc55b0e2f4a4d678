"""The benchmarks in their short mode, with loose goals: CI catches a trigger that got slow
or a rebuild whose engine calls grew with N. The full runs are by hand (README, Performance)."""

import subprocess
import sys

import pytest

from tests.host import REPO_ROOT, clean_env

# CI machines are noisy: a file-only trigger must still stay within 2x the bare interpreter.
LOOSE_MAX_RATIO = "2.0"


def run_benchmark(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_file_only_triggers_start_fast():
    result = run_benchmark("trigger_startup.py", "--runs", "7", "--max-ratio", LOOSE_MAX_RATIO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "network-get-listeners" in result.stdout


@pytest.mark.usefixtures("test_image")
def test_rebuildall_engine_calls_stay_constant_and_beat_the_reference_pattern():
    result = run_benchmark("rebuild_scale.py", "--quick")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["4"], ["10"])]
    assert [row[0] for row in rows] == ["4", "10"]
    assert rows[0][4] == rows[1][4]  # engine API calls, the same for 4 and 10 containers
