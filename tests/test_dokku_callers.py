"""Dokku's own callers, replayed: the order they call our triggers in, under their shell options.

Each script below is what the caller in Dokku 0.38.27 does with our triggers (nginx-vhosts'
proxy-clear-config and proxy-build-config, scheduler-docker-local's deploy, plugin:update and
plugin:uninstall), run by bash with `set -eo pipefail` and a `plugn` that dispatches to every
enabled plugin as plugn does (tests/plugn).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.docker_fixtures import DockerResources
from tests.host import NO_SERVICE, PLUGN, DokkuHost, made_by_install

APP = "node-js-app"

# nginx-vhosts: ps:restore (every boot) and proxy:clear-config, then the proxy build.
NGINX_CLEAR_THEN_BUILD = """
plugn trigger network-clear-config "$APP"
if [[ "$(plugn trigger network-config-exists "$APP")" == "true" ]]; then
  plugn trigger network-build-config "$APP"
fi
echo "upstream: $(plugn trigger network-get-listeners "$APP" web)"
"""
# scheduler-docker-local, for web container $INDEX: its docker args (a --network among them when
# the app has one), then once the container is created, the triggers around its start.
SCHEDULER_DOCKER_ARGS = """
: | plugn trigger docker-args-process-deploy "$APP" herokuish latest web "$INDEX"
"""
SCHEDULER_START_CONTAINER = """
plugn trigger post-container-create app "$CID" "$APP" deploy web
docker container start "$CID" >/dev/null
"""
# The IP it prints is written back as it is.
SCHEDULER_DEPLOY_CONTAINER = """
ipaddr=$(plugn trigger network-get-ipaddr "$APP" web "$CID")
echo "$CID" >"$DOKKU_ROOT/$APP/CONTAINER.web.$INDEX"
[[ -n "$ipaddr" ]] && plugn trigger network-write-ipaddr "$APP" web "$INDEX" "$ipaddr"
plugn trigger network-write-port "$APP" web "$INDEX" 5000
echo "upstream: $(plugn trigger network-get-listeners "$APP" web)"
"""
# scheduler-deploy, after every container is up and before the retiring ones stop.
SCHEDULER_POST_DEPLOY = """
plugn trigger core-post-deploy "$APP" 5000 "" latest
plugn trigger post-deploy "$APP" 5000 "" latest
"""


def replay(dokku: DokkuHost, script: str, **variables: str):
    """Run `script` as Dokku's bash callers run: `set -eo pipefail`, plugn on PATH."""
    env = {
        "PATH": f"{PLUGN.parent}:{os.environ['PATH']}",
        "APP": APP,
        "INDEX": "1",
        **variables,
    }
    return dokku.run(Path("/bin/bash"), "-c", "set -eo pipefail\n" + script, env=env)


def engine_ip(container, network: str = "bridge") -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


@pytest.fixture
def deployed(dokku: DokkuHost, docker_resources: DockerResources, test_image: str):
    """An app with one running web container, deployed the way the scheduler does it."""
    root = dokku.create_app(APP)
    web = docker_resources.app_container(APP, "web", 1, app_root=root)
    result = replay(dokku, SCHEDULER_DEPLOY_CONTAINER, CID=web.id)
    assert result.returncode == 0, result.stderr
    return root, web


def test_ps_restore_keeps_the_proxy_upstream(dokku: DokkuHost, deployed):
    root, web = deployed
    before = sorted(path.name for path in root.iterdir())

    result = replay(dokku, NGINX_CLEAR_THEN_BUILD)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1] == f"upstream: {engine_ip(web)}:5000"
    assert sorted(path.name for path in root.iterdir()) == before


def test_proxy_build_goes_on_past_containers_without_an_ip(
    dokku: DokkuHost, deployed, docker_resources: DockerResources
):
    root, web = deployed
    # A worker started with `--network none` (docker-options) has no address anywhere.
    worker = docker_resources.app_container(APP, "worker", 1, app_root=root, network="none")

    result = replay(dokku, NGINX_CLEAR_THEN_BUILD)

    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"-----> Ensuring network configuration is in sync for {APP}",
        f"upstream: {engine_ip(web)}:5000",
    ]
    assert result.stderr == (
        f" !     Unable to find an IP address for {APP}.worker.1 (container {worker.id[:12]})"
        " on network bridge\n"
    )


