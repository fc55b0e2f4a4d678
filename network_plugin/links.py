"""Service links on a user-defined network (docs/reference.md: Attaching containers to networks).

Dokku's service plugins (dokku-postgres, dokku-redis, ...) link the app's containers to theirs:
`--link <container>:<alias>` in the deploy's docker args. On Docker's default bridge the alias
resolves; on a user-defined network the engine (20.10) resolves it only once the linked
container is on that network too. `post-container-create` connects each linked container to
the network the app's container was created on, with the link's alias as a network alias: a
name that needs no link, the way off links (Docker 29 turned their variables off, Docker 30 is
to remove them from the default bridge).
"""

from __future__ import annotations

from network_plugin import docker_engine
from network_plugin.attach import connect, existing_network, is_on
from network_plugin.docker_engine import ContainerGone
from network_plugin.output import clip, warn
from network_plugin.validation import CONTAINER_MODE, is_user_defined_network
from network_plugin.warm_protocol import is_ref


def joins_networks(mode: str) -> bool:
    """The engine connects a container of network `mode` to networks: not one on the host's
    stack, on none, or on another container's."""
    return mode not in ("host", "none") and not mode.startswith(CONTAINER_MODE)


def links_of(container: dict) -> tuple[str, list[str]]:
    """The user-defined network the inspected `container` was created on ('' for Docker's own),
    and its links there (`<container>[:<alias>]`): on such a network the engine keeps them on
    the endpoint, not in `HostConfig.Links`."""
    network = (container.get("HostConfig") or {}).get("NetworkMode") or ""
    if not is_user_defined_network(network):
        return "", []
    endpoint = ((container.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
    return network, endpoint.get("Links") or []


def connect_linked(container: dict) -> None:
    """Each container the inspected app `container` links to joins the user-defined network it
    was created on, the link's alias a network alias of it, unless it is on that network already.

    One already on it without the alias is left alone: its endpoint's aliases cannot change
    without a disconnect, which would cut its connections with every other container of the
    network, and the link itself resolves the alias for the app's containers once the linked
    container is on the network. A linked container that is gone, or that cannot join a network
    (another's or the host's stack), is one warning: the app's container goes on without it.
    """
    network_name, links = links_of(container)
    network = None  # looked up once, and only when a linked container is to join it
    for link in links:
        name, _, alias = link.partition(":")
        alias = alias or name
        # The engine keeps a user-defined network's links unchecked: never put one in a URL as is.
        if not (is_ref(name) and is_ref(alias)):
            warn(
                f"Ignoring the link {clip(link)} of container {container['Id'][:12]}: not <container>:<alias>"
            )
            continue
        try:
            linked = docker_engine.require_container(name)
            mode = (linked.get("HostConfig") or {}).get("NetworkMode") or ""
            if not joins_networks(mode):
                warn(
                    f"Container {name} linked as {alias} cannot join network {network_name}:"
                    f" its network mode is {clip(mode)}"
                )
                continue
            if is_on(linked, network_name):
                continue
            network = network or existing_network(docker_engine.network_ids([network_name]), network_name)
            connect(linked, network, [alias])
        except ContainerGone:  # before the inspect, or between it and the connect
            warn(
                f"Container {name} linked as {alias} does not exist: not connected to network {network_name}"
            )
