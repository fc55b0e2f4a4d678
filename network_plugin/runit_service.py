"""`network:watch` as a runit service, where Dokku runs without systemd (docs/reference.md: The
watch service).

Dokku's own Docker image runs its services under runit and says so with
`DOKKU_INIT_SYSTEM=sv`: its services are folders of `/etc/runit/runsvdir/default`, each with a
`run` script logging to `/var/log/services/<name>` (rotated by the image's logrotate). There,
`install` (as root) puts `dokku-network-watch/run` in place: the plugin's `subcommands/watch`
run by `chpst` as the Dokku user with the group of the engine's socket, in the environment the
unit would carry. The folder is made beside under a dot name, which runsvdir ignores, and
renamed into place whole: runsvdir starts it within 5 s, once. A later install rewrites `run`
when it changed and restarts the watcher only when it runs (`sv down` sticks); `uninstall`
stops it, ends its runsv and removes the folder.
"""

from __future__ import annotations

import os

from network_plugin import service
from network_plugin.files import remove_tree, write_atomic
from network_plugin.output import info

SERVICE_NAME = "dokku-network-watch"
# Dokku's variable: `sv` on its Docker image (runit), unset elsewhere.
INIT_SYSTEM_VARIABLE = "DOKKU_INIT_SYSTEM"
RUNIT = "sv"
# Where the services and their logs go; the tests point them at temp folders.
SERVICES_DIR_VARIABLE = "DOKKU_NETWORK_RUNIT_DIR"
LOG_DIR_VARIABLE = "DOKKU_NETWORK_RUNIT_LOG_DIR"
DEFAULT_SERVICES_DIR = "/etc/runit/runsvdir/default"
DEFAULT_LOG_DIR = "/var/log/services"
RUN_MODE = 0o755
RUN_TEMPLATE = """#!/bin/sh
# network:watch under runit: put here by the network plugin's install trigger, removed by its
# uninstall trigger; written from the installing environment.
mkdir -p {log_dir}
exec >>{log} 2>&1
{exports}
exec chpst -u {identity} {program} network:watch
"""


def applies() -> bool:
    """Dokku says runit runs its services, and systemd does not run this host."""
    return os.environ.get(INIT_SYSTEM_VARIABLE) == RUNIT and not service.systemd_runs()


def service_dir() -> str:
    return os.path.join(os.environ.get(SERVICES_DIR_VARIABLE) or DEFAULT_SERVICES_DIR, SERVICE_NAME)


def _quoted(value: str) -> str:
    """One word for sh, whatever it holds."""
    return "'" + value.replace("'", "'\\''") + "'"


def render_run(plugin_dir: str) -> str:
    log_dir = os.environ.get(LOG_DIR_VARIABLE) or DEFAULT_LOG_DIR
    groups = [os.environ.get("DOKKU_SYSTEM_GROUP") or "dokku"]
    socket_group = service.socket_group()
    if socket_group and socket_group not in groups:
        groups.append(socket_group)
    identity = ":".join([os.environ.get("DOKKU_SYSTEM_USER") or "dokku", *groups])
    exports = [
        f"export {name}={_quoted(os.environ[name])}"
        for name in service.CARRIED_VARIABLES
        if os.environ.get(name)
    ]
    return RUN_TEMPLATE.format(
        log_dir=_quoted(log_dir),
        log=_quoted(os.path.join(log_dir, SERVICE_NAME)),
        exports="\n".join(exports),
        identity=_quoted(identity),
        program=_quoted(os.path.join(plugin_dir, "subcommands", "watch")),
    )


def _sv(*args: str) -> str | None:
    return service.run_manager("sv", *args)


def _running(folder: str) -> bool:
    """Does runsv run the watcher now? (Without a runsv, or one told `down`: no.)"""
    if not os.path.exists(os.path.join(folder, "supervise", "ok")):
        return False  # no runsv yet: runsvdir starts it, with the new script
    status = _sv("status", folder)
    return status is not None and status.startswith("run:")


def install(plugin_dir: str, restart: bool) -> None:
    """Put the service in place (runsvdir starts it); later, rewrite its script when it changed
    and restart a running watcher when it changed or `restart` (an update)."""
    folder = service_dir()
    script = render_run(plugin_dir)
    if not os.path.isdir(folder):
        parent, name = os.path.split(folder)
        temp = os.path.join(parent, f".{name}.tmp")
        remove_tree(temp)  # what an install killed half-way left
        os.makedirs(temp, mode=0o755)
        write_atomic(os.path.join(temp, "run"), script, mode=RUN_MODE, dokku_owned=False)
        os.rename(temp, folder)
        info(f"Installed the {SERVICE_NAME} runit service (network:watch) in {folder}")
        return
    changed = write_atomic(os.path.join(folder, "run"), script, mode=RUN_MODE, dokku_owned=False)
    if changed:
        info(f"Updated the {SERVICE_NAME} runit service (network:watch)")
    if (changed or restart) and _running(folder):
        _sv("restart", folder)


def uninstall() -> None:
    """Stop the watcher, end its runsv, remove the folder (when there is one)."""
    folder = service_dir()
    if not os.path.lexists(folder):
        return
    if os.path.exists(os.path.join(folder, "supervise", "ok")):
        _sv("force-stop", folder)
        _sv("exit", folder)
    remove_tree(folder)
    info(f"Removed the {SERVICE_NAME} runit service")
