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
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.models.containers import Container
from docker.models.networks import Network

IMAGE = "dokku-network-test/busybox:latest"
BUSYBOX = Path(os.environ.get("NETWORK_TEST_BUSYBOX", "/bin/busybox"))
# Everything tests or the demo create carries this label, so leftovers of a killed run can be swept.
RESOURCE_LABEL = "com.dokku.network-test"
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
    client.images.build(
        fileobj=context, custom_context=True, tag=IMAGE, rm=True, labels={RESOURCE_LABEL: "1"}
    )
    return IMAGE


def exec_in(container: Container, command: list[str]) -> tuple[int, str]:
    """Run `command` inside a running container: exit code and combined output."""
    result = container.exec_run(command)
    return result.exit_code, result.output.decode(errors="replace")


def sweep(client: docker.DockerClient) -> None:
    """Remove every container, then every network, that a test or demo run created."""
    for container in client.containers.list(all=True, filters={"label": RESOURCE_LABEL}):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": RESOURCE_LABEL}):
        network.remove()


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
            labels={RESOURCE_LABEL: "1"},
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
    ) -> Container:
        """A container as Dokku's scheduler creates it; its id lands in `CONTAINER.<proc>.<index>`."""
        container = self.client.containers.create(
            IMAGE,
            ["sleep", "3600"],
            name=f"{app}.{proc}.{index}.{self.run_id}.{uuid.uuid4().hex[:4]}",
            hostname=hostname,
            network_mode=network,
            labels={
                "com.dokku.app-name": app,
                "com.dokku.process-type": proc,
                "com.dokku.container-type": "deploy",
                RESOURCE_LABEL: "1",
            },
        )
        if app_root is not None:
            (app_root / f"CONTAINER.{proc}.{index}").write_text(f"{container.id}\n")
        if start:
            container.start()
        return container


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = engine_client()
    except docker.errors.DockerException as error:
        reason = f"no Docker engine answers ({error}); start one with `tools/docker-engine start`"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs the Docker tests to run: {reason}")
        pytest.skip(reason)
    sweep(client)
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_image(docker_client: docker.DockerClient) -> str:
    return build_test_image(docker_client)


@pytest.fixture
def docker_resources(docker_client: docker.DockerClient) -> Iterator[DockerResources]:
    resources = DockerResources(docker_client)
    yield resources
    sweep(docker_client)
