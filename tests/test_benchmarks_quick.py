"""The benchmarks' smoke runs: the smallest sizes that still check what they count (one engine call
per rebuild of the watcher; rebuildall's engine calls the same for any number of containers; no
`plugn` call on a repeat install), on the session's plugin environment. No wall-time goal is
asserted (a loaded machine is not a defect of the plugin): the start-up property that matters,
readers importing nothing heavy, is asserted exactly in test_main_dispatch. `.ci/run` runs the
full benchmarks after the tests (docs/development.md, Benchmarks)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.host import ENVIRONMENT_FROM, REPO_ROOT, clean_env


@pytest.fixture
def run_benchmark(plugin_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a benchmark script judging only what it counts; its install copies the session's
    environment (the wheelhouse's, as every install of the tests)."""

    def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / "benchmarks" / script), *args, "--counts-only"],
            env=clean_env() | {ENVIRONMENT_FROM: str(plugin_dir)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    return run


def test_startup_benchmark_times_every_reader_and_writer(run_benchmark):
    result = run_benchmark("trigger_startup.py", "--runs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    names = [line.split("  ")[0] for line in result.stdout.splitlines()[2:]]
    assert "network-get-listeners" in names and "network-write-ipaddr" in names
    assert "python3 -c 'import filelock'" in names
    # With the engine, the writers again with the watcher running, beside that run's readers.
    warm = result.stdout[result.stdout.index("with network:watch running") :].splitlines()[2:]
    assert [line.split("  ")[0] for line in warm] == [
        "network-write-ipaddr",
        "network-write-port",
        "post-app-clone-setup",
        "post-app-rename-setup",
    ]


@pytest.mark.usefixtures("test_image")
def test_rebuildall_engine_calls_stay_constant(run_benchmark):
    result = run_benchmark("rebuild_scale.py", "--sizes", "2", "5", "--runs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["2"], ["5"])]
    assert [row[0] for row in rows] == ["2", "5"]
    assert rows[0][4] == rows[1][4]  # engine API calls, the same for 2 and 5 containers
    assert [row[5] for row in rows] == ["6", "15"]  # the reference pattern: 3 docker calls a container


@pytest.mark.usefixtures("test_image")
def test_the_watcher_benchmark_runs_and_each_rebuild_makes_one_engine_call(run_benchmark):
    result = run_benchmark("watch.py", "--parts", "bursts", "--bursts", "1", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    # "engine calls per burst: 1 restarted: 1 (1 rebuilds), 4 restarted: 2 (2 rebuilds)"
    bursts = re.findall(r"(\d+) restarted: (\d+) \((\d+) rebuilds\)", result.stdout)
    assert [size for size, _, _ in bursts] == ["1", "4"]
    assert all(1 <= int(calls) <= int(rebuilds) for _, calls, rebuilds in bursts), bursts


def test_install_benchmark_asks_plugn_nothing_on_repeat_runs(run_benchmark):
    result = run_benchmark("install.py", "--apps", "30", "--runs", "1", "--first-runs", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plugn calls during the repeat runs with the record: 0\n" in result.stdout
    assert "install, 30 apps, backfill not recorded (before)" in result.stdout


@pytest.mark.usefixtures("test_image")
def test_the_app_network_benchmark_runs_and_a_later_deploy_makes_no_network(run_benchmark):
    result = run_benchmark("app_network.py", "--runs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "networks a later deploy made: 0" in result.stdout.splitlines()
    cases = [line.split("  ")[0] for line in result.stdout.splitlines()[2:8]]
    assert cases == [
        "off",
        "on, first deploy",
        "on, later deploy",
        "off, watcher",
        "on, first deploy, watcher",
        "on, later deploy, watcher",
    ]


def test_the_benchmark_against_dokkus_plugin_asks_for_its_folder(run_benchmark):
    result = run_benchmark("go_plugin.py")
    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr
        == " !     Give --dokku-plugin the folder of Dokku's network plugin (its `triggers` binary)\n"
    )
