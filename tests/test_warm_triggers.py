"""Engine triggers answered warm by the running `network:watch` (docs/reference.md: Triggers
answered warm): the same stdout, stderr, exit code, files and engine state as without it, and
every failure of the warm path a silent fall back to the cold one.

Each comparison runs the trigger once with no watcher (cold), sets the host back, then once
with the watcher running; the watcher's count of the engine calls it made for triggers
(`network:watch --status`) shows the warm path was taken.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from network_plugin import properties
from tests.docker_fixtures import DockerResources
from tests.host import DokkuHost
from tests.watcher import RunningWatcher

APP = "node-js-app"
WARM_FOLDER = "var-lib-dokku/data/network/watch"
CALLS = re.compile(r"warm by the watcher \(pid \d+\) on \S+: (\d+) engine calls so far$")


def warm_calls(dokku: DokkuHost) -> int:
    """The engine calls the running watcher made for triggers, by `network:watch --status`."""
    result = dokku.command("watch", "--status")
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    found = CALLS.search(result.stdout.strip())
    assert found, result.stdout
    return int(found.group(1))


def outcome(result: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return result.returncode, result.stdout, result.stderr


def networks_of(resources: DockerResources, container_id: str) -> dict[str, list[str]]:
    """network -> aliases, as `docker inspect` shows them."""
    attrs = resources.client.api.inspect_container(container_id)
    return {
        name: sorted(endpoint.get("Aliases") or [])
        for name, endpoint in attrs["NetworkSettings"]["Networks"].items()
    }


def changes(dokku: DokkuHost, run: Callable[[], subprocess.CompletedProcess[str]]) -> tuple:
    """What `run` printed and exited with, and the host's files it changed (path -> before, after)."""
    before = files(dokku)
    result = run()
    after = files(dokku)
    changed = {path: (before.get(path), after.get(path)) for path in before.keys() | after.keys()}
    return outcome(result), {path: states for path, states in changed.items() if states[0] != states[1]}


def files(dokku: DokkuHost) -> dict[str, tuple[int, int, bytes | None]]:
    """The host's Dokku folders (not the watcher's socket folder, its log, the proxy's recorder)."""
    return {
        path: state
        for path, state in dokku.snapshot().items()
        if path.startswith(("home-dokku", "var-lib-dokku")) and not path.startswith(WARM_FOLDER)
    }


def same_warm_and_cold(
    dokku: DokkuHost,
    watcher: Callable[[], RunningWatcher],
    run: Callable[[], subprocess.CompletedProcess[str]],
    *,
    reset: Callable[[], object],
    engine_state: Callable[[], object] = lambda: None,
    prepare: Callable[[], object] = lambda: None,
) -> tuple[tuple[int, str, str], RunningWatcher]:
    """Run the trigger cold, `reset`, then warm (each right after `prepare`); both print, exit,
    write and leave the engine alike, and the watcher made engine calls for the warm run.
    The outcome, and the watcher."""
    prepare()
    cold, cold_files = changes(dokku, run)
    cold_engine = engine_state()
    reset()
    running = watcher()
    before = warm_calls(dokku)
    prepare()
    warm, warm_files = changes(dokku, run)
    assert warm == cold
    assert warm_files == cold_files
    assert engine_state() == cold_engine
    assert warm_calls(dokku) > before
    return cold, running


def trigger(dokku: DokkuHost, name: str, *args: str, stdin: str | None = None):
    return lambda: dokku.trigger(name, *args, stdin=stdin)


# --- each engine trigger, warm and cold ------------------------------------------------------


@pytest.mark.usefixtures("test_image")
def test_network_get_ipaddr_warm_and_cold(dokku: DokkuHost, docker_resources: DockerResources, watcher):
    root = dokku.create_app(APP)
    container = docker_resources.app_container(APP, app_root=root)
    ip = docker_resources.client.api.inspect_container(container.id)["NetworkSettings"]["IPAddress"]

    answer, _ = same_warm_and_cold(
        dokku, watcher, trigger(dokku, "network-get-ipaddr", APP, "web", container.id), reset=lambda: None
    )

    assert answer == (0, f"{ip}\n", "")


