"""A run of `install` repairs what it finds broken (docs/reference.md: The environment).

Each test gets its own copy of the plugin, installed the way the session's is (tests/test_environment.py's
`plugin_host`: its environment is a copy of the session's); a repair builds from the session's wheelhouse.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from network_plugin import environment
from network_plugin.locks import lock_for
from tests.host import DokkuHost
from tests.test_environment import APP, live, plugin_host

pytestmark = pytest.mark.usefixtures("wheelhouse")


def site_packages(folder: Path) -> Path:
    (found,) = folder.glob("lib/python3.*/site-packages")
    return found


def lock_name(plugin: Path) -> str:
    return os.path.relpath(lock_for(str(plugin), sys.version_info[:2]), plugin)


def reads_a_property(dokku: DokkuHost) -> list[tuple[int, str, str]]:
    """A command and a reader, as a deploy runs them: (exit, stdout, stderr) of each."""
    runs = [
        dokku.command("set", APP, "tld", "svc.local"),
        dokku.trigger("network-get-property", APP, "tld"),
        dokku.command("report", APP, "--network-tld"),
    ]
    return [(run.returncode, run.stdout, run.stderr) for run in runs]


WORKING = [(0, "=====> Setting tld to svc.local\n", ""), (0, "svc.local\n", ""), (0, "svc.local\n", "")]


def move_away(folder: Path, aside: Path) -> str:
    folder.rename(aside)
    return "is missing"


def remove_typer(folder: Path, aside: Path) -> str:
    shutil.rmtree(site_packages(folder) / "typer")
    return "cannot import docker, typer, filelock: ModuleNotFoundError: No module named 'typer'"


@pytest.mark.parametrize("breakage", [move_away, remove_typer], ids=["moved-away", "typer-removed"])
def test_install_builds_a_broken_live_environment_again_beside_it_and_switches(
    tmp_path: Path, plugin_dir: Path, breakage
):
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    plugin = dokku.plugin_dir
    name = live(plugin).rpartition("/")[2]
    fault = breakage(plugin / ".venvs" / name, tmp_path / "aside")

    result = dokku.run(plugin / "install")

    assert result.returncode == 0
    assert result.stderr == f" !     The live environment .venvs/{name} {fault}; building it again\n"
    assert result.stdout == f"-----> Building the network plugin's Python environment ({lock_name(plugin)})\n"
    assert live(plugin) == f".venvs/{name}.1"
    assert os.readlink(plugin / ".venvs" / environment.PREVIOUS) == name  # a trigger may still run there
    assert reads_a_property(dokku) == WORKING
    again = dokku.run(plugin / "install")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert live(plugin) == f".venvs/{name}.1"


def test_a_live_environment_changed_but_working_is_checked_again_and_kept(tmp_path: Path, plugin_dir: Path):
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    plugin = dokku.plugin_dir
    before = live(plugin)
    folder = plugin / before
    checked = (folder / environment.CHECKED).read_text()
    (site_packages(folder) / "added-by-hand.txt").write_text("harmless\n")

    result = dokku.run(plugin / "install")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert live(plugin) == before
    # Recorded as checked with that file: the next install runs no check again.
    recorded = (folder / environment.CHECKED).read_text()
    assert recorded != checked
    assert recorded == f"{lock_name(plugin)}\n{environment.fingerprint(str(folder))}\n"
    assert reads_a_property(dokku) == WORKING
