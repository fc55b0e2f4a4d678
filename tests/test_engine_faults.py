"""Engine faults: one ` !     ` line, the right exit code, no traceback, no file changed."""

from __future__ import annotations

import docker.errors
import pytest
import requests.exceptions
import urllib3.exceptions

from network_plugin import attach, docker_engine, engine_client, network_config, properties
from network_plugin.error_handler import run
from network_plugin.main import main
from tests.host import DokkuHost

UNREACHABLE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
# What a user reads for it: the address tried and the system's reason, nothing of the HTTP library.
UNREACHABLE_LINE = (
    " !     Unable to reach the Docker engine at unix:///nonexistent/docker.sock (DOCKER_HOST):"
    " No such file or directory\n"
)


def connection_aborted(reason: OSError) -> requests.exceptions.ConnectionError:
    """The error requests raises when the engine's socket fails, chained as the SDK's is."""
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", reason)
    )


@pytest.mark.parametrize(
    "call",
    [
        ("command", "list"),
        ("command", "rebuild", "node-js-app"),
        ("command", "create", "dnt-x"),
        ("trigger", "network-get-ipaddr", "node-js-app", "web", "abc123"),
        ("trigger", "core-post-deploy", "node-js-app"),
        ("trigger", "post-container-create", "app", "abc123", "node-js-app", "deploy", "web"),
    ],
)
def test_unreachable_engine_is_one_line_and_changes_nothing(dokku: DokkuHost, call):
    root = dokku.create_app("node-js-app")
    (root / "CONTAINER.web.1").write_text("abc123\n")
    (root / "IP.web.1").write_text("10.0.0.1")
    dokku.command("set", "node-js-app", "attach-post-deploy", "dnt-a")
    dokku.command("set", "node-js-app", "attach-post-create", "dnt-b")
    kind, name, *args = call

    result = getattr(dokku, kind)(name, *args, env=UNREACHABLE)

    assert result.returncode == 1
    assert result.stderr == UNREACHABLE_LINE
    assert (root / "IP.web.1").read_text() == "10.0.0.1"


def test_network_build_config_warns_and_succeeds_without_an_engine(dokku: DokkuHost):
    # nginx runs it under `set -eo pipefail`: a failure would stop every proxy build and deploy.
    root = dokku.create_app("node-js-app")
    (root / "CONTAINER.web.1").write_text("abc123\n")
    (root / "IP.web.1").write_text("10.0.0.1")

    result = dokku.trigger("network-build-config", "node-js-app", env=UNREACHABLE)

    assert result.returncode == 0
    assert result.stderr == UNREACHABLE_LINE
    assert (root / "IP.web.1").read_text() == "10.0.0.1"


def test_permission_denied_on_the_socket(host_paths, mocker, capsys, monkeypatch):
    (host_paths[0] / "node-js-app").mkdir()
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    mocker.patch.object(docker_engine, "_client", None)
    denied = connection_aborted(PermissionError(13, "Permission denied"))
    refused = docker.errors.DockerException(f"Error while fetching server API version: {denied}")
    refused.__context__ = denied  # the SDK raises it while handling requests' error
    mocker.patch.object(engine_client, "EngineClient", side_effect=refused)
    (host_paths[0] / "node-js-app" / "CONTAINER.web.1").write_text("abc\n")

    assert main(["/plugin/subcommands/rebuild", "network:rebuild", "node-js-app"]) == 1
    assert capsys.readouterr().err == (
        " !     Unable to reach the Docker engine at unix:///var/run/docker.sock (DOCKER_HOST unset):"
        " Permission denied\n"
    )


@pytest.mark.usefixtures("test_image")
def test_network_removed_between_lookup_and_connect(host_paths, docker_resources, capsys):
    (host_paths[0] / "node-js-app").mkdir()
    network = docker_resources.network()
    container = docker_resources.app_container("node-js-app", start=False)
    looked_up = docker_engine.networks_by_name([network.name])[network.name]
    inspected = docker_engine.inspect_container(container.id)
    network.remove()

    code = run(lambda args: attach.attach(inspected, looked_up, "node-js-app", "deploy", "web"), [])

    assert code == 1
    assert capsys.readouterr().err == f" !     Network {network.name} does not exist\n"
    # The engine accepted the connect of the created container; the plugin undid it,
    # so the container still starts.
    container.start()
    container.reload()
    assert list(container.attrs["NetworkSettings"]["Networks"]) == ["bridge"]


