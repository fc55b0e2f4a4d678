"""Apps on two Docker hosts joined in a swarm, talking over an overlay network (README: More than one host).

Each "Dokku host" is the installed plugin with its own DOKKU_ROOT, DOKKU_LIB_ROOT and
DOCKER_HOST: host 1 drives the swarm manager's engine, host 2 the worker's (tests/two_hosts.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import docker.errors
import pytest

from tests.docker_fixtures import OWNER, RESOURCE_LABEL, DockerResources, exec_in
from tests.host import DokkuHost, clean_env, proxy_recorder
from tests.polling import wait_for
from tests.two_hosts import TwoHosts

TLD = "svc.cluster.local"
WORKER_DOES_NOT_LIST = (
    "Network {net} is not listed on this swarm worker: its engine lists an overlay network"
    " only while one of its containers uses it; ask a manager"
)


def serve(app: str) -> list[str]:
    """busybox httpd answering `hello from <app>` on port 5000, as an app's web process would."""
    return [
        "sh",
        "-c",
        f"mkdir /www && echo hello from {app} > /www/index.html && exec httpd -f -p 5000 -h /www",
    ]


def dokku_host(base: Path, plugin_dir: Path, plugin_path: Path, docker_host: str) -> DokkuHost:
    dokku_root, lib_root = base / "home-dokku", base / "var-lib-dokku"
    dokku_root.mkdir(parents=True)
    lib_root.mkdir()
    refresh, calls = proxy_recorder(base)
    env = clean_env() | {
        "DOKKU_ROOT": str(dokku_root),
        "DOKKU_LIB_ROOT": str(lib_root),
        "PLUGIN_PATH": str(plugin_path),
        "DOCKER_HOST": docker_host,
        "DOKKU_NETWORK_PROXY_REFRESH": str(refresh),
    }
    return DokkuHost(
        plugin_dir=plugin_dir, dokku_root=dokku_root, lib_root=lib_root, env=env, proxy_calls_file=calls
    )


@pytest.fixture
def host1(tmp_path, plugin_dir, plugin_path, swarm_resources: TwoHosts) -> DokkuHost:
    """Dokku on the swarm manager."""
    return dokku_host(tmp_path / "host1", plugin_dir, plugin_path, swarm_resources.manager.docker_host)


@pytest.fixture
def host2(tmp_path, plugin_dir, plugin_path, swarm_resources: TwoHosts) -> DokkuHost:
    """Dokku on the swarm worker."""
    return dokku_host(tmp_path / "host2", plugin_dir, plugin_path, swarm_resources.worker.docker_host)


def overlay(host1: DokkuHost, *options: str) -> str:
    """An overlay network created through the plugin on the manager (removed by the sweep)."""
    net = f"dnt-{uuid.uuid4().hex[:10]}"
    result = host1.command(
        "create", net, "--driver", "overlay", "--label", f"{RESOURCE_LABEL}={OWNER}", *options
    )
    assert result.returncode == 0, result.stderr
    return net


def http_get(container, url: str) -> tuple[int, str]:
    """busybox's `wget -T` crashes in Debian's static build: `timeout` bounds it instead."""
    return exec_in(container, ["timeout", "10", "wget", "-q", "-O", "-", url])


def address_on(container, net: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][net]["IPAddress"]


