"""network:create / destroy / exists / info / list against the real engine (docs/reference.md: Commands)."""

from __future__ import annotations

import json
import uuid

import docker.errors
import pytest

from tests.docker_fixtures import OWNER, RESOURCE_LABEL
from tests.host import DokkuHost

pytestmark = pytest.mark.usefixtures("docker_client")


def test_create_makes_an_attachable_labelled_bridge(dokku: DokkuHost, docker_client, network_name):
    result = dokku.command("create", network_name)

    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"-----> Creating network {network_name}\n",
        "",
    )
    attrs = docker_client.networks.get(network_name).attrs
    assert (attrs["Driver"], attrs["Attachable"]) == ("bridge", True)
    assert attrs["Labels"] == {"com.dokku.network-name": network_name}


def test_create_twice_fails(dokku: DokkuHost, network_name):
    dokku.command("create", network_name)
    again = dokku.command("create", network_name)
    assert (again.returncode, again.stderr) == (1, f" !     Network {network_name} already exists\n")


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "a b", "$(id)"])
def test_create_refuses_invalid_names(dokku: DokkuHost, bad):
    result = dokku.command("create", bad)
    assert result.returncode == 1
    assert result.stderr.startswith(" !     ")
    assert len(result.stderr.splitlines()) == 1


def test_exists(dokku: DokkuHost, network_name):
    missing = dokku.command("exists", network_name)
    assert (missing.returncode, missing.stderr) == (1, " !     Network does not exist\n")
    dokku.command("create", network_name)
    present = dokku.command("exists", network_name)
    assert (present.returncode, present.stdout) == (0, "-----> Network exists\n")


def test_destroy_asks_for_confirmation(dokku: DokkuHost, docker_client, network_name):
    dokku.command("create", network_name)

    refused = dokku.command("destroy", network_name, stdin="something-else\n")

    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        " !     WARNING: Potentially Destructive Action",
        f" !     This command will destroy network {network_name}.",
        f' !     To proceed, type "{network_name}"',
        f" !     Confirmation did not match {network_name}. Aborted.",
    ]
    assert refused.stdout == "\n> "
    assert docker_client.networks.list(names=[network_name])

    accepted = dokku.command("destroy", network_name, stdin=f"{network_name}\n")

    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.endswith(f"-----> Destroying network {network_name}\n")
    assert not docker_client.networks.list(names=[network_name])


@pytest.mark.parametrize("how", ["--force", "env"])
def test_destroy_forced_skips_the_prompt(dokku: DokkuHost, docker_client, network_name, how):
    dokku.command("create", network_name)
    args, env = (
        ((network_name, "--force"), None)
        if how == "--force"
        else ((network_name,), {"DOKKU_APPS_FORCE_DELETE": "1"})
    )

    result = dokku.command("destroy", *args, env=env)

    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"-----> Destroying network {network_name}\n",
        "",
    )
    assert not docker_client.networks.list(names=[network_name])


def test_destroy_refuses_missing_network(dokku: DokkuHost, network_name):
    result = dokku.command("destroy", network_name, "--force")
    assert (result.returncode, result.stderr) == (1, f" !     Network {network_name} does not exist\n")


def test_destroy_refuses_while_containers_are_attached(
    dokku: DokkuHost, docker_client, docker_resources, test_image
):
    network = docker_resources.network()
    container = docker_resources.app_container("node-js-app", network=network.name)

    result = dokku.command("destroy", network.name, "--force")

    assert result.returncode == 1
    assert result.stderr == f" !     Network {network.name} has containers attached: {container.name}\n"
    assert docker_client.networks.list(names=[network.name])


@pytest.mark.parametrize("force", [True, False])
def test_destroy_refuses_while_stopped_or_created_containers_name_it(
    dokku: DokkuHost, docker_client, docker_resources, test_image, force
):
    """An app after `ps:stop` must `ps:start` again: its stopped containers keep the network.
    `--force` skips the question only."""
    network = docker_resources.network()
    stopped = docker_resources.app_container("node-js-app", "web", 1, network=network.name)
    stopped.stop(timeout=0)
    created = docker_resources.app_container("node-js-app", "worker", 1, network=network.name, start=False)

    result = dokku.command(
        "destroy", network.name, *(["--force"] if force else []), stdin=f"{network.name}\n"
    )

    names = sorted(f"{container.name} (not running)" for container in (stopped, created))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f" !     Network {network.name} has containers attached: {', '.join(names)}\n"
    assert docker_client.networks.list(names=[network.name])


@pytest.mark.parametrize("name", ["bridge", "host", "none"])
def test_destroy_refuses_dockers_own_networks_before_saying_anything(dokku: DokkuHost, name):
    result = dokku.command("destroy", name, "--force")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f" !     Network {name} is one of Docker's own networks: it cannot be destroyed\n"


