"""What `install` and `update` cost: a repeat run with 1 and with 300 apps, and a first install
from the locks against the unlocked install this plugin did before.

* Repeat runs: the plugin installed once, then `install` and `update` timed side by side on a
  host with 1 app and one with N apps, with a `plugn` stand-in on PATH that counts its calls.
  "N apps, backfill not recorded" removes the backfill's record before each run: what every
  repeat run cost before the record (one `plugn trigger proxy-is-enabled` per app).
* First install: the environment alone, built in a fresh folder. "locks" is what `install`
  runs (network_plugin/environment.py: a venv, pip --require-hashes --no-deps from the lock,
  the checks); "unlocked" is the former install: a venv, pip resolving the ranges of
  pyproject.toml, setuptools removed. Both from the index pip is configured with.

    python3 benchmarks/install.py [--apps 300] [--runs 5] [--first-runs 3] [--max-ratio 1.5]

Exit status 1 when `plugn` is called during a repeat run, or (unless --counts-only, as CI runs
it) when a repeat run with N apps takes more than --max-ratio times the one with 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from timing import add_counts_only, goals_result, interleaved_medians, plugin_host, run_benchmark, run_checked

from network_plugin.triggers import BACKFILL_RECORD
from tests.host import PLUGN, DokkuHost, copy_repository

# The ranges the former install handed to pip (pyproject.toml's dependencies).
UNLOCKED = ["docker>=7.1,<8", "filelock>=3.12,<3.15", "typer>=0.23,<1"]


def counting_plugn(folder: Path) -> tuple[Path, Path]:
    """A bin folder whose `plugn` counts each call, then dispatches as plugn does: (bin, count file)."""
    folder.mkdir()
    calls = folder / "plugn-calls"
    program = folder / "plugn"
    program.write_text(f'#!/bin/sh\necho "$*" >>{calls}\nexec {PLUGN} "$@"\n')
    program.chmod(0o755)
    return folder, calls


def host_with_apps(base: DokkuHost, folder: Path, apps: int, bin_dir: Path) -> DokkuHost:
    """Another DOKKU_ROOT/DOKKU_LIB_ROOT driving the same installed plugin, with `apps` apps."""
    for index in range(apps):
        (folder / "home" / f"app-{index:03d}").mkdir(parents=True)
    env = base.env | {
        "DOKKU_ROOT": str(folder / "home"),
        "DOKKU_LIB_ROOT": str(folder / "lib"),
        "PATH": f"{bin_dir}:{base.env['PATH']}",
    }
    return DokkuHost(plugin_dir=base.plugin_dir, dokku_root=folder / "home", lib_root=folder / "lib", env=env)


def first_install_contenders(folder: Path) -> dict[str, Callable[[], object]]:
    python = sys.executable
    plugin = folder / "plugin"
    copy_repository(plugin)
    unlocked = folder / "unlocked"

    def from_locks() -> None:
        shutil.rmtree(plugin / ".venvs", ignore_errors=True)
        if os.path.lexists(plugin / ".venv"):
            os.unlink(plugin / ".venv")
        environment = [python, "-E", "-s", "-m", "network_plugin.environment"]
        subprocess.run(environment, cwd=plugin, check=True, stdout=subprocess.DEVNULL)

    def without_locks() -> None:
        run_checked([python, "-m", "venv", "--clear", str(unlocked)], dict(os.environ))
        pip = [str(unlocked / "bin" / "python3"), "-m", "pip", "--disable-pip-version-check"]
        run_checked([*pip, "install", "--quiet", *UNLOCKED], dict(os.environ))
        subprocess.run(
            [*pip, "uninstall", "--quiet", "--yes", "setuptools"], capture_output=True, check=False
        )

    return {"first install, from the locks": from_locks, "first install, unlocked (before)": without_locks}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--apps", type=int, default=300, help="apps on the large host")
    parser.add_argument("--runs", type=int, default=5, help="runs of each repeat install (median taken)")
    parser.add_argument("--first-runs", type=int, default=3, help="runs of each first install; 0 skips them")
    parser.add_argument("--max-ratio", type=float, default=1.5, help="N apps against 1 app, at most")
    add_counts_only(parser)
    options = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dokku-network-bench-") as temp:
        base = plugin_host(Path(temp) / "installed")
        bin_dir, calls = counting_plugn(Path(temp) / "bin")
        hosts = {1: host_with_apps(base, Path(temp) / "one", 1, bin_dir)}
        hosts[options.apps] = host_with_apps(base, Path(temp) / "many", options.apps, bin_dir)
        for host in hosts.values():
            run_checked([str(host.plugin_dir / "install")], host.env)  # the backfill, recorded
        calls.write_text("")

        def repeat(apps: int, trigger: str) -> Callable[[], object]:
            host = hosts[apps]
            return lambda: run_checked([str(host.plugin_dir / trigger)], host.env)

        def unrecorded() -> None:
            record = hosts[options.apps].properties_root / BACKFILL_RECORD
            if record.exists():
                record.unlink()

        contenders = {f"install, {apps} app(s)": repeat(apps, "install") for apps in hosts} | {
            f"update, {apps} app(s)": repeat(apps, "update") for apps in hosts
        }
        medians = interleaved_medians(contenders, options.runs)
        plugn_calls = len(calls.read_text().splitlines())
        before = interleaved_medians(
            {
                f"install, {options.apps} apps, backfill not recorded (before)": repeat(
                    options.apps, "install"
                )
            },
            options.runs,
            reset=unrecorded,
        )
        first = {}
        if options.first_runs:
            first = interleaved_medians(first_install_contenders(Path(temp)), options.first_runs)

    width = max(len(name) for name in [*medians, *before, *first])
    print(f"{'run'.ljust(width)}  median (s)")
    for name, seconds in (medians | before | first).items():
        print(f"{name.ljust(width)}  {seconds:8.3f}")
    print(f"plugn calls during the repeat runs with the record: {plugn_calls}")
    missed = []
    for trigger in ("install", "update"):
        ratio = medians[f"{trigger}, {options.apps} app(s)"] / medians[f"{trigger}, 1 app(s)"]
        if ratio > options.max_ratio and not options.counts_only:
            missed.append(f"{trigger} with {options.apps} apps takes {ratio:.2f}x the one with 1")
    if plugn_calls:
        missed.append(f"{plugn_calls} plugn calls during repeat runs")
    return goals_result(missed)


if __name__ == "__main__":
    run_benchmark(main)
