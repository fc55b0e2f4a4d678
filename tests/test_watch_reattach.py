"""`network:watch` and networks that come back (docs/reference.md: Networks that come back):
a network created (again) reattaches the running containers of the apps naming it.

The loop's tests run on the fake engine; the engine tests run the watcher as the service does
and wait for what `docker inspect` shows, the IP files and the proxy command's calls.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from network_plugin import properties
from network_plugin.engine_events import DeployContainers, created_network, parse_event
from network_plugin.reattach import apps_naming
from network_plugin.watch_schedule import QUIET_SECONDS
from tests.docker_fixtures import OWNER, RESOURCE_LABEL, DockerResources
from tests.fake_engine import LoopUnderTest, container_event, deploy_labels, network_created
from tests.host import DokkuHost
from tests.polling import wait_for

# --- without the engine ---------------------------------------------------------------------


def test_a_network_create_event_names_the_network_and_moves_no_app():
    containers = DeployContainers()
    event = parse_event(network_created("backend-net", "4f1c9e"))
    assert containers.apply(event) is None
    assert created_network(event) == "backend-net"


@pytest.mark.parametrize(
    "event",
    [
        container_event("create", deploy_labels("node-js-app")),  # a container's create
        {"Type": "network", "Action": "connect", "Actor": {"ID": "n1", "Attributes": {"name": "x"}}},
        network_created("bad;name"),  # no app can name it
    ],
    ids=["container-create", "network-connect", "not-a-network-name"],
)
def test_other_events_name_no_network_created(event):
    parsed = parse_event(event)
    assert DeployContainers().apply(parsed) is None
    assert created_network(parsed) is None


def test_a_network_created_without_a_name_is_refused():
    event = {"Type": "network", "Action": "create", "Actor": {"ID": "n1", "Attributes": {}}}
    with pytest.raises(ValueError, match="a network create event without a name"):
        parse_event(event)


def synced(under_test: LoopUnderTest) -> LoopUnderTest:
    under_test.start()
    under_test.wait_until(lambda: under_test.watcher.schedule.synced == 1, "the first reconcile")
    return under_test


MARKER = "marker-app"


def created(under_test: LoopUnderTest, *names: str) -> None:
    """The create events of `names`, then of a network only `MARKER` names: once its job waits,
    every event before it was handled. Then the clock moves on so that their jobs are due."""
    under_test.jobs.naming["marker-net"] = [MARKER]
    under_test.engine.stream().put(*(network_created(name) for name in [*names, "marker-net"]))
    waiting = under_test.watcher.schedule.created_networks
    under_test.wait_until(lambda: MARKER in waiting, f"the creates of {names}")
    under_test.advance(QUIET_SECONDS)


def reattached(under_test: LoopUnderTest) -> list[tuple[str, list[str]]]:
    return sorted(job for job in under_test.jobs.reattaches if job[0] != MARKER)


def idle(under_test: LoopUnderTest) -> None:
    schedule = under_test.watcher.schedule
    under_test.wait_until(
        lambda: not schedule.busy() and not schedule.created.pending and not schedule.moved.pending, "idle"
    )


def test_a_network_created_for_10_apps_makes_one_job_per_app_and_none_for_the_others(loop):
    naming = [f"app-{n}" for n in range(10)]
    under_test = loop([*naming, "other-app"])
    jobs = under_test.jobs
    jobs.naming = {"backend-net": naming, "cache-net": naming[:3]}
    synced(under_test)

    # Two networks made together (an import, a restore): one job per app for both.
    created(under_test, "backend-net", "cache-net", "backend-net")
    idle(under_test)

    assert reattached(under_test) == sorted(
        [(app, ["backend-net", "cache-net"]) for app in naming[:3]]
        + [(app, ["backend-net"]) for app in naming[3:]]
    )
    # None of them is an initial network: no rebuild beyond the reconcile's.
    assert sorted(jobs.rebuilds) == sorted((app, True) for app in [*naming, "other-app"])
    assert under_test.stop() == 0


def test_an_initial_network_created_again_rebuilds_the_app_and_refreshes_its_proxy(loop):
    under_test = loop(["front-app", "side-app"])
    jobs = under_test.jobs
    jobs.naming = {"front-net": ["front-app", "side-app"]}
    jobs.initial = {"front-app": "front-net"}
    synced(under_test)

    jobs.changed = {"front-app"}  # the containers' addresses on the new network
    created(under_test, "front-net")
    pending = under_test.watcher.schedule.moved.pending
    under_test.wait_until(lambda: "front-app" in pending, "the rebuild asked by the reattach")
    under_test.advance(QUIET_SECONDS)
    under_test.wait_until(lambda: jobs.refreshes == ["front-app"], "its proxy refresh")
    idle(under_test)

    assert reattached(under_test) == [("front-app", ["front-net"]), ("side-app", ["front-net"])]
    assert jobs.rebuilds[-1] == ("front-app", False)
    assert jobs.rebuilt("side-app") == 1  # the reconcile's only
    assert under_test.stop() == 0


def test_an_app_whose_reattach_fails_is_one_line_and_the_others_go_on(loop, capsys):
    under_test = loop(["app-a", "app-b", "app-c"])
    jobs = under_test.jobs
    jobs.naming = {"backend-net": ["app-a", "app-b", "app-c"]}
    synced(under_test)

    jobs.failing = {"app-b": RuntimeError("the engine said no")}
    created(under_test, "backend-net")
    idle(under_test)

    assert [app for app, _ in reattached(under_test)] == ["app-a", "app-b", "app-c"]
    assert under_test.stop() == 0
    assert capsys.readouterr().err.splitlines() == [
        " !     Unable to attach app-b to its networks again:"
        " Unexpected error: RuntimeError: the engine said no"
    ]


def test_a_reconcile_puts_back_containers_missing_from_their_attach_networks_after_it_rebuilds(loop):
    under_test = loop(["app-a", "app-b"])
    jobs = under_test.jobs
    jobs.missing = {"app-a": ["backend-net", "cache-net"]}
    synced(under_test)
    waiting = under_test.watcher.schedule.created_networks
    under_test.wait_until(lambda: "app-a" in waiting, "the reattach the reconcile asked for")

    under_test.advance(QUIET_SECONDS)
    idle(under_test)

    assert jobs.reattaches == [("app-a", ["backend-net", "cache-net"])]
    assert sorted(jobs.rebuilds) == [("app-a", True), ("app-b", True)]
    assert under_test.stop() == 0


def write_property(app: str, key: str, value: str) -> None:
    path = properties.property_path(app, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_text(value)


def test_the_apps_naming_a_network_by_their_computed_properties(host_paths, capsys):
    dokku_root, _ = host_paths
    for app in ("by-deploy", "by-create", "by-initial", "by-global", "other", "own-value", "broken"):
        (dokku_root / app).mkdir()
    write_property("by-deploy", properties.ATTACH_POST_DEPLOY, "cache-net,backend-net")
    write_property("by-create", properties.ATTACH_POST_CREATE, "backend-net")
    write_property("by-initial", properties.INITIAL_NETWORK, "backend-net")
    write_property("--global", properties.ATTACH_POST_CREATE, "backend-net")  # every app without one
    for app in ("by-deploy", "by-initial", "other", "own-value", "broken"):
        write_property(app, properties.ATTACH_POST_CREATE, "cache-net")
    write_property("other", properties.ATTACH_POST_DEPLOY, "backend-net-2")
    os.makedirs(properties.property_path("broken", properties.INITIAL_NETWORK))

    assert apps_naming("backend-net") == ["by-create", "by-deploy", "by-global", "by-initial"]
    assert capsys.readouterr().err.splitlines() == [
        " !     Unable to read the network properties of broken: Is a directory:"
        f" {properties.property_path('broken', properties.INITIAL_NETWORK)}"
    ]


# --- on the real engine -------------------------------------------------------------------


needs_engine = pytest.mark.usefixtures("test_image")
TLD = "svc.cluster.local"
# This process's alone: other xdist workers' tests move containers of apps named alike, which
# this module's watchers would take for their app's (and refresh it).
APP = f"reattach-{OWNER}"


def endpoint(container, network: str) -> dict:
    """The container's endpoint on `network` as `docker inspect` shows it ({} when not on it)."""
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"].get(network) or {}


