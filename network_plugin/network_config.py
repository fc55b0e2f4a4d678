"""Which IP a container has (docs/reference.md: The IP of a container) and the rebuild of an app's IP files.

A rebuild asks the engine about every Dokku container of the apps it covers in
one listing, then, under each app's lock, reads its `CONTAINER.<proc>.<n>` files
and writes only the IP files whose content changes.
"""

from __future__ import annotations

import os

from network_plugin import app_network, docker_engine, listeners
from network_plugin.apps import DEFAULT_SCHEDULER, scheduler
from network_plugin.docker_engine import ContainerGone, ContainerState
from network_plugin.error_handler import PluginError, describe
from network_plugin.file_lock import AppLock
from network_plugin.files import holds, read_first_line
from network_plugin.output import clip, detail_unless_quiet, info, warn
from network_plugin.paths import app_root, container_file
from network_plugin.validation import is_container_index, is_process_type, listener_host

TYPE_CHECKING = False  # typing and dataclasses cost a warm trigger milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Callable

LOCALHOST = "127.0.0.1"
MAX_EXIT_STATUS = 255
DEFAULT_NETWORK = "bridge"


def container_ip(app: str, process_type: str, state: ContainerState) -> str:
    """The container's IP: static web listener, host mode, initial network, legacy bridge."""
    if process_type == "web":
        static = listeners.static_web_listener(app)
        if static:
            return listener_host(static) or LOCALHOST
    if state.network_mode == "host":
        return LOCALHOST
    network = app_network.creation_network(app) or DEFAULT_NETWORK
    # The legacy top-level NetworkSettings.IPAddress is the default bridge's address.
    return state.networks.get(network) or state.networks.get(DEFAULT_NETWORK, "")


def container_ip_of(app: str, process_type: str, container_id: str) -> str:
    """`network-get-ipaddr`: the IP of one container, from one listing call."""
    state = docker_engine.containers_by_id([container_id]).get(container_id)
    if state is None:
        raise ContainerGone(container_id)
    return container_ip(app, process_type, state)


def deployed_containers(app: str) -> list[tuple[str, str, str]]:
    """(process type, index, container id) of every `CONTAINER.<proc>.<n>` file of the app."""
    root = app_root(app)
    found = []
    for name in listeners.app_file_names(app):
        kind, _, rest = name.partition(".")
        process_type, _, index = rest.rpartition(".")
        if kind != "CONTAINER" or not is_process_type(process_type) or not is_container_index(index):
            continue
        container_id = read_first_line(os.path.join(root, name))
        if container_id:
            found.append((process_type, index, container_id))
    return sorted(found, key=lambda entry: (entry[0], int(entry[1])))


def _needs_config(app: str) -> bool:
    return not listeners.static_web_listener(app) and scheduler(app) == DEFAULT_SCHEDULER