def test_destroy_says_destroying_only_once_the_engine_agreed(
    host_paths, docker_client, docker_resources, capsys, mocker
):
    """The one refusal left to the engine (a container joining after the check) is mocked: it
    cannot be timed for real."""
    from network_plugin import docker_engine
    from network_plugin.main import main

    network = docker_resources.network()
    refusal = docker.errors.APIError("error while removing network: network has active endpoints")
    mocker.patch.object(docker_engine.api(), "remove_network", side_effect=refusal)

    code = main(["/plugins/network/subcommands/destroy", "network:destroy", network.name, "--force"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (1, "")
    assert captured.err.startswith(" !     Docker engine error: ")


def test_info_text_and_json(dokku: DokkuHost, docker_resources, test_image):
    network = docker_resources.network()
    dokku.create_app("node-js-app")
    dokku.command("set", "node-js-app", "attach-post-deploy", network.name)
    container = docker_resources.app_container("node-js-app", "web", 1, network=network.name)
    container.reload()
    ip = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]

    text = dokku.command("info", network.name)
    document = json.loads(dokku.command("info", network.name, "--format", "json").stdout)

    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"=====> {network.name} network information"
    assert f"       ID:            {network.id}" in lines
    assert f"       Name:          {network.name}" in lines
    assert "       Driver:        bridge" in lines
    assert "       Scope:         local" in lines
    assert "       Dokku managed: false" in lines
    assert "       Apps:          node-js-app" in lines
    assert "       Containers:    1" in lines
    assert f"         {container.name} node-js-app.web {ip}" in lines
    assert {
        "CreatedAt",
        "DokkuManaged",
        "Driver",
        "ID",
        "Internal",
        "IPv6",
        "Labels",
        "Name",
        "Scope",
    } <= set(document)
    assert document["Containers"] == [
        {"App": "node-js-app", "ID": container.id, "IP": ip, "Name": container.name, "ProcessType": "web"}
    ]
    assert document["Apps"] == ["node-js-app"]
    assert document["Subnets"] and document["Gateways"]


def test_info_escapes_control_characters_of_labels_options_and_containers(
    dokku: DokkuHost, docker_client, docker_resources, test_image
):
    """Made by hand (network:create refuses them): every text line stays one line, no escape
    sequence reaches the terminal."""
    name = f"dnt-{uuid.uuid4().hex[:10]}"
    docker_client.networks.create(
        name,
        options={"com.example.note": "a\nb"},
        labels={"x": "y\n\x1b[31mRED", RESOURCE_LABEL: OWNER},
    )
    container = docker_client.containers.create(
        test_image,
        ["sleep", "3600"],
        network=name,
        labels={
            "com.dokku.app-name": "evil\x1b[2J",
            "com.dokku.process-type": "web\n",
            RESOURCE_LABEL: OWNER,
        },
    )

    text = dokku.command("info", name)

    assert (text.returncode, text.stderr) == (0, "")
    assert "\x1b" not in text.stdout
    lines = text.stdout.splitlines()
    assert "       Options:       com.example.note=a\\nb" in lines
    assert f"       Labels:        {RESOURCE_LABEL}={OWNER} x=y\\n\\x1b[31mRED" in lines
    assert any(line.startswith(f"         {container.name} evil\\x1b[2J.web\\n ") for line in lines)
    assert len(lines) == 17


def test_info_shows_a_container_without_process_type_by_its_app(
    dokku: DokkuHost, docker_client, docker_resources, test_image
):
    network = docker_resources.network()
    labels = {"com.dokku.app-name": "node-js-app", RESOURCE_LABEL: OWNER}
    app_only = docker_client.containers.create(
        test_image, ["sleep", "3600"], network=network.name, labels=labels
    )
    stranger = docker_client.containers.create(
        test_image, ["sleep", "3600"], network=network.name, labels={RESOURCE_LABEL: OWNER}
    )

    lines = dokku.command("info", network.name).stdout.splitlines()

    assert f"         {app_only.name} node-js-app -" in lines
    assert f"         {stranger.name} - -" in lines


def test_info_lists_containers_by_name(dokku: DokkuHost, docker_resources, test_image):
    network = docker_resources.network()
    created = [
        docker_resources.app_container("node-js-app", "web", n, network=network.name) for n in (1, 2, 3)
    ]

    text = dokku.command("info", network.name).stdout.splitlines()

    # The engine lists the newest container first; the operator reads web.1 first.
    names = [line.split()[0] for line in text if line.startswith("         ")]
    assert names == sorted(container.name for container in created)


def test_info_of_missing_network_and_bad_format(dokku: DokkuHost, network_name):
    missing = dokku.command("info", network_name)
    assert (missing.returncode, missing.stderr) == (1, f" !     Network {network_name} does not exist\n")
    dokku.command("create", network_name)
    bad = dokku.command("info", network_name, "--format", "yaml")
    assert (bad.returncode, bad.stderr) == (1, " !     Invalid format specified, use either text or json\n")


def test_list_text_json_dokku_managed_and_quiet(dokku: DokkuHost, network_name):
    dokku.command("create", network_name)

    text = dokku.command("list")
    managed = json.loads(dokku.command("list", "--format", "json", "--dokku-managed").stdout)
    everything = json.loads(dokku.command("list", "--format", "json").stdout)
    quiet = dokku.command("list", env={"DOKKU_QUIET_OUTPUT": "1"})

    assert text.stdout.splitlines()[0] == "=====> Networks"
    assert {"bridge", "host", "none", network_name} <= set(text.stdout.splitlines()[1:])
    assert network_name in [entry["Name"] for entry in managed]
    assert all(entry["DokkuManaged"] for entry in managed)
    assert "bridge" in [entry["Name"] for entry in everything]
    assert "=====>" not in quiet.stdout
    assert network_name in quiet.stdout.splitlines()