def wanted_aliases(container, app: str = APP) -> set[str]:
    hostname = container.attrs["Config"]["Hostname"]
    return {f"{app}.web.{TLD}", f"{hostname}.{app}.web.{TLD}"}


def free_subnets(client, count: int) -> list[str]:
    """/24 subnets no network of the engine uses, outside the engine's default pools and app-network's."""
    used = {
        config.get("Subnet")
        for network in client.api.networks()
        for config in (network.get("IPAM") or {}).get("Config") or []
    }
    base = int(OWNER) % 200  # another run on the engine starts elsewhere
    return [subnet for n in range(250) if (subnet := f"10.241.{(base + n) % 250}.0/24") not in used][:count]


def make_network(client, name: str, subnet: str):
    import docker.types

    pool = docker.types.IPAMPool(subnet=subnet)
    return client.networks.create(
        name,
        driver="bridge",
        ipam=docker.types.IPAMConfig(pool_configs=[pool]),
        labels={RESOURCE_LABEL: OWNER},
    )


def remove_network(network, container) -> None:
    """What `docker network prune` or a restore does to a network a running container was on."""
    network.disconnect(container, force=True)
    network.remove()


def app_attaching(dokku: DokkuHost, resources: DockerResources, key: str):
    """The app (APP) whose `key` names a fresh network, with a running container on it as
    `core-post-deploy` attaches it and a true IP.web.1: (container, network)."""
    root = dokku.create_app(APP)
    network = resources.network()
    for name, value in ((key, network.name), (properties.TLD, TLD)):
        assert dokku.command("set", APP, name, value).returncode == 0
    container = resources.app_container(APP, app_root=root)
    assert dokku.trigger("core-post-deploy", APP).returncode == 0
    if key == properties.ATTACH_POST_CREATE:  # post-container-create attached it: do it here
        network.connect(container, aliases=sorted(wanted_aliases(container)))
    (root / "IP.web.1").write_text(endpoint(container, "bridge")["IPAddress"])
    assert wanted_aliases(container) <= set(endpoint(container, network.name)["Aliases"])
    return container, network


