"""`network:watch` as a systemd service, put in place by `install`/`update`, removed by `uninstall`
(under runit, Dokku's Docker image's init: `runit_service`).

Only on a host that runs systemd, and only when the trigger runs as root (as
`plugin:install`, `plugin:update` and `plugin:uninstall` do); elsewhere `install`
says how to run the watcher by hand. The unit runs the plugin's own
`subcommands/watch` as the Dokku system user, with the group of the engine's
socket, in the environment the plugin was installed with.
"""

from __future__ import annotations

import os

from network_plugin.files import remove_file, write_atomic
from network_plugin.output import info, warn

UNIT_NAME = "dokku-network-watch.service"
UNIT_TEMPLATE = os.path.join(os.path.dirname(os.path.realpath(__file__)), UNIT_NAME)
UNIT_MODE = 0o644
# Where units go, and the folder whose existence says systemd runs this host (sd_booted(3)).
# Both may be moved by the environment: the tests point them at temp folders.
UNIT_DIR_VARIABLE = "DOKKU_NETWORK_SYSTEMD_UNIT_DIR"
RUN_DIR_VARIABLE = "DOKKU_NETWORK_SYSTEMD_RUN_DIR"
DEFAULT_UNIT_DIR = "/etc/systemd/system"
DEFAULT_RUN_DIR = "/run/systemd/system"
DEFAULT_SOCKET = "/var/run/docker.sock"
# What the watcher reads of its environment, carried into the unit when the installer had it set:
# every engine variable the triggers honour, so the watcher reaches the engine they reach.
CARRIED_VARIABLES = (
    "DOKKU_ROOT",
    "DOKKU_LIB_ROOT",
    "PLUGIN_PATH",
    "PLUGIN_ENABLED_PATH",
    "DOKKU_SYSTEM_USER",
    "DOKKU_SYSTEM_GROUP",
    "DOCKER_HOST",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOKKU_NETWORK_PROXY_REFRESH",
)
BY_HAND = (
    "network:watch is not installed as a service (it needs systemd, or runit with"
    " DOKKU_INIT_SYSTEM=sv, and root for the install):"
    " run `dokku network:watch` under your service manager to keep IP files and proxies in sync"
)


def unit_path() -> str:
    return os.path.join(os.environ.get(UNIT_DIR_VARIABLE) or DEFAULT_UNIT_DIR, UNIT_NAME)


def systemd_runs() -> bool:
    return os.path.isdir(os.environ.get(RUN_DIR_VARIABLE) or DEFAULT_RUN_DIR)


def _systemd_value(value: str) -> str:
    """A double-quoted unit value: systemd expands `%` specifiers and backslash escapes."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def socket_group() -> str:
    """The group owning the engine's Unix socket ('' when root's, or when it is not a socket)."""
    import grp

    host = os.environ.get("DOCKER_HOST", "")
    path = host[len("unix://") :] if host.startswith("unix://") else DEFAULT_SOCKET
    try:
        gid = os.stat(path).st_gid
        return "" if gid == 0 else grp.getgrgid(gid).gr_name
    except (OSError, KeyError):
        return "docker"  # what Debian's and Docker's packages name it


def render_unit(plugin_dir: str) -> str:
    group = socket_group()
    environment = [
        f"Environment={_systemd_value(f'{name}={os.environ[name]}')}"
        for name in CARRIED_VARIABLES
        if os.environ.get(name)
    ]
    program = os.path.join(plugin_dir, "subcommands", "watch")
    values = {
        "@USER@": os.environ.get("DOKKU_SYSTEM_USER") or "dokku",
        "@GROUP@": os.environ.get("DOKKU_SYSTEM_GROUP") or "dokku",
        "@SUPPLEMENTARY_GROUPS@": f"SupplementaryGroups={group}" if group else "",
        "@ENVIRONMENT@": "\n".join(environment),
        "@EXEC_START@": f"{_systemd_value(program)} network:watch",
    }
    with open(UNIT_TEMPLATE, encoding="utf-8") as handle:
        unit = handle.read()
    for placeholder, value in values.items():
        unit = unit.replace(placeholder, value)
    return unit


def run_manager(program: str, *args: str) -> str | None:
    """The output of the service manager's `program <args>`, or None when it failed: one warning
    line (the plugin works without its service)."""
    import subprocess

    command = " ".join((program, *args))
    try:
        done = subprocess.run([program, *args], capture_output=True, text=True, check=False)
    except OSError as error:
        warn(f"Unable to run {command}: {error.strerror}")
        return None
    if done.returncode != 0:
        reason = ((done.stdout + done.stderr).strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        warn(f"{command} failed: {reason}")
        return None
    return done.stdout


def _systemctl(*args: str) -> bool:
    return run_manager("systemctl", *args) is not None


def install(plugin_dir: str, restart: bool, hint: bool = True) -> None:
    """Put the unit in place; enable and start it the first time; later, restart it when it
    runs and needs to (`update` brought new code, or the unit changed).

    `plugn trigger install` runs at every plugin:install of any plugin: an operator who
    stopped or disabled the watcher keeps it that way (`try-restart` leaves a stopped unit
    alone). Under runit (Dokku's Docker image), its service instead (`runit_service`). Without
    either, or without root: say how to run the watcher by hand, when `hint`.
    """
    from network_plugin import runit_service

    if os.geteuid() == 0 and runit_service.applies():
        runit_service.install(plugin_dir, restart)
        return
    if not systemd_runs() or os.geteuid() != 0:
        if hint:
            info(BY_HAND)
        return
    path = unit_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    existed = os.path.exists(path)
    changed = write_atomic(path, render_unit(plugin_dir), mode=UNIT_MODE, dokku_owned=False)
    if changed:
        info(f"Installed the {UNIT_NAME} service (network:watch)")
        _systemctl("daemon-reload")
    if not existed:
        _systemctl("enable", "--now", "--quiet", UNIT_NAME)
    elif changed or restart:
        _systemctl("try-restart", UNIT_NAME)  # a running watcher keeps its old code until restarted


def uninstall() -> None:
    """Stop, disable and remove the unit, and the runit service, when there is one."""
    from network_plugin import runit_service

    runit_service.uninstall()
    path = unit_path()
    if not os.path.lexists(path):
        return
    if systemd_runs():
        _systemctl("disable", "--now", "--quiet", UNIT_NAME)
    remove_file(path)
    if systemd_runs():
        _systemctl("daemon-reload")
    info(f"Removed the {UNIT_NAME} service")
