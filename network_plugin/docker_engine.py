"""The Docker engine, through the docker SDK's low-level API over its socket.

Imported only by the code paths that talk to the engine: the SDK (and
requests under it) cost ~100 ms to import. Calls are batched: one container
listing answers for every container a rebuild needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from network_plugin.error_handler import EngineUnreachable, PluginError

APP_LABEL = "com.dokku.app-name"
PROCESS_TYPE_LABEL = "com.dokku.process-type"
CONTAINER_TYPE_LABEL = "com.dokku.container-type"
NETWORK_NAME_LABEL = "com.dokku.network-name"

_client: docker.APIClient | None = None


class ContainerGone(PluginError):
    """A container that does not exist (any more): removed by a concurrent deploy or by hand."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"Container {container_id[:12]} does not exist")


class NetworkGone(PluginError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Network {name} does not exist")


class EngineClient(docker.APIClient):
    """The SDK's client, verifying a TLS engine with DOCKER_CERT_PATH's CA only.

    requests puts a host-wide REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in place of a session's own CA,
    which fails every call to an engine whose certificate that bundle does not sign.
    """

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings


def api() -> docker.APIClient:
    """The engine's API client (DOCKER_HOST or the local socket), made once per process."""
    global _client  # noqa: PLW0603 - one connection pool per process
    if _client is None:
        try:
            _client = EngineClient(**docker.utils.kwargs_from_env())
        except docker.errors.DockerException as error:
            raise EngineUnreachable(error) from error
    return _client


@dataclass(frozen=True)
class ContainerState:
    """What a rebuild or an attach needs to know of one container, from one listing."""

    id: str
    name: str
    running: bool
    network_mode: str
    labels: dict[str, str]
    networks: dict[str, str]  # network name -> IP address ('' when none)

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
    )


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
    except docker.errors.NotFound:
        return None


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


def inspect_network(name: str) -> dict | None:
    found = networks_by_name([name])
    if name not in found:
        return None
    return api().inspect_network(found[name]["Id"])
