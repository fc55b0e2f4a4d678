"""IP files rebuilt from the real engine (docs/reference.md: network-build-config,
The IP of a container, network:rebuild)."""

from __future__ import annotations

import pytest

from tests.host import DokkuHost

pytestmark = pytest.mark.usefixtures("test_image")


def ip_on(container, network_name):
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network_name]["IPAddress"]


def test_rebuild_writes_the_bridge_ip_of_each_running_container(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    web1 = docker_resources.app_container("node-js-app", "web", 1, app_root=root)
    web2 = docker_resources.app_container("node-js-app", "web", 2, app_root=root)

    result = dokku.command("rebuild", "node-js-app")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "-----> Ensuring network configuration is in sync for node-js-app",
        f"       Updated node-js-app: IP.web.1 ({ip_on(web1, 'bridge')}), IP.web.2 ({ip_on(web2, 'bridge')})",
        "-----> Refreshed the proxy of node-js-app",
    ]
    assert (root / "IP.web.1").read_text() == ip_on(web1, "bridge")
    assert (root / "IP.web.2").read_text() == ip_on(web2, "bridge")
    assert dokku.proxy_calls() == ["node-js-app"]


def test_initial_network_decides_which_ip_is_written(dokku: DokkuHost, docker_resources):
    network = docker_resources.network()
    root = dokku.create_app("node-js-app")
    dokku.command("set", "node-js-app", "initial-network", network.name)
    web = docker_resources.app_container("node-js-app", app_root=root, network=network.name)

    assert dokku.command("rebuild", "node-js-app").returncode == 0
    assert (root / "IP.web.1").read_text() == ip_on(web, network.name)
    get_ip = dokku.trigger("network-get-ipaddr", "node-js-app", "web", web.id)
    assert (get_ip.returncode, get_ip.stdout) == (0, f"{ip_on(web, network.name)}\n")