class BuildResult:
    """What a rebuild did: containers whose IP could not be found, the apps it built (with
    deployed containers on this host), IP files it rewrote per app, and the apps with a
    deployed container not running (starting, stopped or gone)."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.built: set[str] = set()
        self.changed: dict[str, list[str]] = {}
        self.unsettled: set[str] = set()


def build_config(apps: list[str], states: dict[str, ContainerState] | None = None) -> BuildResult:
    """Rewrite the IP files of every running container of `apps` from one container listing.

    `states` (container id -> state) is a listing the caller already made. An app whose
    files cannot be read or written is one warning and one failure; the others go on.
    """
    result = BuildResult()
    candidates = [app for app in apps if _guarded(app, result, _needs_build)]
    if not candidates:
        return result
    if states is None:
        states = docker_engine.dokku_containers(candidates)
    for app in candidates:
        _guarded(app, result, lambda app: _build_app(app, states, result))
    return result


def _needs_build(app: str) -> bool:
    return _needs_config(app) and bool(deployed_containers(app))


def _guarded(app: str, result: BuildResult, action: Callable[[str], object]) -> object:
    """`action(app)`; a file or lock failure of one app is a warning and a failure, not the end."""
    try:
        return action(app)
    except (PluginError, OSError) as error:
        # The app may come from any container's label; the error text holds a path.
        warn(f"Unable to build the network configuration of {clip(app)}: {clip(describe(error), 300)}")
        result.failures += 1
        return None


def _build_app(app: str, states: dict[str, ContainerState], result: BuildResult) -> None:
    info(f"Ensuring network configuration is in sync for {app}")
    result.built.add(app)
    if _in_sync(app, states):
        return  # the common case (a proxy build after a deploy wrote the IPs): no lock to take
    with AppLock(app):
        # Read under the lock: a deploy that wrote a newer CONTAINER file (and its IP) wins.
        containers = deployed_containers(app)
        wanted = states_of([container_id for _, _, container_id in containers], states)
        failures, changed = _write_ips(app, containers, wanted)
    result.failures += failures
    if any(cid not in wanted or not wanted[cid].running for _, _, cid in containers):
        result.unsettled.add(app)
    if changed:
        result.changed[app] = [name for name, _ in changed]
        # Names the app: the watcher's rebuilds of several apps run side by side.
        detail_unless_quiet(f"Updated {app}: " + ", ".join(f"{name} ({ip})" for name, ip in changed))


def _in_sync(app: str, states: dict[str, ContainerState]) -> bool:
    """Every deployed container of the app is listed running and its IP file holds its IP.

    Read without the app's lock (nor the import of filelock, ~20 ms), as a write of the value
    a file holds already is (`listeners.write_ipaddr`): it is linearised at these reads. Any
    other case is rebuilt under the lock, which a deploy writing a newer CONTAINER file wins.
    """
    for process_type, index, container_id in deployed_containers(app):
        state = _listed(container_id, states)
        if state is None or not state.running:
            return False
        ip = container_ip(app, process_type, state)
        if not ip or not holds(container_file(app, "IP", process_type, index), ip):
            return False
    return True


def _listed(container_id: str, states: dict[str, ContainerState]) -> ContainerState | None:
    """The listed state of a container id, full or short."""
    return states.get(container_id) or next(
        (state for full_id, state in states.items() if full_id.startswith(container_id)), None
    )


def states_of(container_ids: list[str], states: dict[str, ContainerState]) -> dict[str, ContainerState]:
    """The listed state of each container id (full or short); one more listing for ids it lacks."""
    found = {}
    for container_id in container_ids:
        state = _listed(container_id, states)
        if state is not None:
            found[container_id] = state
    missing = [container_id for container_id in container_ids if container_id not in found]
    if missing:  # a container Dokku did not label, or one already gone
        found.update(docker_engine.containers_by_id(missing))
    return found


def _write_ips(
    app: str, containers: list[tuple[str, str, str]], states: dict[str, ContainerState]
) -> tuple[int, list[tuple[str, str]]]:
    """Write the IP file of each running container; (failures, [(file name, ip) rewritten])."""
    failures = 0
    changed = []
    for process_type, index, container_id in containers:
        state = states.get(container_id)
        if state is None or not state.running:
            continue  # gone or stopped: nothing to route to, nothing to fix
        ip = container_ip(app, process_type, state)
        if not ip:
            network = app_network.creation_network(app) or DEFAULT_NETWORK
            warn(
                f"Unable to find an IP address for {app}.{process_type}.{index}"
                f" (container {container_id[:12]}) on network {network}"
            )
            failures += 1
            continue
        if listeners.write_ipaddr(app, process_type, index, ip):
            changed.append((f"IP.{process_type}.{index}", ip))
    return failures, changed


def rebuild(apps: list[str]) -> int:
    """`network:rebuild(all)`: rebuild, refresh the proxy of every app whose IP files changed.

    The exit status is the number of failures, capped for the shell.
    """
    from network_plugin import proxy

    result = build_config(apps)
    for app in sorted(result.changed):
        proxy.refresh(app)
    return min(result.failures, MAX_EXIT_STATUS)
