"""Docker networks as Dokku sees them: create, destroy, exists, info, list.

Descriptions are built from a constant number of engine calls however many
networks and containers there are: one network listing (or inspect), one
container listing, and one pass over the property store.
"""

from __future__ import annotations

import os
import sys

from network_plugin import app_network, docker_engine, host_network, properties, records, use_site_packages
from network_plugin.docker_engine import NETWORK_NAME_LABEL, ContainerState, NetworkGone
from network_plugin.error_handler import EngineAPIError, PluginError
from network_plugin.files import list_folder
from network_plugin.network_options import OVERLAY, CreateOptions
from network_plugin.output import detail, info, one_line, print_json, section, warn
from network_plugin.paths import GLOBAL_APP, properties_root
from network_plugin.validation import (
    APP_NETWORK_PREFIX,
    DOCKER_NETWORKS,
    app_network_owner,
    is_app_name,
    is_network_name,
    verify_format,
    verify_network_name,
)

INFO_LABEL_WIDTH = 15
CONFLICT = 409


def _require(name: str) -> dict:
    verify_network_name(name)
    network = docker_engine.inspect_network(name)
    if network is None:
        raise _not_listed(name, NetworkGone(name))
    return network


def _not_listed(name: str, error: PluginError) -> PluginError:
    """`error`, unless a swarm worker's engine may know the network without listing it."""
    if docker_engine.is_swarm_worker():
        return PluginError(
            f"Network {name} is not listed on this swarm worker: its engine lists an overlay network"
            " only while one of its containers uses it; ask a manager"
        )
    return error


def apps_using_networks() -> dict[str, list[str]]:
    """Network name -> apps (and `--global`) whose attach/initial properties name it."""
    using: dict[str, list[str]] = {}
    for owner in sorted(list_folder(properties_root())):
        if not (is_app_name(owner) or owner == GLOBAL_APP):
            continue
        values = [properties.get(owner, key) for key in properties.NETWORK_KEYS]
        names = {name for value in values for name in properties.networks(value)}
        if owner != GLOBAL_APP:
            names.update(name for _, name in app_network.with_own(owner, [], (properties.INITIAL_NETWORK,)))
        for name in names:
            using.setdefault(name, []).append(owner)
    return using


def network_info(network: dict, containers: list[ContainerState], apps: list[str]) -> dict:
    """The JSON object of a network (the reference plugin's keys, plus ours)."""
    labels = network.get("Labels") or {}
    ipam = (network.get("IPAM") or {}).get("Config") or []
    name = network["Name"]
    return {
        "Apps": apps,
        "Attachable": bool(network.get("Attachable")),
        "Containers": [
            {
                "App": container.app,
                "ID": container.id,
                "IP": container.networks.get(name, ""),
                "Name": container.name,
                "ProcessType": container.process_type,
            }
            # The engine lists newest first; names sort as an operator reads them (web.1, web.2).
            for container in sorted(containers, key=lambda container: container.name)
            if name in container.networks
        ],
        "CreatedAt": network.get("Created", ""),
        "DokkuManaged": NETWORK_NAME_LABEL in labels,
        "Driver": network.get("Driver", ""),
        "Gateways": [entry["Gateway"] for entry in ipam if entry.get("Gateway")],
        "ID": network["Id"],
        "IPRanges": [entry["IPRange"] for entry in ipam if entry.get("IPRange")],
        "IPv6": bool(network.get("EnableIPv6")),
        "Internal": bool(network.get("Internal")),
        "Labels": labels,
        "Name": name,
        "Options": network.get("Options") or {},
        "Scope": network.get("Scope", ""),
        "Subnets": [entry["Subnet"] for entry in ipam if entry.get("Subnet")],
    }


def create(name: str, options: CreateOptions) -> None:
    """Create `name` as `options` say (name and options checked by network_options.parse),
    always attachable, and record it so that it can be made again the same way."""
    owner = app_network_owner(name)
    if owner:
        raise PluginError(
            f"Invalid network name specified: {name}, {APP_NETWORK_PREFIX}<app> names the network of"
            f" an app of its own: set app-network for {owner} instead"
        )
    records.verify_folder_reachable()
    if docker_engine.networks_by_name([name]):
        raise PluginError(f"Network {name} already exists")
    if host_network.engine_shares_host_network():
        host_network.verify_interfaces(options, "Invalid option specified: ")
    if options.driver == OVERLAY:
        verify_swarm_manager()
    if not make(name, options):
        raise PluginError(f"Network {name} already exists")
    records.write(name, options)
    info(f"Creating network {name}")


def make(name: str, options: CreateOptions) -> bool:
    """Ask the engine for network `name`; False when a network of that name exists already
    (made meanwhile by another deploy or command)."""
    use_site_packages()
    from docker.types import IPAMConfig, IPAMPool

    pools = [
        IPAMPool(subnet=pool.subnet, iprange=pool.ip_range or None, gateway=pool.gateway or None)
        for pool in options.pools
    ]
    try:
        docker_engine.api().create_network(
            name,
            driver=options.driver,
            options=options.options or None,
            ipam=IPAMConfig(pool_configs=pools) if pools else None,
            # Engines before API 1.44 create a second network of the same name without it.
            check_duplicate=True,
            internal=options.internal,
            labels=options.labels,
            enable_ipv6=options.ipv6,
            attachable=True,
        )
    except EngineAPIError as error:
        # Made meanwhile: the engine says so (409), or, for a network with a fixed subnet,
        # first finds that subnet taken by it.
        if error.status_code == CONFLICT or docker_engine.networks_by_name([name]):
            return False
        raise
    return True


