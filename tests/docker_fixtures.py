"""The real Docker engine for tests and the demo: a busybox image built from nothing,
networks and containers labelled the way Dokku labels them, and their cleanup.

Without an engine the Docker tests skip, except under CI=true where that is a
failure: CI must never pass by skipping them.
"""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network

IMAGE = "dokku-network-test/busybox:latest"
BUSYBOX = Path(os.environ.get("NETWORK_TEST_BUSYBOX", "/bin/busybox"))
# Everything tests, benchmarks or the demo create carry this label, valued with the pid of the
# process that made it: each run removes its own, and leftovers of runs that died, never those
# of a run still going on the same engine.
RESOURCE_LABEL = "com.dokku.network-test"
OWNER = str(os.getpid())
# What a service container (`DockerResources.service`) answers over HTTP, and on which port.
SERVICE_PAGE = "served by the linked service"
SERVICE_PORT = 8000
DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


def engine_client() -> docker.DockerClient:
    """A client of the local engine, or docker.errors.DockerException when none answers."""
    client = docker.from_env(timeout=60)
    client.ping()
    return client


def build_test_image(client: docker.DockerClient) -> str:
    """Build IMAGE from scratch with the host's static busybox: no registry is needed."""
    if not BUSYBOX.is_file():
        raise FileNotFoundError(f"{BUSYBOX} is missing: install Debian's busybox-static")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for name, data, mode in (("Dockerfile", DOCKERFILE, 0o644), ("busybox", BUSYBOX.read_bytes(), 0o755)):
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), mode
            archive.addfile(member, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=IMAGE, rm=True)
    return IMAGE


def exec_in(container: Container, command: list[str]) -> tuple[int, str]:
    """Run `command` inside a running container: exit code and combined output."""
    result = container.exec_run(command)
    return result.exit_code, result.output.decode(errors="replace")


def _process_is_gone(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return not pid.isdigit()
    return False


# Apps whose own network (app-network) a test makes are named `ant<pid>-<n>`: their networks,
# `dokku-app-ant<pid>-<n>`, are swept by that pid like everything labelled.
APP_NETWORK_PREFIX = "dokku-app-ant"


def app_name() -> str:
    """A name for an app whose own network a test makes: never one a parallel run uses."""
    return f"ant{OWNER}-{uuid.uuid4().hex[:6]}"


def _app_network_owner(name: str) -> str:
    return name[len(APP_NETWORK_PREFIX) :].partition("-")[0] if name.startswith(APP_NETWORK_PREFIX) else ""


def sweep(client: docker.DockerClient, owners: Callable[[str], bool] = OWNER.__eq__) -> None:
    """Remove the containers, then the networks, made by the owners `owners` accepts (this process)."""
    # The low-level listing: the SDK's `containers.list` inspects each container it lists, and
    # fails when another run on the same engine removes one of its own in between.
    for summary in client.api.containers(all=True, filters={"label": RESOURCE_LABEL}):
        if owners((summary.get("Labels") or {}).get(RESOURCE_LABEL, "")):
            try:
                client.api.remove_container(summary["Id"], force=True)
            except docker.errors.NotFound:
                pass  # gone meanwhile
    for network in client.networks.list(filters={"label": RESOURCE_LABEL}):
        if owners((network.attrs.get("Labels") or {}).get(RESOURCE_LABEL, "")):
            network.remove()
    for summary in client.api.networks(filters={"name": APP_NETWORK_PREFIX}):
        owner = _app_network_owner(summary["Name"])
        if owner and owners(owner):
            for container in client.api.inspect_network(summary["Id"]).get("Containers") or {}:
                client.api.disconnect_container_from_network(container, summary["Id"], force=True)
            try:
                client.api.remove_network(summary["Id"])
            except docker.errors.NotFound:
                pass  # removed meanwhile (post-delete)


def sweep_abandoned(client: docker.DockerClient) -> None:
    """Remove what runs that died (killed, crashed) left behind."""
    sweep(client, _process_is_gone)


class DockerResources:
    """Networks and Dokku-labelled app containers, all removed by `sweep`."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.run_id = uuid.uuid4().hex[:8]

    def network(self, name: str | None = None) -> Network:
        return self.client.networks.create(
            name or f"dnt-{uuid.uuid4().hex[:10]}",
            driver="bridge",
            attachable=True,
            labels={RESOURCE_LABEL: OWNER},
        )

    def app_container(
        self,
        app: str,
        proc: str = "web",
        index: int = 1,
        *,
        app_root: Path | None = None,
        network: str | None = None,
        hostname: str | None = None,
        start: bool = True,
        command: list[str] | None = None,
        healthcheck: dict | None = None,
    ) -> Container:
        """A container as Dokku's scheduler creates it; its id lands in `CONTAINER.<proc>.<index>`."""
        container = self.client.containers.create(
            IMAGE,
            command or ["sleep", "3600"],
            name=f"{app}.{proc}.{index}.{self.run_id}.{uuid.uuid4().hex[:4]}",
            hostname=hostname,
            network_mode=network,
            healthcheck=healthcheck,
            labels={
                "com.dokku.app-name": app,
                "com.dokku.process-type": proc,
                "com.dokku.container-type": "deploy",
                RESOURCE_LABEL: OWNER,
            },
        )
        if app_root is not None:
            (app_root / f"CONTAINER.{proc}.{index}").write_text(f"{container.id}\n")
        if start:
            container.start()
        return container

    def service(self, network: str | None = None) -> Container:
        """A running service as Dokku's service plugins run one (`dokku.postgres.<name>`, on the
        default bridge unless `network`), answering HTTP on SERVICE_PORT with SERVICE_PAGE."""
        serve = (
            f"mkdir /www && echo {SERVICE_PAGE} >/www/index.html && exec httpd -f -p {SERVICE_PORT} -h /www"
        )
        return self.client.containers.run(
            IMAGE,
            ["sh", "-c", serve],
            name=f"dokku.postgres.dnt-{OWNER}-{uuid.uuid4().hex[:8]}",
            network_mode=network,
            labels={RESOURCE_LABEL: OWNER},
            detach=True,
        )

    def created_by_scheduler(self, app: str, network: str, links: list[str], proc: str = "web") -> str:
        """The id of an app container created as Dokku's scheduler creates it, `docker container
        create` with Dokku's labels and the deploy's `--network` and the service plugins'
        `--link`s, sent as the CLI sends them: the links in the host config and on the network's
        endpoint (where a user-defined network keeps them; the API's host config alone drops
        them). Through the SDK, as the Debian roots of tools/platform-test have no CLI."""
        labels = {
            "com.dokku.app-name": app,
            "com.dokku.process-type": proc,
            "com.dokku.container-type": "deploy",
            RESOURCE_LABEL: OWNER,
        }
        pairs = [tuple(link.rsplit(":", 1)) for link in links]
        api = self.client.api
        created = api.create_container(
            IMAGE,
            ["sleep", "3600"],
            name=f"{app}.{proc}.{self.run_id}.{uuid.uuid4().hex[:4]}",
            labels=labels,
            host_config=api.create_host_config(network_mode=network, links=pairs),
            networking_config=api.create_networking_config(
                {network: api.create_endpoint_config(links=pairs)}
            ),
        )
        return created["Id"]