def back_on(container, network_name: str, again) -> None:
    wait_for(lambda: endpoint(container, network_name), f"the container on {network_name} again")
    assert endpoint(container, network_name)["NetworkID"] == again.id
    assert wanted_aliases(container) <= set(endpoint(container, network_name)["Aliases"])


@needs_engine
def test_a_network_of_attach_post_deploy_created_again_gets_the_running_container_back_with_its_aliases(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    container, backend = app_attaching(dokku, docker_resources, properties.ATTACH_POST_DEPLOY)
    running = watcher()

    remove_network(backend, container)
    again = docker_resources.client.networks.create(
        backend.name, driver="bridge", labels={RESOURCE_LABEL: OWNER}
    )

    back_on(container, backend.name, again)
    line = f"-----> Attached 1 container(s) of {APP} to network {backend.name} again"
    running.wait_for_line(line)
    assert running.stop() == 0
    assert running.lines().count(line) == 1
    assert running.calls() == []  # its address on bridge did not change: no refresh
    assert not [line for line in running.lines() if line.startswith(" !     ")]


@needs_engine
def test_a_network_of_attach_post_create_made_again_while_the_watcher_was_away_is_put_back_at_its_start(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    container, backend = app_attaching(dokku, docker_resources, properties.ATTACH_POST_CREATE)
    remove_network(backend, container)
    again = docker_resources.client.networks.create(
        backend.name, driver="bridge", labels={RESOURCE_LABEL: OWNER}
    )

    running = watcher()

    back_on(container, backend.name, again)
    running.wait_for_line(f"-----> Attached 1 container(s) of {APP} to network {backend.name} again")
    assert running.stop() == 0
    assert running.calls() == []


@needs_engine
def test_an_initial_network_created_again_gets_the_container_back_and_its_ip_file_and_proxy_follow(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    client = docker_resources.client
    first_subnet, second_subnet = free_subnets(client, 2)
    root = dokku.create_app(APP)
    front = make_network(client, f"dnt-{docker_resources.run_id}-front", first_subnet)
    for key, value in ((properties.INITIAL_NETWORK, front.name), (properties.TLD, TLD)):
        assert dokku.command("set", APP, key, value).returncode == 0
    container = docker_resources.app_container(APP, app_root=root, network=front.name)
    old_ip = endpoint(container, front.name)["IPAddress"]
    (root / "IP.web.1").write_text(old_ip)
    running = watcher()

    remove_network(front, container)
    make_network(client, front.name, second_subnet)  # another subnet: another address

    wait_for(lambda: endpoint(container, front.name), f"the container on {front.name} again")
    new_ip = endpoint(container, front.name)["IPAddress"]
    assert new_ip != old_ip
    assert wanted_aliases(container) <= set(endpoint(container, front.name)["Aliases"])
    wait_for(lambda: (root / "IP.web.1").read_text() == new_ip, f"IP.web.1 to become {new_ip}")
    running.wait_for_line(f"-----> Refreshed the proxy of {APP}")
    assert running.stop() == 0
    assert running.calls() == [APP]
    assert f"       Updated {APP}: IP.web.1 ({new_ip})" in running.lines()
    # While the network was gone the container had no address: a rebuild then (if the
    # disconnect's came before the reattach) said so.
    no_address = (
        f" !     Unable to find an IP address for {APP}.web.1 (container {container.id[:12]})"
        f" on network {front.name}"
    )
    assert {line for line in running.lines() if line.startswith(" !     ")} <= {no_address}