@pytest.mark.usefixtures("test_image")
def test_container_removed_between_inspect_and_connect(host_paths, docker_resources, capsys):
    (host_paths[0] / "node-js-app").mkdir()
    network = docker_resources.network()
    container = docker_resources.app_container("node-js-app", start=False)
    attrs = docker_engine.inspect_container(container.id)
    container.remove(force=True)
    looked_up = docker_engine.networks_by_name([network.name])[network.name]

    code = run(lambda args: attach.attach(attrs, looked_up, "node-js-app", "deploy", "web"), [])

    assert code == 1
    assert capsys.readouterr().err == f" !     Container {container.id[:12]} does not exist\n"


@pytest.mark.usefixtures("test_image")
def test_core_post_deploy_skips_a_container_removed_after_listing(
    host_paths, docker_resources, mocker, capsys
):
    root = host_paths[0] / "node-js-app"
    root.mkdir()
    network = docker_resources.network()
    kept = docker_resources.app_container("node-js-app", "web", 1, app_root=root)
    gone = docker_resources.app_container("node-js-app", "web", 2, app_root=root)
    listed = docker_engine.containers_by_id([kept.id, gone.id])
    gone.remove(force=True)
    mocker.patch.object(docker_engine, "containers_by_id", return_value=listed)
    properties.write("node-js-app", "attach-post-deploy", network.name)

    assert main(["/plugin/core-post-deploy", "node-js-app"]) == 0

    captured = capsys.readouterr()
    assert captured.err == f" !     Container {gone.id[:12]} does not exist, skipped\n"
    kept.reload()
    assert network.name in kept.attrs["NetworkSettings"]["Networks"]


@pytest.mark.usefixtures("test_image")
def test_rebuild_asks_the_engine_once_for_all_containers(host_paths, docker_resources, mocker):
    apps = ["app-a", "app-b", "app-c"]
    for app in apps:
        root = host_paths[0] / app
        root.mkdir()
        for index in (1, 2):
            docker_resources.app_container(app, "web", index, app_root=root)
    client = docker_engine.api()
    listing = mocker.spy(client, "containers")
    inspect = mocker.spy(client, "inspect_container")

    assert network_config.build_config(apps).failures == 0

    assert listing.call_count == 1
    assert inspect.call_count == 0
    for app in apps:
        assert (host_paths[0] / app / "IP.web.2").read_text()


@pytest.mark.usefixtures("test_image")
def test_engine_stopping_mid_rebuildall_changes_no_file(host_paths, docker_resources, mocker, capsys):
    for app in ("app-a", "app-b"):
        root = host_paths[0] / app
        root.mkdir()
        docker_resources.app_container(app, app_root=root)
        (root / "IP.web.1").write_text("10.0.0.1")
    client = docker_engine.api()
    client.version()  # the engine answered once...
    gone = connection_aborted(FileNotFoundError(2, "No such file or directory"))
    mocker.patch.object(client, "containers", side_effect=gone)  # ...then went away

    code = main(["/plugin/subcommands/rebuildall", "network:rebuildall"])

    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith(" !     Unable to reach the Docker engine at ")
    assert error.endswith(": No such file or directory\n")
    assert len(error.splitlines()) == 1
    for app in ("app-a", "app-b"):
        assert (host_paths[0] / app / "IP.web.1").read_text() == "10.0.0.1"


@pytest.mark.usefixtures("test_image")
def test_attaching_to_several_networks_inspects_the_container_once(host_paths, docker_resources, mocker):
    (host_paths[0] / "node-js-app").mkdir()
    first, second = docker_resources.network(), docker_resources.network()
    container = docker_resources.app_container("node-js-app", start=False)
    properties.write("node-js-app", "attach-post-create", f"{first.name},{second.name}")
    inspect = mocker.spy(docker_engine.api(), "inspect_container")

    assert main(["/plugin/post-container-create", "app", container.id, "node-js-app", "deploy", "web"]) == 0

    assert inspect.call_count == 1
    container.reload()
    assert {first.name, second.name} <= set(container.attrs["NetworkSettings"]["Networks"])