def test_create_with_options_on_the_manager(host1: DokkuHost, host2: DokkuHost, swarm_resources: TwoHosts):
    net = f"dnt-{uuid.uuid4().hex[:10]}"
    result = host1.command(
        "create",
        net,
        "--driver",
        "overlay",
        "--subnet",
        "10.210.0.0/24",
        "--gateway",
        "10.210.0.1",
        "--ip-range",
        "10.210.0.128/25",
        "--opt",
        "com.docker.network.driver.mtu=1400",
        "--label",
        f"{RESOURCE_LABEL}={OWNER}",
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, f"-----> Creating network {net}\n", "")
    attrs = swarm_resources.manager_client.networks.get(net).attrs
    assert (attrs["Driver"], attrs["Scope"], attrs["Attachable"]) == ("overlay", "swarm", True)
    assert attrs["IPAM"]["Config"] == [
        {"Subnet": "10.210.0.0/24", "IPRange": "10.210.0.128/25", "Gateway": "10.210.0.1"}
    ]
    assert attrs["Options"]["com.docker.network.driver.mtu"] == "1400"
    assert attrs["Labels"] == {"com.dokku.network-name": net, RESOURCE_LABEL: OWNER}
    info = host1.command("info", net).stdout.splitlines()
    assert {"       Driver:        overlay", "       Scope:         swarm"} <= set(info)
    assert "       IP ranges:     10.210.0.128/25" in info
    # The worker's engine cannot say anything of it until one of its containers uses it.
    message = f" !     {WORKER_DOES_NOT_LIST.format(net=net)}\n"
    for command in ("exists", "info"):
        on_worker = host2.command(command, net)
        assert (on_worker.returncode, on_worker.stdout, on_worker.stderr) == (1, "", message)
    assert net in host1.command("list", "--dokku-managed").stdout.splitlines()
    destroyed = host1.command("destroy", net, "--force")
    assert (destroyed.returncode, destroyed.stdout) == (0, f"-----> Destroying network {net}\n")
    assert not swarm_resources.manager_client.networks.list(names=[net])


def test_overlay_is_refused_on_the_worker(host2: DokkuHost, swarm_resources: TwoHosts):
    net = f"dnt-{uuid.uuid4().hex[:10]}"

    result = host2.command("create", net, "--driver", "overlay")

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        " !     Overlay networks are created on a swarm manager and this engine is a worker:"
        " run network:create on a manager; the network then reaches this host\n",
    )
    for client in (swarm_resources.manager_client, swarm_resources.worker_client):
        assert not client.networks.list(names=[net])


def test_apps_on_two_hosts_talk_over_the_overlay(
    host1: DokkuHost, host2: DokkuHost, swarm_resources: TwoHosts
):
    net = overlay(host1)
    # Host 1, the manager: `api` joins at container creation, before it starts.
    host1.create_app("api")
    for key, value in (("attach-post-create", net), ("tld", TLD)):
        assert host1.command("set", "api", key, value).returncode == 0
    api = DockerResources(swarm_resources.manager_client).app_container(
        "api", app_root=host1.dokku_root / "api", start=False, command=serve("api")
    )
    created = host1.trigger("post-container-create", "app", api.id, "api", "deploy", "web")
    assert (created.returncode, created.stdout, created.stderr) == (0, "", "")
    api.start()
    # Host 2, the worker: `frontend` joins after its deploy, by name: the worker lists no such network yet.
    assert not swarm_resources.worker_client.networks.list(names=[net])
    host2.create_app("frontend")
    for key, value in (("attach-post-deploy", net), ("tld", TLD)):
        assert host2.command("set", "frontend", key, value).returncode == 0
    frontend = DockerResources(swarm_resources.worker_client).app_container(
        "frontend", app_root=host2.dokku_root / "frontend", command=serve("frontend")
    )
    deployed = host2.trigger("core-post-deploy", "frontend")
    assert (deployed.returncode, deployed.stdout, deployed.stderr) == (
        0,
        f"-----> Associating app with network {net}\n",
        "",
    )

    # Each reaches the other by `<app>.web.<tld>`, through Docker's DNS, across the hosts.
    for client, server in ((frontend, "api"), (api, "frontend")):
        expected = (0, f"hello from {server}\n")
        wait_for(
            lambda c=client, s=server, e=expected: http_get(c, f"http://{s}.web.{TLD}:5000/") == e,
            f"{server} answering {client.name} across the hosts",
            poll=0.5,  # overlay DNS spreads by gossip
        )
    # Idempotent on the worker too: a second run attaches nothing twice.
    again = host2.trigger("core-post-deploy", "frontend")
    assert (again.returncode, again.stderr) == (0, "")


