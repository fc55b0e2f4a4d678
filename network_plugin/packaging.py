"""How the plugin lays itself out for plugn and Dokku.

plugn runs `$PLUGIN/<trigger>` and Dokku runs `$PLUGIN/commands` and
`$PLUGIN/subcommands/<cmd>`; all of them are links, made by the install
trigger, to the entry points in `triggers/` (the links stay out of git).
"""

from __future__ import annotations

import os

from network_plugin.commands import SUBCOMMANDS
from network_plugin.files import replace_link
from network_plugin.main import COMMANDS_PROGRAM, TRIGGERS
from network_plugin.output import warn
from network_plugin.paths import PLUGIN_NAME, lib_root

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
ENTRY_POINTS_DIR = "triggers"
SUBCOMMANDS_DIR = "subcommands"
# `install` is a real file at the root: plugn runs it before any link exists (and `update`,
# committed as a link to it, runs it after `plugin:update` pulled new code).
ROOT_TRIGGERS = ("install", "update")


def generated_links() -> dict[str, str]:
    """Link path (relative to the plugin folder) -> link target."""
    links = {
        name: f"{ENTRY_POINTS_DIR}/{name}"
        for name in [*TRIGGERS, COMMANDS_PROGRAM]
        if name not in ROOT_TRIGGERS
    }
    for command in SUBCOMMANDS:
        links[f"{SUBCOMMANDS_DIR}/{command}"] = f"../{ENTRY_POINTS_DIR}/{COMMANDS_PROGRAM}"
    return links


def link_entry_points(plugin_dir: str = PLUGIN_DIR) -> int:
    """Create or repair every generated link, drop the ones no longer generated; return how many changed."""
    os.makedirs(os.path.join(plugin_dir, SUBCOMMANDS_DIR), exist_ok=True)
    wanted = generated_links()
    changed = 0
    for name, target in wanted.items():
        path = os.path.join(plugin_dir, name)
        if os.path.islink(path) and os.readlink(path) == target:
            continue
        replace_link(path, target)
        changed += 1
    for name in _entry_point_links(plugin_dir):
        if name not in wanted:
            # A trigger an older version had: left in place, plugn would still run it.
            os.unlink(os.path.join(plugin_dir, name))
            changed += 1
    return changed


def _entry_point_links(plugin_dir: str) -> list[str]:
    """Links in the plugin folder (and subcommands/) that point into triggers/: the ones we made."""
    found = []
    for folder, prefix in (("", f"{ENTRY_POINTS_DIR}/"), (SUBCOMMANDS_DIR, f"../{ENTRY_POINTS_DIR}/")):
        for entry in os.scandir(os.path.join(plugin_dir, folder)):
            if entry.is_symlink() and os.readlink(entry.path).startswith(prefix):
                found.append(os.path.join(folder, entry.name) if folder else entry.name)
    return found


def plugin_name(plugin_dir: str = PLUGIN_DIR) -> str:
    """The name Dokku knows this plugin by: its folder under `$PLUGIN_PATH/available`."""
    return os.path.basename(plugin_dir)


def warn_about_core_plugin(plugin_dir: str = PLUGIN_DIR) -> None:
    """Say so when Dokku's own network plugin would still run beside this one.

    Dokku runs the install trigger of every `core-plugins/enabled/*` at each upgrade
    (`plugin:install --core`) and refuses `plugin:update`/`plugin:uninstall` of a name
    linked there; `plugins/enabled/network` pointing elsewhere runs every trigger twice.
    """
    core_path = os.environ.get("PLUGIN_CORE_PATH") or os.path.join(lib_root(), "core-plugins")
    core_link = os.path.join(core_path, "enabled", PLUGIN_NAME)
    if os.path.islink(core_link):
        warn(
            f"Dokku's own network plugin is still enabled as a core plugin: every Dokku upgrade"
            f" runs its install trigger beside this one, and plugin:update/plugin:uninstall refuse"
            f" '{PLUGIN_NAME}'. Remove the link: rm {core_link}"
        )
    plugin_path = os.environ.get("PLUGIN_PATH") or os.path.join(lib_root(), "plugins")
    enabled = os.path.join(plugin_path, "enabled", PLUGIN_NAME)
    if os.path.lexists(enabled) and os.path.realpath(enabled) != os.path.realpath(plugin_dir):
        warn(
            f"{enabled} is not this plugin but {os.path.realpath(enabled)}: both run every network"
            f" trigger. Remove that link and its plugins/available twin, then install this plugin as"
            f" '{PLUGIN_NAME}'"
        )
