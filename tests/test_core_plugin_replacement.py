"""Replacing Dokku's core `network` plugin so that it stays replaced (README: Install, Uninstall).

A throw-away DOKKU_LIB_ROOT is laid out as a Dokku host has it: core plugins in
`core-plugins/available/<name>`, linked as `core-plugins/enabled/<name>`,
`plugins/available/<name>` and `plugins/enabled/<name>`. Dokku's own network plugin is
stood in for by one whose install trigger leaves a mark. What Dokku's package upgrade
does with plugins (debian/postinst `setup-plugins`, then `dokku plugin:install --core`)
and the checks of plugin:update / plugin:uninstall are replayed from Dokku's source.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.host import PLUGN, copy_environment, copy_repository

MARK_LINE = "core install trigger ran"


def mark_file(lib: Path) -> Path:
    return lib / "core-install.log"


def stand_in_core_plugin(lib: Path, name: str) -> None:
    """A core plugin whose install trigger logs that it ran."""
    folder = lib / "core-plugins" / "available" / name
    folder.mkdir(parents=True)
    install = folder / "install"
    install.write_text(f'#!/bin/sh\necho "{name}: {MARK_LINE}" >>{mark_file(lib)}\n')
    install.chmod(0o755)


def enable(plugin_path: Path, name: str) -> None:
    """`plugn enable <name>` under `plugin_path`."""
    (plugin_path / "enabled").mkdir(parents=True, exist_ok=True)
    (plugin_path / "enabled" / name).symlink_to(plugin_path / "available" / name)


def dokku_host_layout(lib: Path) -> None:
    """What Dokku's package leaves: core plugins linked under plugins/ too."""
    for name in ("network", "apps"):
        stand_in_core_plugin(lib, name)
    postinst_setup_plugins(lib)
    mark_file(lib).unlink()


def postinst_setup_plugins(lib: Path) -> None:
    """Dokku's postinst on every upgrade: link each core plugin whose name is not a folder
    under plugins/available, drop broken links, then `dokku plugin:install --core`."""
    core, plugins = lib / "core-plugins", lib / "plugins"
    (plugins / "available").mkdir(parents=True, exist_ok=True)
    for folder in sorted((core / "available").iterdir()):
        if folder.is_dir() and not (plugins / "available" / folder.name).is_dir():
            (plugins / "available" / folder.name).symlink_to(folder)
            enable(core, folder.name)
            enable(plugins, folder.name)
    for link in [*core.rglob("*"), *plugins.rglob("*")]:
        if link.is_symlink() and not link.exists():
            link.unlink()
    plugn_trigger(lib, core, "install")  # plugin:install --core


def plugn_trigger(lib: Path, plugin_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PLUGIN_PATH": str(plugin_path),
        "DOKKU_LIB_ROOT": str(lib),
        "DOKKU_ROOT": str(lib.parent / "home"),
    }
    return subprocess.run(
        [str(PLUGN), "trigger", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def is_core_plugin(lib: Path, name: str) -> bool:
    """`fn-is-core-plugin`: plugin:update refuses such a name."""
    return (lib / "core-plugins" / "enabled" / name).is_symlink()


def uninstall_refused(lib: Path, name: str) -> bool:
    """`uninstall_plugin` refuses a name Dokku ships in core-plugins/available."""
    return (lib / "core-plugins" / "available" / name).exists()


def plugin_install(lib: Path, plugin_dir: Path) -> subprocess.CompletedProcess[str]:
    """`dokku plugin:install <url> network`: clone, enable, `plugn trigger install`.

    The clone gets a copy of the session's built environment, so `install` has nothing to build
    (it is the one the lock asks for).
    """
    target = lib / "plugins" / "available" / "network"
    copy_repository(target)
    copy_environment(plugin_dir, target)
    enable(lib / "plugins", "network")
    return plugn_trigger(lib, lib / "plugins", "install")


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    lib = tmp_path / "var-lib-dokku"
    (tmp_path / "home").mkdir()
    dokku_host_layout(lib)
    return lib


def test_readme_procedure_leaves_ours_the_only_network_plugin(lib: Path, plugin_dir: Path):
    # README: remove the three links to Dokku's copy, then plugin:install.
    for link in ("core-plugins/enabled/network", "plugins/enabled/network", "plugins/available/network"):
        (lib / link).unlink()
    installed = plugin_install(lib, plugin_dir)
    assert (installed.returncode, installed.stderr) == (0, "")
    mark_file(lib).unlink()  # plugn trigger install ran every enabled plugin's install

    postinst_setup_plugins(lib)  # a Dokku upgrade

    assert mark_file(lib).read_text() == f"apps: {MARK_LINE}\n"
    ours = lib / "plugins" / "available" / "network"
    assert ours.is_dir() and not ours.is_symlink()
    assert (lib / "plugins" / "enabled" / "network").resolve() == ours
    assert not is_core_plugin(lib, "network")  # plugin:update network is allowed
    updated = plugn_trigger(lib, lib / "plugins", "update")
    assert (updated.returncode, updated.stderr) == (0, "")
    # plugin:uninstall stays refused while Dokku's copy sits in core-plugins/available:
    # README says to run our uninstall trigger and relink instead.
    assert uninstall_refused(lib, "network")


def test_install_says_when_dokkus_plugin_would_still_run_beside_ours(lib: Path, plugin_dir: Path):
    # Only the plugins/ links removed: Dokku's copy stays enabled as a core plugin.
    for link in ("plugins/enabled/network", "plugins/available/network"):
        (lib / link).unlink()

    installed = plugin_install(lib, plugin_dir)

    core_link = lib / "core-plugins" / "enabled" / "network"
    assert installed.returncode == 0
    assert installed.stderr == (
        " !     Dokku's own network plugin is still enabled as a core plugin: every Dokku upgrade runs"
        " its install trigger beside this one, and plugin:update/plugin:uninstall refuse 'network'."
        f" Remove the link: rm {core_link}\n"
    )
    postinst_setup_plugins(lib)
    assert f"network: {MARK_LINE}" in mark_file(lib).read_text().splitlines()
    assert is_core_plugin(lib, "network")


def test_going_back_restores_dokkus_plugin(lib: Path, plugin_dir: Path):
    for link in ("core-plugins/enabled/network", "plugins/enabled/network", "plugins/available/network"):
        (lib / link).unlink()
    assert plugin_install(lib, plugin_dir).returncode == 0
    ours = lib / "plugins" / "available" / "network"

    # README, going back: our uninstall trigger, remove our folder, let the postinst relink.
    uninstalled = subprocess.run([str(ours / "uninstall"), "network"], capture_output=True, check=False)
    assert uninstalled.returncode == 0
    (lib / "plugins" / "enabled" / "network").unlink()
    shutil.rmtree(ours)
    postinst_setup_plugins(lib)

    assert ours.resolve() == lib / "core-plugins" / "available" / "network"
    assert is_core_plugin(lib, "network")
    assert f"network: {MARK_LINE}" in mark_file(lib).read_text().splitlines()