def test_post_container_create_on_the_worker(host1: DokkuHost, host2: DokkuHost, swarm_resources: TwoHosts):
    net = overlay(host1, "--subnet", "10.211.0.0/24")
    host2.create_app("worker-app")
    host2.command("set", "worker-app", "attach-post-create", net)
    container = DockerResources(swarm_resources.worker_client).app_container(
        "worker-app", app_root=host2.dokku_root / "worker-app", start=False
    )

    created = host2.trigger("post-container-create", "app", container.id, "worker-app", "deploy", "web")
    container.start()

    assert (created.returncode, created.stdout, created.stderr) == (0, "", "")
    assert address_on(container, net).startswith("10.211.0.")
    assert "worker-app.web" in container.attrs["NetworkSettings"]["Networks"][net]["Aliases"]
    # Now that one of its containers uses it, the worker's engine lists it and can describe it.
    info = host2.command("info", net)
    assert info.returncode == 0, info.stderr
    assert "       Driver:        overlay" in info.stdout.splitlines()
    assert (
        f"         {container.name} worker-app.web {address_on(container, net)}" in info.stdout.splitlines()
    )


def test_the_worker_refuses_what_its_engine_refuses(host2: DokkuHost, swarm_resources: TwoHosts):
    missing = f"dnt-missing-{uuid.uuid4().hex[:6]}"
    host2.create_app("worker-app")
    host2.command("set", "worker-app", "attach-post-deploy", missing)
    resources = DockerResources(swarm_resources.worker_client)
    resources.app_container("worker-app", app_root=host2.dokku_root / "worker-app")

    deployed = host2.trigger("core-post-deploy", "worker-app")

    assert (deployed.returncode, deployed.stdout, deployed.stderr) == (
        1,
        f"-----> Associating app with network {missing}\n",
        f" !     Network {missing} does not exist\n",
    )
    # A created container is another matter: a worker's engine takes any name then and checks
    # it when the container starts. The plugin cannot know better than the engine here.
    host2.command("set", "worker-app", "attach-post-deploy")
    host2.command("set", "worker-app", "attach-post-create", missing)
    created = resources.app_container("worker-app", "web", 2, start=False)
    attached = host2.trigger("post-container-create", "app", created.id, "worker-app", "deploy", "web")
    assert (attached.returncode, attached.stderr) == (0, "")
    with pytest.raises(docker.errors.APIError, match=f"Could not attach to network {missing}"):
        created.start()


def test_initial_network_overlay_on_the_worker(host1: DokkuHost, host2: DokkuHost, swarm_resources: TwoHosts):
    net = overlay(host1, "--subnet", "10.212.0.0/24")
    host2.create_app("worker-app")
    host2.command("set", "worker-app", "initial-network", net)

    args = host2.trigger("docker-args-process-deploy", "worker-app", "herokuish", "latest", "web", "1")
    # Dokku's scheduler creates the container with those arguments, on the worker.
    container = DockerResources(swarm_resources.worker_client).app_container(
        "worker-app", app_root=host2.dokku_root / "worker-app", network=net
    )
    rebuilt = host2.command("rebuild", "worker-app")
    ip_address = host2.trigger("network-get-ipaddr", "worker-app", "web", container.id)

    assert (args.returncode, args.stdout) == (0, f" --network={net} ")
    ip = address_on(container, net)
    assert (rebuilt.returncode, rebuilt.stderr) == (0, "")
    assert rebuilt.stdout.splitlines() == [
        "-----> Ensuring network configuration is in sync for worker-app",
        f"       Updated worker-app: IP.web.1 ({ip})",
        "-----> Refreshed the proxy of worker-app",
    ]
    assert host2.proxy_calls() == ["worker-app"]
    assert ip.startswith("10.212.0.")
    assert (host2.dokku_root / "worker-app" / "IP.web.1").read_text() == ip
    assert (ip_address.returncode, ip_address.stdout) == (0, f"{ip}\n")
