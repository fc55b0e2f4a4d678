"""The Docker engine, through the docker SDK's low-level API over its socket.

Imported only by the code paths that talk to the engine. The SDK (and requests under it) cost
~100 ms to import: this module imports neither, so that a trigger answered warm by
`network:watch` (`network_plugin.warm`) never loads them. Calls are batched: one container
listing answers for every container a rebuild needs.
"""

from __future__ import annotations

from network_plugin.error_handler import EngineAPIError, PluginError

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import Any

APP_LABEL = "com.dokku.app-name"
PROCESS_TYPE_LABEL = "com.dokku.process-type"
CONTAINER_TYPE_LABEL = "com.dokku.container-type"
NETWORK_NAME_LABEL = "com.dokku.network-name"
NOT_FOUND = 404
HEALTH_STATES = ("starting", "healthy", "unhealthy")
_client: object = None  # the SDK's client, or the watcher's stand-in for it (`warm.WarmEngine`)


class ContainerGone(PluginError):
    """A container that does not exist (any more): removed by a concurrent deploy or by hand."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"Container {container_id[:12]} does not exist")


class NetworkGone(PluginError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Network {name} does not exist")


def cold() -> Any:
    """The SDK's client of the engine (DOCKER_HOST or the local socket), made once per process;
    the engine's error answers raise `EngineAPIError`."""
    global _client  # noqa: PLW0603 - one connection pool per process
    from network_plugin import use_site_packages

    use_site_packages()
    from network_plugin.engine_client import connect

    _client = connect()
    return _client


def api() -> Any:
    """The engine's API client: in a trigger, the running watcher's stand-in when it may ask it
    (the same calls, made by the watcher's client), else the SDK's own."""
    if _client is not None:
        return _client
    from network_plugin import warm

    if warm.asks_watcher():
        engine = warm.engine(cold)
        if engine is not None:
            use(engine)
            return engine
    return cold()


def use(client: object) -> None:
    """Make `client` the one `api()` answers with (the warm stand-in, or the cold one it falls back to)."""
    global _client  # noqa: PLW0603 - one client per process
    _client = client


class ContainerState:
    """What a rebuild or an attach needs to know of one container, from one listing.

    A plain class: `dataclasses` costs a warm trigger ~10 ms of imports.
    """

    __slots__ = ("health", "id", "labels", "name", "network_mode", "networks", "running")

    def __init__(
        self,
        *,
        id: str,
        name: str,
        running: bool,
        network_mode: str,
        labels: dict[str, str],
        networks: dict[str, str],  # network name -> IP address ('' when none)
        health: str = "",  # Docker's health status: '' without a healthcheck, else starting/healthy/unhealthy
    ) -> None:
        self.id = id
        self.name = name
        self.running = running
        self.network_mode = network_mode
        self.labels = labels
        self.networks = networks
        self.health = health

    @property
    def app(self) -> str:
        return self.labels.get(APP_LABEL, "")

    @property
    def process_type(self) -> str:
        return self.labels.get(PROCESS_TYPE_LABEL, "")


def _state(summary: dict) -> ContainerState:
    settings = (summary.get("NetworkSettings") or {}).get("Networks") or {}
    names = summary.get("Names") or [""]
    return ContainerState(
        id=summary["Id"],
        name=names[0].lstrip("/"),
        running=summary.get("State") == "running",
        network_mode=(summary.get("HostConfig") or {}).get("NetworkMode", ""),
        labels=summary.get("Labels") or {},
        networks={name: (endpoint or {}).get("IPAddress") or "" for name, endpoint in settings.items()},
        health=_health(summary),
    )


def _health(summary: dict) -> str:
    """A listed container's health: the summary's `Health` (API 1.52 on), else what its `Status`
    ends with ("Up 2 minutes (unhealthy)", "(health: starting)")."""
    health = summary.get("Health")
    if isinstance(health, dict) and isinstance(health.get("Status"), str):
        return health["Status"]
    status = summary.get("Status")
    if not isinstance(status, str) or not status.endswith(")"):
        return ""
    shown = status[status.rfind("(") + 1 : -1]
    shown = shown[len("health: ") :] if shown.startswith("health: ") else shown
    return shown if shown in HEALTH_STATES else ""  # "(Paused)" is no health


def list_containers(filters: dict[str, object]) -> list[ContainerState]:
    return [_state(summary) for summary in api().containers(all=True, filters=filters)]


def containers_by_id(container_ids: list[str]) -> dict[str, ContainerState]:
    """State of every given container (full or short ids) that still exists, keyed by the id asked for.

    One listing call whatever the number: 200 full ids make a 13 KB query, far below the
    engine's 1 MB limit for a request's head.
    """
    wanted = sorted(set(container_ids))
    if not wanted:
        return {}
    found: dict[str, ContainerState] = {}
    for state in list_containers({"id": wanted}):
        for container_id in wanted:
            if state.id.startswith(container_id):
                found[container_id] = state
    return found


def dokku_containers(apps: list[str] | None = None) -> dict[str, ContainerState]:
    """Every container Dokku labelled for `apps` (all of Dokku's for several or None), keyed by full id."""
    label = f"{APP_LABEL}={apps[0]}" if apps and len(apps) == 1 else APP_LABEL
    return {state.id: state for state in list_containers({"label": label})}


def is_deploy_container(labels: dict[str, str]) -> bool:
    """Not a one-off `dokku run` container (those carry container-type `run`)."""
    return labels.get(CONTAINER_TYPE_LABEL, "deploy") == "deploy"


def inspect_container(container_id: str) -> dict | None:
    try:
        return api().inspect_container(container_id)
    except EngineAPIError as error:
        if error.status_code == NOT_FOUND:
            return None
        raise


def require_container(container_id: str) -> dict:
    container = inspect_container(container_id)
    if container is None:
        raise ContainerGone(container_id)
    return container


def swarm() -> dict:
    """The engine's place in a Docker Swarm (`Swarm` of `docker info`)."""
    return api().info().get("Swarm") or {}


def is_swarm_worker() -> bool:
    """A worker's engine lists an attachable overlay network only while one of its containers
    uses it, yet connects containers to it by name."""
    node = swarm()
    return node.get("LocalNodeState") == "active" and not node.get("ControlAvailable")


def networks_by_name(names: list[str]) -> dict[str, dict]:
    """The networks among `names` that exist (exact names; Docker's filter matches substrings)."""
    if not names:
        return {}
    listed = api().networks(names=list(names))
    return {network["Name"]: network for network in listed if network["Name"] in names}


def network_ids(names: list[str]) -> dict[str, str]:
    """name -> id of the networks among `names` that exist. A warm trigger takes them from the
    watcher's view of the networks when it is current and knows every one (no engine call)."""
    known = getattr(api(), "known_network_ids", None)  # the SDK's own client has none
    ids = known(names) if known is not None and names else None
    if ids is not None:
        return ids
    return {name: network["Id"] for name, network in networks_by_name(names).items()}


def inspect_network(name: str) -> dict | None:
    found = networks_by_name([name])
    if name not in found:
        return None
    return api().inspect_network(found[name]["Id"])
