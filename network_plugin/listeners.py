"""The app's per-container network files: `IP.<proc>.<n>` and `PORT.<proc>.<n>`.

Proxy plugins read these (through `network-get-listeners`) to route traffic,
so every value written is checked first and every write is atomic.
"""

from __future__ import annotations

import os

from network_plugin import container_health
from network_plugin.error_handler import PluginError
from network_plugin.file_lock import AppLock
from network_plugin.files import (
    NAME_MAX,
    holds,
    is_file,
    list_folder,
    read_first_line,
    remove_file,
    write_atomic,
)
from network_plugin.output import clip, warn
from network_plugin.paths import app_root, container_file
from network_plugin.properties import STATIC_WEB_LISTENER, get
from network_plugin.validation import (
    is_container_index,
    is_listener_host,
    is_port,
    looks_like_ip,
    verify_container_index,
    verify_process_type,
)

DEFAULT_PORT = "5000"
CONFIG_KINDS = ("IP", "PORT")
# The trigger that writes each kind: the running watcher is asked to run it (network_plugin.warm).
WRITER_TRIGGERS = {"IP": "network-write-ipaddr", "PORT": "network-write-port"}
INVALID_VALUE_MESSAGES = {
    "IP": "Invalid IP address or host name specified",
    "PORT": "Invalid port specified, must be between 1 and 65535",
}


def static_web_listener(app: str) -> str:
    return get(app, STATIC_WEB_LISTENER)


def write_ipaddr(app: str, process_type: str, index: str, ip: str) -> bool:
    """Write `IP.<proc>.<n>`; True when the content changed. No IP (``) removes the file."""
    return _write_container_value(app, "IP", process_type, index, ip, valid=is_listener_host(ip))


def write_port(app: str, process_type: str, index: str, port: str) -> bool:
    """Write `PORT.<proc>.<n>`; True when the content changed. No port (``) removes the file."""
    return _write_container_value(app, "PORT", process_type, index, port, valid=is_port(port))


def _write_container_value(
    app: str, kind: str, process_type: str, index: str, value: str, *, valid: bool
) -> bool:
    verify_process_type(process_type)
    verify_container_index(index)
    if value and not valid:
        raise PluginError(f"{INVALID_VALUE_MESSAGES[kind]}: {value}")
    path = container_file(app, kind, process_type, index)
    if len(os.path.basename(path).encode()) > NAME_MAX:
        # No such file can exist: refused (or, to remove, nothing to do) before any lock is taken.
        if value:
            raise PluginError(
                f"Invalid process type specified: {clip(process_type)} (too long for a file name)"
            )
        return False
    if value and holds(path, value):
        # A redeploy writing what is there: nothing to serialise, so the lock (and the
        # import of filelock) is skipped. Linearised at this read, like any later write.
        return False
    from network_plugin import warm

    if warm.written_by_watcher(WRITER_TRIGGERS[kind], [app, process_type, index, value]):
        return True  # by this very code, in the watcher, under the same lock
    with AppLock(app):
        if not value:
            # A container without an address (e.g. `--network none`) has no listener;
            # the reference plugin would write an empty file here.
            remove_file(path)
            return True
        return write_atomic(path, value)


def app_file_names(app: str) -> list[str]:
    """Names of the files in the app root ([] when it has none)."""
    return list_folder(app_root(app))


def clear_config(app: str) -> None:
    """Remove every `IP.*` and `PORT.*` file of the app."""
    root = app_root(app)
    with AppLock(app):
        for name in app_file_names(app):
            kind, dot, _ = name.partition(".")
            if dot and kind in CONFIG_KINDS:
                remove_file(os.path.join(root, name))


def config_exists(app: str) -> bool:
    if static_web_listener(app):
        return True
    return all(is_file(container_file(app, kind, "web", "1")) for kind in CONFIG_KINDS)


def _indexes(app: str, process_type: str) -> list[str]:
    """Container indexes that have an IP file, in numeric order."""
    prefix = f"IP.{process_type}."
    names = app_file_names(app)
    suffixes = [name[len(prefix) :] for name in names if name.startswith(prefix)]
    return sorted((suffix for suffix in suffixes if is_container_index(suffix)), key=int)


def get_listeners(app: str, process_type: str) -> list[str]:
    """`ip:port` of every container of the process type, in container index order, but those
    left out for their health (`container_health`); one warning when that would leave none."""
    listed, _, all_unhealthy = listeners_by_health(app, process_type)
    if all_unhealthy:
        warn(container_health.all_unhealthy_warning(app, process_type))
    return listed


def listeners_by_health(app: str, process_type: str) -> tuple[list[str], list[str], bool]:
    """(the listeners `get_listeners` gives; those it leaves out, each as `ip:port (<proc>.<n>
    unhealthy)`; whether every candidate is unhealthy, and so none is left out)."""
    if process_type == "web":
        static = static_web_listener(app)
        if static:
            return [static], [], False
    candidates = _candidates(app, process_type)
    left_out, all_unhealthy = container_health.left_out(app, process_type, list(candidates))
    listed = [listener for index, listener in candidates.items() if index not in left_out]
    reasons = [
        f"{candidates[index]} ({process_type}.{index} {container_health.UNHEALTHY})" for index in left_out
    ]
    return listed, reasons, all_unhealthy


def _candidates(app: str, process_type: str) -> dict[str, str]:
    """Container index -> `ip:port`, for each IP file holding an address, in index order."""
    candidates = {}
    for index in _indexes(app, process_type):
        ip = read_first_line(container_file(app, "IP", process_type, index))
        if not looks_like_ip(ip):
            continue  # empty or foreign content must never reach a proxy's config
        port = read_first_line(container_file(app, "PORT", process_type, index))
        host = f"[{ip}]" if ":" in ip else ip
        candidates[index] = f"{host}:{port if is_port(port) else DEFAULT_PORT}"
    return candidates


def ip_addresses(app: str) -> list[str]:
    """The address of every `IP.<proc>.<n>` file of the app that holds one."""
    root = app_root(app)
    found = []
    for name in app_file_names(app):
        kind, dot, _ = name.partition(".")
        if dot and kind == "IP":
            ip = read_first_line(os.path.join(root, name))
            if looks_like_ip(ip):
                found.append(ip)
    return found
