"""How the plugin lays itself out for plugn and Dokku.

plugn runs `$PLUGIN/<trigger>` and Dokku runs `$PLUGIN/commands` and
`$PLUGIN/subcommands/<cmd>`, all made by the install trigger (and kept out of git).
`commands` and `subcommands/<cmd>` are links to `triggers/commands`. Each trigger is a
file of a few lines that the environment's interpreter runs itself (`#!<python> -EsS`), so
that it starts without the `/bin/sh` of `triggers/<trigger>` (~0.9 ms of every trigger);
where no `#!` line can name that interpreter, it is a link to `triggers/<trigger>`.
"""

from __future__ import annotations

import os

from network_plugin.commands import SUBCOMMANDS
from network_plugin.files import fsync_dir, holds, replace_link, write_atomic
from network_plugin.main import COMMANDS_PROGRAM, TRIGGERS
from network_plugin.output import warn
from network_plugin.paths import PLUGIN_NAME, lib_root

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
ENTRY_POINTS_DIR = "triggers"
SUBCOMMANDS_DIR = "subcommands"
# `install` is a real file at the root: plugn runs it before any link exists (and `update`,
# committed as a link to it, runs it after `plugin:update` pulled new code).
ROOT_TRIGGERS = ("install", "update")


# The second line of a trigger's file: how a later install knows the file is its own.
MADE_BY = "# Made by the network plugin's install (network_plugin/packaging.py)"
# Linux reads 127 bytes of a `#!` line before 5.1, and splits it at the first blank.
MAX_INTERPRETER_LENGTH = 100
MAX_LINK_HOPS = 8


def generated_links() -> dict[str, str]:
    """Link path (relative to the plugin folder) -> link target: every entry point as a link
    (a trigger is one where no `#!` line can name the interpreter)."""
    links = {
        name: f"{ENTRY_POINTS_DIR}/{name}"
        for name in [*TRIGGERS, COMMANDS_PROGRAM]
        if name not in ROOT_TRIGGERS
    }
    for command in SUBCOMMANDS:
        links[f"{SUBCOMMANDS_DIR}/{command}"] = f"../{ENTRY_POINTS_DIR}/{COMMANDS_PROGRAM}"
    return links


def trigger_file(name: str, interpreter: str) -> str:
    """The trigger `name`'s file, run by `interpreter` itself: the code of `triggers/<name>`
    without its `/bin/sh` preamble (the plugin folder is the script's own folder)."""
    return (
        f"#!{interpreter} -EsS\n"
        f"{MADE_BY} from {ENTRY_POINTS_DIR}/{name},\n"
        "# to start without /bin/sh. The next install makes it again.\n"
        "import sys\n\n"
        "from network_plugin.main import leave, main\n\n"
        "leave(main(sys.argv))\n"
    )


def environment_interpreter(plugin_dir: str) -> str | None:
    """The interpreter `.venv/bin/python3` runs, by the first absolute target of its links (the
    name it was made with, such as /usr/bin/python3, not the file that name points to now):
    None when it is no link, or when a `#!` line cannot name it."""
    path = os.path.join(plugin_dir, ".venv", "bin", "python3")
    for _ in range(MAX_LINK_HOPS):
        try:
            target = os.readlink(path)
        except OSError:
            return None
        if os.path.isabs(target):
            usable = len(target) <= MAX_INTERPRETER_LENGTH and not any(c.isspace() for c in target)
            return target if usable and os.access(target, os.X_OK) else None
        path = os.path.join(os.path.dirname(path), target)
    return None


def make_entry_points(plugin_dir: str = PLUGIN_DIR) -> int:
    """Create or repair every entry point, drop the ones no longer made; return how many changed."""
    os.makedirs(os.path.join(plugin_dir, SUBCOMMANDS_DIR), exist_ok=True)
    wanted = generated_links()
    interpreter = environment_interpreter(plugin_dir)
    changed = 0
    for name, target in wanted.items():
        path = os.path.join(plugin_dir, name)
        if interpreter and name in TRIGGERS:
            content = trigger_file(name, interpreter)
            if os.path.islink(path) or not holds(path, content):
                _replace_with_file(path, content)
                changed += 1
            continue
        if os.path.islink(path) and os.readlink(path) == target:
            continue
        replace_link(path, target)
        changed += 1
    for name in _entry_points(plugin_dir):
        if name not in wanted:
            # A trigger an older version had: left in place, plugn would still run it.
            os.unlink(os.path.join(plugin_dir, name))
            changed += 1
    return changed


def _replace_with_file(path: str, content: str) -> None:
    """Make `path` an executable file of `content` in one step: written whole under another
    name, then renamed over the link or file before it (never written through a link of an
    older install into triggers/); a trigger starting meanwhile runs one or the other."""
    temp = f"{path}.{os.getpid()}.tmp"
    write_atomic(temp, content, mode=0o755, dokku_owned=False)
    os.replace(temp, path)
    fsync_dir(os.path.dirname(path))


def _entry_points(plugin_dir: str) -> list[str]:
    """The entry points install made in the plugin folder (and subcommands/): links into
    triggers/, and trigger files whose second line says so."""
    found = []
    for folder, prefix in (("", f"{ENTRY_POINTS_DIR}/"), (SUBCOMMANDS_DIR, f"../{ENTRY_POINTS_DIR}/")):
        for entry in os.scandir(os.path.join(plugin_dir, folder)):
            if entry.is_symlink():
                ours = os.readlink(entry.path).startswith(prefix)
            else:
                ours = not folder and entry.is_file() and _made_by_install(entry.path)
            if ours:
                found.append(os.path.join(folder, entry.name) if folder else entry.name)
    return found


def _made_by_install(path: str) -> bool:
    """Does the file's second line say that install made it?"""
    try:
        with open(path, "rb") as handle:
            lines = handle.read(512).split(b"\n")
    except OSError:
        return False
    return len(lines) > 1 and lines[1].startswith(MADE_BY.encode())


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
