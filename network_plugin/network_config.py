"""Which IP a container has (docs/reference.md: The IP of a container) and the rebuild of an app's IP files.

A rebuild reads every `CONTAINER.<proc>.<n>` of the apps it covers, asks the
engine about all of those containers in one listing, and writes only the IP
files whose content changes.
"""

from __future__ import annotations

import os

from network_plugin import docker_engine, listeners, properties
from network_plugin.apps import DEFAULT_SCHEDULER, scheduler
from network_plugin.docker_engine import ContainerGone, ContainerState
from network_plugin.file_lock import AppLock
from network_plugin.files import read_first_line
from network_plugin.output import info, warn
from network_plugin.paths import app_root
from network_plugin.validation import is_container_index, is_process_type, listener_host

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
    network = properties.computed(app, properties.INITIAL_NETWORK) or DEFAULT_NETWORK
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


def build_config(apps: list[str]) -> int:
    """Rewrite the IP files of every running container of `apps`; return how many failed."""
    work = {app: deployed_containers(app) for app in apps if _needs_config(app)}
    work = {app: containers for app, containers in work.items() if containers}
    states = docker_engine.containers_by_id([cid for entries in work.values() for _, _, cid in entries])
    failures = 0
    for app, containers in work.items():
        info(f"Ensuring network configuration is in sync for {app}")
        with AppLock(app):
            failures += _write_ips(app, containers, states)
    return failures


def _write_ips(app: str, containers: list[tuple[str, str, str]], states: dict[str, ContainerState]) -> int:
    failures = 0
    for process_type, index, container_id in containers:
        state = states.get(container_id)
        if state is None or not state.running:
            continue  # gone or stopped: nothing to route to, nothing to fix
        ip = container_ip(app, process_type, state)
        if not ip:
            network = properties.computed(app, properties.INITIAL_NETWORK) or DEFAULT_NETWORK
            warn(
                f"Unable to find an IP address for {app}.{process_type}.{index}"
                f" (container {container_id[:12]}) on network {network}"
            )
            failures += 1
            continue
        listeners.write_ipaddr(app, process_type, index, ip)
    return failures


def rebuild(apps: list[str]) -> int:
    """`network:rebuild(all)`: the exit status is the number of failures, capped for the shell."""
    return min(build_config(apps), MAX_EXIT_STATUS)
