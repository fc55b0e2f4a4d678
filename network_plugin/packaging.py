"""How the plugin lays itself out for plugn and Dokku.

plugn runs `$PLUGIN/<trigger>` and Dokku runs `$PLUGIN/commands` and
`$PLUGIN/subcommands/<cmd>`; all of them are links, made by the install
trigger, to the entry points in `triggers/` (the links stay out of git).
"""

from __future__ import annotations

import os

from network_plugin.commands import SUBCOMMANDS
from network_plugin.main import COMMANDS_PROGRAM, TRIGGERS

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
ENTRY_POINTS_DIR = "triggers"
SUBCOMMANDS_DIR = "subcommands"
# `install` is a real file at the root: plugn runs it before any link exists.
ROOT_INSTALL = "install"


def generated_links() -> dict[str, str]:
    """Link path (relative to the plugin folder) -> link target."""
    links = {
        name: f"{ENTRY_POINTS_DIR}/{name}" for name in [*TRIGGERS, COMMANDS_PROGRAM] if name != ROOT_INSTALL
    }
    for command in SUBCOMMANDS:
        links[f"{SUBCOMMANDS_DIR}/{command}"] = f"../{ENTRY_POINTS_DIR}/{COMMANDS_PROGRAM}"
    return links


def link_entry_points(plugin_dir: str = PLUGIN_DIR) -> int:
    """Create or repair every generated link; return how many changed."""
    os.makedirs(os.path.join(plugin_dir, SUBCOMMANDS_DIR), exist_ok=True)
    changed = 0
    for name, target in generated_links().items():
        path = os.path.join(plugin_dir, name)
        if os.path.islink(path) and os.readlink(path) == target:
            continue
        temp = f"{path}.{os.getpid()}.tmp"
        os.symlink(target, temp)
        os.replace(temp, path)
        changed += 1
    return changed