def verify_swarm_manager() -> None:
    """Only a swarm manager creates overlay networks; say why not and what to do instead."""
    node = docker_engine.swarm()
    state = node.get("LocalNodeState") or "inactive"
    if state == "inactive":
        raise PluginError(
            "Overlay networks need a Docker Swarm and this engine is in none:"
            " run `docker swarm init` here (or `docker swarm join` an existing swarm) first"
        )
    if state != "active":
        raise PluginError(
            f"Overlay networks need an active Docker Swarm; this engine's swarm node is {state}"
        )
    if not node.get("ControlAvailable"):
        raise PluginError(
            "Overlay networks are created on a swarm manager and this engine is a worker:"
            " run network:create on a manager; the network then reaches this host"
        )


def _containers_naming(network: dict) -> list[ContainerState]:
    """Every container on the network, running or not: a created one names it without its id."""
    return docker_engine.list_containers({"network": [network["Name"], network["Id"]]})


def _confirm_destroy(name: str) -> None:
    warn("WARNING: Potentially Destructive Action")
    warn(f"This command will destroy network {name}.")
    warn(f'To proceed, type "{name}"')
    print()
    print("> ", end="", flush=True)
    answer = sys.stdin.readline()
    if answer.strip() != name:
        raise PluginError(f"Confirmation did not match {name}. Aborted.")


def destroy(name: str, force: bool) -> None:
    verify_network_name(name)
    records.verify_folder_reachable()
    network = docker_engine.inspect_network(name)
    if network is None:
        _forget(name, force)
        return
    if name in DOCKER_NETWORKS:
        raise PluginError(f"Network {name} is one of Docker's own networks: it cannot be destroyed")
    # Stopped and created containers count too: the engine removes a network they name, and
    # they then cannot start.
    users = _containers_naming(network)
    if users:
        attached = sorted(user.name if user.running else f"{user.name} (not running)" for user in users)
        raise PluginError(f"Network {name} has containers attached: {', '.join(attached)}")
    if not (force or os.environ.get("DOKKU_APPS_FORCE_DELETE") == "1"):
        _confirm_destroy(name)
    docker_engine.api().remove_network(network["Id"])
    records.remove(name)
    info(f"Destroying network {name}")


def _forget(name: str, force: bool) -> None:
    """A network gone from the engine but still recorded: drop the record, or it comes back."""
    error = _not_listed(name, NetworkGone(name))
    if not isinstance(error, NetworkGone) or not records.is_recorded(name):
        raise error  # on a swarm worker, a network the engine does not list may still exist
    if not (force or os.environ.get("DOKKU_APPS_FORCE_DELETE") == "1"):
        _confirm_destroy(name)
    info(f"Destroying the record of network {name}: the network itself was gone already")
    records.remove(name)


def show_exists(name: str) -> None:
    if not is_network_name(name):
        raise PluginError("Network does not exist")
    if not docker_engine.networks_by_name([name]):
        raise _not_listed(name, PluginError("Network does not exist"))
    info("Network exists")


def show_info(name: str, output_format: str) -> None:
    verify_format(output_format, "text")
    network = _require(name)
    containers = _containers_naming(network)
    described = network_info(network, containers, apps_using_networks().get(name, []))
    if output_format == "json":
        print_json(described)
        return
    section(f"{name} network information")
    rows = [
        ("ID", described["ID"]),
        ("Name", described["Name"]),
        ("Driver", described["Driver"]),
        ("Scope", described["Scope"]),
        ("Dokku managed", _yes_no(described["DokkuManaged"])),
        ("Internal", _yes_no(described["Internal"])),
        ("Attachable", _yes_no(described["Attachable"])),
        ("IPv6", _yes_no(described["IPv6"])),
        ("Subnets", " ".join(described["Subnets"])),
        ("Gateways", " ".join(described["Gateways"])),
        ("IP ranges", " ".join(described["IPRanges"])),
        ("Options", _pairs(described["Options"])),
        ("Labels", _pairs(described["Labels"])),
        ("Apps", " ".join(described["Apps"])),
        ("Containers", str(len(described["Containers"]))),
    ]
    for label, value in rows:
        detail(f"{label + ':':<{INFO_LABEL_WIDTH}}{value}")
    for container in described["Containers"]:
        owner = container["App"] or "-"
        if container["App"] and container["ProcessType"]:
            owner = f"{owner}.{container['ProcessType']}"
        detail(f"  {container['Name']} {owner} {container['IP'] or '-'}")


def _pairs(mapping: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(mapping.items()))


def _yes_no(value: bool) -> str:
    return "true" if value else "false"


def show_list(output_format: str, dokku_managed: bool) -> None:
    verify_format(output_format, "text")
    networks = sorted(docker_engine.api().networks(), key=lambda network: network["Name"])
    if dokku_managed:
        networks = [network for network in networks if NETWORK_NAME_LABEL in (network.get("Labels") or {})]
    if output_format == "json":
        containers = docker_engine.list_containers({})
        using = apps_using_networks()
        print_json(
            [network_info(network, containers, using.get(network["Name"], [])) for network in networks]
        )
        return
    section("Networks")
    for network in networks:
        print(one_line(network["Name"]))
