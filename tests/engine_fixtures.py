"""The Docker tests' fixtures: the engine's client (a skip, or under CI=true a failure, when none
answers), the busybox test image, the resources a test makes (swept after it), a network name.
The helpers they use live in `docker_fixtures`, which imports no pytest: tools/demo runs them
in the plugin's own environment."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from tests.docker_fixtures import DockerResources, build_test_image, engine_client, sweep, sweep_abandoned


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = engine_client()
    except docker.errors.DockerException as error:
        reason = f"no Docker engine answers ({error}); start one with `tools/docker-engine start`"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs the Docker tests to run: {reason}")
        pytest.skip(reason)
    sweep_abandoned(client)
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


@pytest.fixture
def network_name(docker_client: docker.DockerClient) -> Iterator[str]:
    """A fresh network name for the plugin to create; the network is removed after the test."""
    name = f"dnt-{uuid.uuid4().hex[:10]}"
    yield name
    for network in docker_client.networks.list(names=[name]):
        network.remove()
