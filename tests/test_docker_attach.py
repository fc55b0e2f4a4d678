"""Attaching containers to networks on the real engine (docs/reference.md: Triggers, Attaching)."""

from __future__ import annotations

import pytest

from tests.docker_fixtures import exec_in
from tests.host import DokkuHost

pytestmark = pytest.mark.usefixtures("test_image")


def endpoints(container):
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"]


def test_post_container_create_attaches_every_network_with_aliases(dokku: DokkuHost, docker_resources):
    first, second = docker_resources.network(), docker_resources.network()
    root = dokku.create_app("node-js-app")
    dokku.command("set", "node-js-app", "attach-post-create", first.name, second.name)
    container = docker_resources.app_container("node-js-app", app_root=root, hostname="box1", start=False)

    result = dokku.trigger("post-container-create", "app", container.id, "node-js-app", "deploy", "web")

    assert (result.returncode, result.stderr) == (0, "")
    attached = endpoints(container)
    for network in (first, second):
        assert set(attached[network.name]["Aliases"]) >= {"node-js-app.web", "box1.node-js-app.web"}


def test_aliases_carry_the_tld_and_resolve_through_docker_dns(dokku: DokkuHost, docker_resources):
    network = docker_resources.network()
    root = dokku.create_app("node-js-app")
    dokku.command("set", "node-js-app", "attach-post-create", network.name)
    dokku.command("set", "node-js-app", "tld", "svc.cluster.local")
    app = docker_resources.app_container("node-js-app", app_root=root, hostname="box1", start=False)
    assert (
        dokku.trigger("post-container-create", "app", app.id, "node-js-app", "deploy", "web").returncode == 0
    )
    app.start()
    peer = docker_resources.app_container("peer", network=network.name)

    code, output = exec_in(peer, ["nslookup", "-type=a", "node-js-app.web.svc.cluster.local", "127.0.0.11"])

    assert code == 0, output
    assert endpoints(app)[network.name]["IPAddress"] in output
    code, output = exec_in(
        peer, ["nslookup", "-type=a", "box1.node-js-app.web.svc.cluster.local", "127.0.0.11"]
    )
    assert code == 0, output


def test_attaching_again_is_a_no_op(dokku: DokkuHost, docker_resources):
    network = docker_resources.network()
    root = dokku.create_app("node-js-app")
    dokku.command("set", "node-js-app", "attach-post-create", network.name)
    container = docker_resources.app_container("node-js-app", app_root=root, start=False)
    args = ("app", container.id, "node-js-app", "deploy", "web")
    assert dokku.trigger("post-container-create", *args).returncode == 0
    endpoint = endpoints(container)[network.name]["EndpointID"]

    again = dokku.trigger("post-container-create", *args)

    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert endpoints(container)[network.name]["EndpointID"] == endpoint


@pytest.mark.parametrize("phase", ["build", "run"])
def test_build_and_run_phases_attach_without_aliases(dokku: DokkuHost, docker_resources, phase):
    network = docker_resources.network()
    root = dokku.create_app("node-js-app")
    dokku.command("set", "node-js-app", "attach-post-create", network.name)
    container = docker_resources.app_container("node-js-app", app_root=root, start=False)

    result = dokku.trigger("post-container-create", "app", container.id, "node-js-app", phase)

    assert result.returncode == 0, result.stderr
    aliases = endpoints(container)[network.name].get("Aliases") or []
    assert not [alias for alias in aliases if "node-js-app" in alias]


def test_missing_network_fails_the_trigger(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    dokku.command("set", "node-js-app", "attach-post-create", "dnt-never-created")
    container = docker_resources.app_container("node-js-app", app_root=root, start=False)

    result = dokku.trigger("post-container-create", "app", container.id, "node-js-app", "deploy", "web")

    assert (result.returncode, result.stderr) == (1, " !     Network dnt-never-created does not exist\n")


def test_non_app_containers_and_apps_without_networks_are_left_alone(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    container = docker_resources.app_container("node-js-app", app_root=root, start=False)
    before = set(endpoints(container))
    assert (
        dokku.trigger("post-container-create", "app", container.id, "node-js-app", "deploy", "web").returncode
        == 0
    )
    dokku.command("set", "node-js-app", "attach-post-create", "dnt-never-created")
    assert (
        dokku.trigger("post-container-create", "builder", container.id, "node-js-app", "build").returncode
        == 0
    )
    assert set(endpoints(container)) == before


def test_core_post_deploy_attaches_every_running_deployed_container(dokku: DokkuHost, docker_resources):
    network = docker_resources.network()
    root = dokku.create_app("node-js-app")
    dokku.command("set", "node-js-app", "attach-post-deploy", network.name)
    web = docker_resources.app_container("node-js-app", "web", 1, app_root=root, hostname="w1")
    worker = docker_resources.app_container("node-js-app", "worker", 1, app_root=root, hostname="k1")
    stopped = docker_resources.app_container("node-js-app", "web", 2, app_root=root, start=False)
    other_app = docker_resources.app_container("other-app")

    result = dokku.trigger("core-post-deploy", "node-js-app", "5000", "", "latest")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"-----> Associating app with network {network.name}\n"
    assert set(endpoints(web)[network.name]["Aliases"]) >= {"node-js-app.web", "w1.node-js-app.web"}
    assert set(endpoints(worker)[network.name]["Aliases"]) >= {"node-js-app.worker", "k1.node-js-app.worker"}
    assert network.name not in endpoints(stopped)
    assert network.name not in endpoints(other_app)
    again = dokku.trigger("core-post-deploy", "node-js-app")
    assert again.returncode == 0, again.stderr


def test_core_post_deploy_with_missing_network_fails(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    docker_resources.app_container("node-js-app", app_root=root)
    dokku.command("set", "node-js-app", "attach-post-deploy", "dnt-never-created")

    result = dokku.trigger("core-post-deploy", "node-js-app")

    assert result.returncode == 1
    assert result.stdout == "-----> Associating app with network dnt-never-created\n"
    assert result.stderr == " !     Network dnt-never-created does not exist\n"