@pytest.mark.usefixtures("test_image")
def test_network_get_ipaddr_of_a_removed_container_fails_alike(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    dokku.create_app(APP)
    container = docker_resources.app_container(APP)
    container.remove(force=True)

    answer, _ = same_warm_and_cold(
        dokku, watcher, trigger(dokku, "network-get-ipaddr", APP, "web", container.id), reset=lambda: None
    )

    assert answer == (1, "", f" !     Container {container.id[:12]} does not exist\n")


def attaching(dokku: DokkuHost, resources: DockerResources, key: str, *, start: bool):
    """An app naming a network in `key`, with a container (named by CONTAINER.web.1)."""
    root = dokku.create_app(APP)
    network = resources.network()
    container = resources.app_container(APP, app_root=root, start=start)
    result = dokku.command("set", APP, key, network.name)
    assert result.returncode == 0, result
    return network, container


@pytest.mark.usefixtures("test_image")
def test_post_container_create_warm_and_cold(dokku: DokkuHost, docker_resources: DockerResources, watcher):
    network, container = attaching(dokku, docker_resources, properties.ATTACH_POST_CREATE, start=False)

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "post-container-create", "app", container.id, APP, "deploy", "web"),
        reset=lambda: network.disconnect(container.id, force=True),
        engine_state=lambda: networks_of(docker_resources, container.id),
    )

    assert answer == (0, "", "")
    hostname = docker_resources.client.api.inspect_container(container.id)["Config"]["Hostname"]
    assert {f"{APP}.web", f"{hostname}.{APP}.web"} <= set(
        networks_of(docker_resources, container.id)[network.name]
    )


@pytest.mark.usefixtures("test_image")
def test_post_container_create_with_a_missing_network_fails_alike(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    network, container = attaching(dokku, docker_resources, properties.ATTACH_POST_CREATE, start=False)
    network.remove()

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "post-container-create", "app", container.id, APP, "deploy", "web"),
        reset=lambda: None,
        engine_state=lambda: networks_of(docker_resources, container.id),
    )

    assert answer == (1, "", f" !     Network {network.name} does not exist\n")


@pytest.mark.usefixtures("test_image")
def test_core_post_deploy_warm_and_cold(dokku: DokkuHost, docker_resources: DockerResources, watcher):
    network, container = attaching(dokku, docker_resources, properties.ATTACH_POST_DEPLOY, start=True)

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "core-post-deploy", APP),
        reset=lambda: network.disconnect(container.id, force=True),
        engine_state=lambda: networks_of(docker_resources, container.id),
    )

    assert answer == (0, f"-----> Associating app with network {network.name}\n", "")
    assert network.name in networks_of(docker_resources, container.id)


def remove_ip_files(root: Path) -> None:
    for path in root.glob("IP.*"):
        path.unlink()


@pytest.mark.usefixtures("test_image")
def test_network_build_config_warm_and_cold(dokku: DokkuHost, docker_resources: DockerResources, watcher):
    root = dokku.create_app(APP)
    for index in (1, 2):
        docker_resources.app_container(APP, "web", index, app_root=root)

    assert dokku.command("rebuild", APP).returncode == 0  # the app's lock, as after its deploy

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "network-build-config", APP),
        reset=lambda: None,
        prepare=lambda: remove_ip_files(root),  # the watcher's first reconcile writes them too
    )

    assert answer[0] == 0
    assert answer[1].startswith(f"-----> Ensuring network configuration is in sync for {APP}\n")
    assert sorted(path.name for path in root.glob("IP.*")) == ["IP.web.1", "IP.web.2"]


@pytest.mark.parametrize(
    ("name", "args", "key"),
    [
        ("docker-args-process-deploy", ("dockerfile", "latest", "web"), properties.ATTACH_POST_DEPLOY),
        ("docker-args-process-build", ("herokuish",), properties.INITIAL_NETWORK),
        ("docker-args-process-run", ("dockerfile", "latest"), properties.ATTACH_POST_CREATE),
    ],
)
def test_docker_args_recreate_a_recorded_network_warm_and_cold(  # noqa: PLR0917 - fixtures
    dokku: DokkuHost, docker_client, network_name: str, watcher, name: str, args: tuple[str, ...], key: str
):
    dokku.create_app(APP)
    created = dokku.command("create", network_name)
    assert created.returncode == 0, created
    assert dokku.command("set", APP, key, network_name).returncode == 0

    def remove() -> None:
        docker_client.networks.get(network_name).remove()

    def network() -> tuple[str, dict, bool]:
        attrs = docker_client.api.inspect_network(network_name)
        return attrs["Driver"], attrs["Labels"], attrs["Attachable"]

    remove()
    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, name, APP, *args, stdin="--label x"),
        reset=remove,
        engine_state=network,
    )

    network_arg = f" --network={network_name} " if key == properties.INITIAL_NETWORK else ""
    assert answer == (0, f"{network_arg}--label x", f"-----> Recreating network {network_name}\n")


@pytest.mark.usefixtures("test_image")
def test_docker_args_of_an_app_naming_a_network_that_exists_warm_and_cold(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    attaching(dokku, docker_resources, properties.ATTACH_POST_DEPLOY, start=False)

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "docker-args-process-deploy", APP, "dockerfile", "latest", "web", stdin="--label x"),
        reset=lambda: None,
    )

    assert answer == (0, "--label x", "")
