"""Attaching app containers to networks, at container creation or after a deploy
(docs/reference.md: Attaching containers to networks).

Attaching is idempotent: a container already on the network is left alone,
so rescaling or running a trigger twice never fails with "endpoint already exists".
"""

from __future__ import annotations

from network_plugin import docker_engine, properties
from network_plugin.docker_engine import NOT_FOUND, ContainerGone, ContainerState, NetworkGone
from network_plugin.error_handler import EngineAPIError
from network_plugin.output import info, warn

DEPLOY_PHASE = "deploy"


def configured_networks(app: str, key: str) -> list[str]:
    """Networks of the app's computed `attach-*` value, read as every trigger reads them."""
    return [name for _, name in properties.stored_networks(app, (key,))]


def existing_network(found: dict[str, str], name: str) -> dict:
    """The network (`Name`, `Id`) of `found` (`docker_engine.network_ids`); on a swarm worker, an
    unlisted one by name (empty `Id`): a worker's engine lists an attachable overlay network
    only while one of its containers uses it, yet connects containers to it, and says so when
    no such network exists."""
    if name in found:
        return {"Name": name, "Id": found[name]}
    if docker_engine.is_swarm_worker():
        return {"Name": name, "Id": ""}
    raise NetworkGone(name)


def aliases(app: str, process_type: str, hostname: str) -> list[str]:
    """`<app>.<proc>` and `<hostname>.<app>.<proc>`, each with `.<tld>` when a tld is set."""
    names = [f"{app}.{process_type}", f"{hostname}.{app}.{process_type}"]
    tld = properties.computed(app, properties.TLD)
    return [f"{name}.{tld}" for name in names] if tld else names


def attach(container: dict, network: dict, app: str, phase: str, process_type: str) -> bool:
    """Connect the inspected `container` to `network` unless it already is, in the deploy phase
    with the app's aliases; True when connected now.

    The caller inspects each container once, whatever the number of networks: joining
    one network does not change whether the container is on another.
    """
    if is_on(container, network["Name"]):
        return False
    process_type = process_type or (container["Config"].get("Labels") or {}).get(
        docker_engine.PROCESS_TYPE_LABEL, ""
    )
    names = []
    if phase == DEPLOY_PHASE and process_type:
        names = aliases(app, process_type, container["Config"].get("Hostname") or container["Id"][:12])
    return connect(container, network, names)


def is_on(container: dict, network_name: str) -> bool:
    """The inspected `container` has an endpoint on the network, whatever its aliases."""
    return network_name in ((container.get("NetworkSettings") or {}).get("Networks") or {})


def connect(container: dict, network: dict, names: list[str]) -> bool:
    """Connect the inspected `container`, not on `network` when inspected, to it with the aliases
    `names`; True when connected now, False when a concurrent trigger did."""
    container_id = container["Id"]
    target = network["Id"] or network["Name"]
    try:
        docker_engine.api().connect_container_to_network(container_id, target, aliases=names or None)
    except EngineAPIError as error:
        explanation = error.explanation
        if "already exists" in explanation:
            return False  # attached meanwhile by a concurrent trigger
        # Removed between the lookup and the connect (a worker's manager answers NotFound
        # through a 500): say which of the two went away.
        if error.status_code == NOT_FOUND or "code = NotFound" in explanation:
            docker_engine.require_container(container_id)
            raise NetworkGone(network["Name"]) from error
        raise
    running = (container.get("State") or {}).get("Running")
    if (
        not running
        and network["Id"]  # unlisted on a worker: its engine checks the name when the container starts
        and docker_engine.networks_by_name([network["Name"]]).get(network["Name"], {}).get("Id")
        != network["Id"]
    ):
        # The engine does not check networks when connecting a created container: one removed
        # since the lookup would only make its start fail later, so undo the connect now.
        docker_engine.api().disconnect_container_from_network(container_id, network["Id"], force=True)
        raise NetworkGone(network["Name"])
    return True


def attach_after_create(container_id: str, app: str, phase: str, process_type: str) -> dict:
    """`post-container-create`: every network of computed attach-post-create. The container's
    inspect (made once, before attaching), which the trigger's links need too."""
    names = configured_networks(app, properties.ATTACH_POST_CREATE)
    found = docker_engine.network_ids(names)
    container = None
    for name in names:
        network = existing_network(found, name)
        container = container or docker_engine.require_container(container_id)
        attach(container, network, app, phase, process_type)
    return container or docker_engine.require_container(container_id)


def attach_after_deploy(app: str) -> None:
    """`core-post-deploy`: the app's deployed containers join every attach-post-deploy network."""
    names = configured_networks(app, properties.ATTACH_POST_DEPLOY)
    if not names:
        return
    found = docker_engine.network_ids(names)
    running = running_deployed(app)
    inspected: dict[str, dict] = {}  # one inspect per container, whatever the number of networks
    for name in names:
        info(f"Associating app with network {name}")
        attach_running(running, existing_network(found, name), app, inspected)


def running_deployed(app: str) -> list[tuple[ContainerState, str]]:
    """(state, process type) of the app's deployed containers that run, from one listing.

    Deployed means named by a `CONTAINER.<proc>.<n>` file and running: Dokku calls
    core-post-deploy before it stops the retiring containers, which must not get the
    `<app>.<proc>` aliases.
    """
    from network_plugin.network_config import deployed_containers

    deployed = deployed_containers(app)
    states = docker_engine.containers_by_id([container_id for _, _, container_id in deployed])
    return [
        (states[container_id], process_type)
        for process_type, _, container_id in deployed
        if container_id in states and states[container_id].running
    ]


def attach_running(
    running: list[tuple[ContainerState, str]], network: dict, app: str, inspected: dict[str, dict]
) -> int:
    """Attach each of `running_deployed` to `network` with its aliases; how many were connected now.

    `inspected` keeps each container's inspect for the next network.
    """
    connected = 0
    for state, process_type in running:
        try:
            if state.id not in inspected:
                inspected[state.id] = docker_engine.require_container(state.id)
            connected += attach(
                inspected[state.id], network, app, DEPLOY_PHASE, state.process_type or process_type
            )
        except ContainerGone as gone:
            # Retired by a concurrent deploy or by hand: nothing left to attach.
            warn(f"{gone.message}, skipped")
    return connected