def test_host_network_mode_means_localhost(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    docker_resources.app_container("node-js-app", "worker", 1, app_root=root, network="host")

    assert dokku.command("rebuild", "node-js-app").returncode == 0
    assert (root / "IP.worker.1").read_text() == "127.0.0.1"


def test_static_web_listener_answers_without_the_engine_and_skips_rebuild(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    web = docker_resources.app_container("node-js-app", app_root=root)
    dokku.command("set", "node-js-app", "static-web-listener", "10.9.8.7:8080")

    get_ip = dokku.trigger("network-get-ipaddr", "node-js-app", "web", web.id)
    rebuild = dokku.command("rebuild", "node-js-app")

    assert (get_ip.returncode, get_ip.stdout) == (0, "10.9.8.7\n")
    assert (rebuild.returncode, rebuild.stdout) == (0, "")
    assert not (root / "IP.web.1").exists()


def test_exit_status_counts_running_containers_without_ip(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    docker_resources.app_container("node-js-app", "web", 1, app_root=root)
    docker_resources.app_container("node-js-app", "worker", 1, app_root=root, network="none")
    docker_resources.app_container("node-js-app", "worker", 2, app_root=root, network="none")
    docker_resources.app_container("node-js-app", "worker", 3, app_root=root, start=False)
    (root / "CONTAINER.worker.4").write_text("0123456789ab" * 5 + "abcd\n")  # long gone

    result = dokku.command("rebuild", "node-js-app")

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(" !     Unable to find an IP address for node-js-app.worker.1 (container ")
    assert lines[0].endswith(") on network bridge")
    assert (root / "IP.web.1").exists()
    assert not any((root / f"IP.worker.{n}").exists() for n in (1, 2, 3, 4))
    # The trigger only warns: nginx runs it under `set -eo pipefail`.
    build = dokku.trigger("network-build-config", "node-js-app")
    assert (build.returncode, build.stderr) == (0, result.stderr)


def test_rebuild_only_rewrites_changed_files_and_refreshes_no_proxy_without_change(
    dokku: DokkuHost, docker_resources
):
    root = dokku.create_app("node-js-app")
    docker_resources.app_container("node-js-app", app_root=root)
    assert dokku.command("rebuild", "node-js-app").returncode == 0
    before = (root / "IP.web.1").stat()

    again = dokku.command("rebuild", "node-js-app")

    assert (again.returncode, again.stdout, again.stderr) == (
        0,
        "-----> Ensuring network configuration is in sync for node-js-app\n",
        "",
    )
    after = (root / "IP.web.1").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert dokku.proxy_calls() == ["node-js-app"]  # the first rebuild's only


def test_a_failing_proxy_refresh_is_one_line_and_keeps_the_exit_status(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    docker_resources.app_container("node-js-app", app_root=root)
    docker_resources.app_container("node-js-app", "worker", 1, app_root=root, network="none")
    failing = {"DOKKU_NETWORK_PROXY_REFRESH": "sh -c 'echo nginx: config broken >&2; exit 2' refresh"}

    result = dokku.command("rebuild", "node-js-app", env=failing)

    assert result.returncode == 1  # the worker without an IP, as without a proxy refresh
    assert result.stderr.splitlines()[1:] == [
        " !     Unable to refresh the proxy of node-js-app: sh exited with 2: nginx: config broken"
    ]
    assert (root / "IP.web.1").exists()


def test_the_build_config_trigger_never_refreshes_the_proxy(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    docker_resources.app_container("node-js-app", app_root=root)

    result = dokku.trigger("network-build-config", "node-js-app")

    assert result.returncode == 0
    assert (root / "IP.web.1").exists()
    assert dokku.proxy_calls() == []


def test_stale_ip_is_corrected(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    web = docker_resources.app_container("node-js-app", app_root=root)
    (root / "IP.web.1").write_text("10.255.255.1")

    assert dokku.command("rebuild", "node-js-app").returncode == 0
    assert (root / "IP.web.1").read_text() == ip_on(web, "bridge")


def test_rebuildall_covers_every_app_and_sums_failures(dokku: DokkuHost, docker_resources):
    first, second = dokku.create_app("app-a"), dokku.create_app("app-b")
    a = docker_resources.app_container("app-a", app_root=first)
    docker_resources.app_container("app-b", "web", 1, app_root=second, network="none")
    b2 = docker_resources.app_container("app-b", "web", 2, app_root=second)
    dokku.create_app("not-deployed")

    result = dokku.command("rebuildall")

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "-----> Ensuring network configuration is in sync for app-a",
        f"       Updated app-a: IP.web.1 ({ip_on(a, 'bridge')})",
        "-----> Ensuring network configuration is in sync for app-b",
        f"       Updated app-b: IP.web.2 ({ip_on(b2, 'bridge')})",
        "-----> Refreshed the proxy of app-a",
        "-----> Refreshed the proxy of app-b",
    ]
    assert dokku.proxy_calls() == ["app-a", "app-b"]
    assert (first / "IP.web.1").read_text() == ip_on(a, "bridge")
    assert (second / "IP.web.2").read_text() == ip_on(b2, "bridge")


def test_rebuildall_without_apps(dokku: DokkuHost, docker_client):
    result = dokku.command("rebuildall")
    assert (result.returncode, result.stderr) == (0, " !     You haven't deployed any applications yet\n")


def test_other_schedulers_are_not_configured(dokku: DokkuHost, docker_resources):
    root = dokku.create_app("node-js-app")
    docker_resources.app_container("node-js-app", app_root=root)
    scheduler = dokku.lib_root / "config" / "scheduler" / "node-js-app"
    scheduler.mkdir(parents=True)
    (scheduler / "selected").write_text("k3s\n")

    result = dokku.command("rebuild", "node-js-app")

    assert (result.returncode, result.stdout) == (0, "")
    assert not (root / "IP.web.1").exists()


def test_an_app_in_sync_is_checked_without_its_lock_and_one_out_of_sync_rewritten_under_it(
    dokku: DokkuHost, docker_resources
):
    """nginx's proxy build runs network-build-config after the deploy wrote the IPs: then it
    writes nothing and takes no lock, so it never imports filelock (~20 ms)."""
    from tests.test_warm_triggers import imported

    root = dokku.create_app("node-js-app")
    web1 = docker_resources.app_container("node-js-app", "web", 1, app_root=root)
    docker_resources.app_container("node-js-app", "web", 2, app_root=root)
    assert dokku.command("rebuild", "node-js-app").returncode == 0
    lock = dokku.lib_root / "config" / "network" / "node-js-app" / ".lock"
    lock.unlink()

    in_sync = dokku.trigger("network-build-config", "node-js-app")
    modules = imported(dokku, "network-build-config", "node-js-app")

    assert (in_sync.returncode, in_sync.stderr) == (0, "")
    assert in_sync.stdout == "-----> Ensuring network configuration is in sync for node-js-app\n"
    assert "filelock" not in modules
    assert not lock.exists()

    (root / "IP.web.1").write_text("10.9.9.9")
    stale = dokku.trigger("network-build-config", "node-js-app")

    assert (stale.returncode, stale.stderr) == (0, "")
    assert stale.stdout.splitlines()[1] == f"       Updated node-js-app: IP.web.1 ({ip_on(web1, 'bridge')})"
    assert (root / "IP.web.1").read_text() == ip_on(web1, "bridge")
    assert lock.exists()