def test_proxy_build_goes_on_when_the_engine_is_out_of_reach(dokku: DokkuHost, deployed):
    _, web = deployed

    result = replay(dokku, NGINX_CLEAR_THEN_BUILD, DOCKER_HOST="unix:///nonexistent/docker.sock")

    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == f"upstream: {engine_ip(web)}:5000"
    assert result.stderr.startswith(" !     Unable to reach the Docker engine at ")
    assert len(result.stderr.splitlines()) == 1


def test_static_web_listener_with_a_host_name_deploys(
    dokku: DokkuHost, docker_resources: DockerResources, test_image: str
):
    root = dokku.create_app(APP)
    assert dokku.command("set", APP, "static-web-listener", "localhost:8080").returncode == 0
    web = docker_resources.app_container(APP, "web", 1)

    result = replay(dokku, SCHEDULER_DEPLOY_CONTAINER, CID=web.id)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "upstream: localhost:8080\n"
    assert (root / "IP.web.1").read_text() == "localhost"
    assert (root / "CONTAINER.web.1").read_text() == f"{web.id}\n"


def test_post_deploy_attaches_the_deployed_containers_once_and_never_the_retiring_ones(
    dokku: DokkuHost, docker_resources: DockerResources, test_image: str
):
    root = dokku.create_app(APP)
    network = docker_resources.network()
    assert dokku.command("set", APP, "attach-post-deploy", network.name).returncode == 0
    retiring = docker_resources.app_container(APP, "web", 1, app_root=root)
    deployed = docker_resources.app_container(APP, "web", 1, app_root=root, hostname="new")

    result = replay(dokku, SCHEDULER_POST_DEPLOY)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"-----> Associating app with network {network.name}\n"
    deployed.reload()
    retiring.reload()
    aliases = deployed.attrs["NetworkSettings"]["Networks"][network.name]["Aliases"]
    assert {f"{APP}.web", f"new.{APP}.web"} <= set(aliases)
    assert network.name not in retiring.attrs["NetworkSettings"]["Networks"]


def test_new_app_follows_a_global_bind_all_interfaces(dokku: DokkuHost):
    dokku.create_app(APP)
    assert replay(dokku, 'plugn trigger post-create "$APP"').returncode == 0
    assert dokku.command("set", "--global", "bind-all-interfaces", "true").returncode == 0

    raw = dokku.command("report", APP, "--network-bind-all-interfaces")
    computed = dokku.command("report", APP, "--network-computed-bind-all-interfaces")
    got = replay(dokku, 'plugn trigger network-get-property "$APP" bind-all-interfaces')

    assert (raw.stdout, computed.stdout, got.stdout) == ("\n", "true\n", "true\n")


def test_uninstall_of_another_plugin_does_nothing(dokku: DokkuHost):
    before = dokku.snapshot()

    result = replay(dokku, "plugn trigger uninstall letsencrypt")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert dokku.snapshot() == before


def test_uninstall_of_this_plugin_keeps_app_data(dokku: DokkuHost):
    dokku.create_app(APP)
    dokku.write_property(APP, "tld", "svc.local")
    before = dokku.snapshot()

    result = replay(dokku, "plugn trigger uninstall network")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"-----> Uninstalling the network plugin: app properties stay in {dokku.properties_root}\n"
    )
    assert dokku.snapshot() == before


def test_update_relinks_entry_points_and_drops_old_ones(dokku: DokkuHost):
    plugin = dokku.plugin_dir
    (plugin / "network-get-property").unlink()
    # A trigger an older version linked and this one no longer has: plugn would still run it.
    (plugin / "post-deploy").symlink_to("triggers/post-deploy")

    result = replay(dokku, "plugn trigger update")

    assert (result.returncode, result.stdout, result.stderr) == (0, NO_SERVICE, "")
    assert made_by_install(plugin, "network-get-property")
    assert not os.path.lexists(plugin / "post-deploy")
