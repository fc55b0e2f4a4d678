"""tools/switch (docs/reference.md: Switching from Dokku's plugin): from Dokku's own network
plugin to this one and back, on a host laid out as Dokku's package lays it out (its plugin a
core plugin, three links), never without a network plugin: a failed switch leaves Dokku's in
place, a refused stored value stops it before anything changes, and --back puts Dokku's back.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.host import PLUGN, REPO_ROOT, clean_env

pytestmark = pytest.mark.root
DOKKUS = "dokku's own network plugin\n"
APP = "node-js-app"


def dokku_layout(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Dokku's links to its core network plugin, whose trigger says whose it is."""
    lib = tmp_path / "var-lib-dokku"
    core = lib / "core-plugins" / "available" / "network"
    core.mkdir(parents=True)
    trigger = core / "network-get-property"
    trigger.write_text(f'#!/bin/sh\nprintf %s "{DOKKUS}"\n')
    trigger.chmod(0o755)
    for folder in (
        lib / "core-plugins" / "enabled",
        lib / "plugins" / "available",
        lib / "plugins" / "enabled",
    ):
        folder.mkdir(parents=True, exist_ok=True)
    (lib / "core-plugins" / "enabled" / "network").symlink_to(core)
    (lib / "plugins" / "available" / "network").symlink_to(core)
    (lib / "plugins" / "enabled" / "network").symlink_to(lib / "plugins" / "available" / "network")
    (tmp_path / "home" / APP).mkdir(parents=True)
    env = clean_env() | {
        "DOKKU_LIB_ROOT": str(lib),
        "DOKKU_ROOT": str(tmp_path / "home"),
        "PLUGIN_PATH": str(lib / "plugins"),
        "PLUGIN_CORE_PATH": str(lib / "core-plugins"),
    }
    return env, lib


def switch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "tools" / "switch"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def answer(env: dict[str, str]) -> str:
    """Who answers the scheduler's `network-get-property` now."""
    done = subprocess.run(
        [PLUGN, "trigger", "network-get-property", APP, "bind-all-interfaces"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


def links(lib: Path) -> dict[str, str]:
    found = {}
    for name in ("core-plugins/enabled/network", "plugins/available/network", "plugins/enabled/network"):
        path = lib / name
        found[name] = str(path.readlink()) if path.is_symlink() else ("folder" if path.is_dir() else "")
    return found


def test_a_switch_that_cannot_build_the_environment_leaves_dokkus_plugin_in_place(tmp_path: Path):
    env, lib = dokku_layout(tmp_path)
    before = links(lib)
    no_index = tmp_path / "no-wheels"
    no_index.mkdir()

    result = switch(env | {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(no_index)})

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        " !     The plugin's environment could not be built (above); nothing on the host changed"
    )
    assert links(lib) == before
    assert answer(env) == DOKKUS
    assert not (lib / "plugins" / "available" / ".network-next").exists()


def test_a_stored_value_this_plugin_refuses_stops_the_check_before_anything_changes(tmp_path: Path):
    env, lib = dokku_layout(tmp_path)
    stored = lib / "config" / "network" / APP / "bind-all-interfaces"
    stored.parent.mkdir(parents=True)
    stored.write_text("yes")  # Dokku's plugin took it; ours refuses it at every deploy
    before = links(lib)

    result = switch(env, "--check")

    assert result.returncode == 1
    assert (
        f" !     Invalid bind-all-interfaces stored for {APP}: yes: network:set refuses it" in result.stderr
    )
    assert result.stderr.splitlines()[-1] == (
        " !     The checks above failed: fix them, then run tools/switch again; nothing on the host changed"
    )
    assert "-----> The Docker engine answers: Docker " in result.stdout
    assert links(lib) == before
    assert answer(env) == DOKKUS


def test_the_switch_puts_this_plugin_in_place_and_back_puts_dokkus_back(tmp_path: Path):
    env, lib = dokku_layout(tmp_path)
    before = links(lib)

    switched = switch(env)

    assert switched.returncode == 0, switched.stderr
    assert "-----> Every stored network property and record passes this plugin's rules" in switched.stdout
    assert links(lib) == {
        "core-plugins/enabled/network": "",
        "plugins/available/network": "folder",
        "plugins/enabled/network": str(lib / "plugins" / "available" / "network"),
    }
    assert answer(env) == "false\n"  # this plugin's default, from its own trigger
    assert (lib / "plugins" / "available" / "network" / ".git").is_dir()  # plugin:update pulls there

    back = switch(env, "--back")

    assert back.returncode == 0, back.stderr
    assert links(lib) == before
    assert answer(env) == DOKKUS
    assert [
        path.name.startswith(".network-python-") for path in (lib / "plugins" / "available").iterdir()
    ].count(True) == 1
