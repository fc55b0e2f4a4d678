"""Networks that come back (docs/reference.md: Networks that come back): records kept by
network:create/destroy and install, network:export/import, and a missing recorded network
made again before Dokku creates a container, on the real engine."""

from __future__ import annotations

import json
import uuid

import docker
import pytest

from network_plugin.error_handler import PluginError
from network_plugin.records import record_path
from tests.docker_fixtures import OWNER, RESOURCE_LABEL, DockerResources
from tests.host import DokkuHost
from tests.private_engine import can_run_private_engine, private_engine
from tests.test_dokku_callers import APP, replay

WARN = " !     "
SUBNET, IP_RANGE, GATEWAY = "10.231.0.0/16", "10.231.4.0/24", "10.231.0.254"
OPTION = "com.docker.network.driver.mtu=1400"
CREATE_OPTIONS = (
    "--subnet", SUBNET, "--ip-range", IP_RANGE, "--gateway", GATEWAY,
    "--opt", OPTION, "--label", "team=backend", "--label", f"{RESOURCE_LABEL}={OWNER}",
)  # fmt: skip
# scheduler-docker-local's scheduler-deploy-process-container up to `docker container create`.
DEPLOY_DOCKER_ARGS = """
DOCKER_ARGS=$(: | plugn trigger docker-args-deploy "$APP" latest web 1)
DOCKER_ARGS+=" $(: | plugn trigger docker-args-process-deploy "$APP" herokuish latest web 1)"
echo "$DOCKER_ARGS"
"""
# ps:start / ps:restore: pre-start, then release-and-deploy (app.json's release task container
# first, then the scheduler's containers).
PRE_START_DOCKER_ARGS = f"""
plugn trigger pre-start "$APP"
: | plugn trigger docker-args-process-deploy "$APP" herokuish latest >/dev/null
{DEPLOY_DOCKER_ARGS}
"""
AFTER_CREATE = """
plugn trigger post-container-create app "$CID" "$APP" deploy web
"""


def ipam(client: docker.DockerClient, name: str) -> tuple[list[dict], dict, dict, str]:
    network = client.api.inspect_network(name)
    return network["IPAM"]["Config"], network["Options"], network["Labels"], network["Id"]


def record_of(dokku: DokkuHost, name: str) -> dict:
    return json.loads((dokku.lib_root / "data" / "network" / "networks" / f"{name}.json").read_text())


def create(dokku: DokkuHost, name: str, *options: str) -> None:
    result = dokku.command("create", name, *options)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


# --- records -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("docker_client")
def test_create_records_every_option_and_destroy_removes_the_record(dokku: DokkuHost, network_name: str):
    create(dokku, network_name, *CREATE_OPTIONS)

    assert record_of(dokku, network_name) == {
        "version": 1,
        "name": network_name,
        "driver": "bridge",
        "pools": [{"subnet": SUBNET, "ip_range": IP_RANGE, "gateway": GATEWAY}],
        "internal": False,
        "ipv6": False,
        "options": {"com.docker.network.driver.mtu": "1400"},
        "labels": {"com.dokku.network-name": network_name, "team": "backend", RESOURCE_LABEL: OWNER},
    }
    result = dokku.command("destroy", network_name, "--force")
    assert (result.returncode, result.stderr) == (0, "")
    assert not (dokku.lib_root / "data" / "network" / "networks" / f"{network_name}.json").exists()


@pytest.mark.usefixtures("docker_client")
def test_destroy_of_a_recorded_network_gone_from_the_engine_forgets_it(
    dokku: DokkuHost, docker_client: docker.DockerClient, network_name: str
):
    create(dokku, network_name, "--label", f"{RESOURCE_LABEL}={OWNER}")
    docker_client.api.remove_network(network_name)

    result = dokku.command("destroy", network_name, "--force")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"-----> Destroying the record of network {network_name}: the network itself was gone already\n"
    )
    again = dokku.command("destroy", network_name, "--force")
    assert (again.returncode, again.stderr) == (1, f"{WARN}Network {network_name} does not exist\n")


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "x;y", "", "a" * 251])
def test_a_record_never_lies_outside_the_records_folder(host_paths, name: str):
    with pytest.raises(PluginError, match="Invalid network name specified"):
        record_path(name)


def test_an_unreadable_record_is_one_warning(dokku: DokkuHost):
    folder = dokku.lib_root / "data" / "network" / "networks"
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text('{"version": 1, "name": "broken", "driver": ')
    (folder / "hostile.json").write_text(json.dumps({"version": 1, "name": "hostile", "driver": "x;y"}))
    (folder / "linked.json").symlink_to("/etc/passwd")

    result = dokku.command("export", "--allow-partial")

    assert result.returncode == 0
    assert json.loads(result.stdout)["networks"] == []
    lines = result.stderr.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        f"{WARN}Ignoring the record of network {name}" for name in ("broken", "hostile", "linked")
    ]
    assert "Invalid driver specified: x;y" in lines[1]


def test_install_records_the_dokku_networks_made_before_records_once(
    dokku: DokkuHost, docker_resources: DockerResources
):
    name = f"dnt-{uuid.uuid4().hex[:10]}"
    docker_resources.client.api.create_network(
        name,
        driver="bridge",
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.232.0.0/24")]),
        labels={"com.dokku.network-name": name, RESOURCE_LABEL: OWNER},
    )

    first = dokku.run(dokku.plugin_dir / "install")

    assert (first.returncode, first.stderr) == (0, "")
    record = record_of(dokku, name)
    assert record["pools"] == [{"subnet": "10.232.0.0/24", "ip_range": "", "gateway": ""}]
    assert record["labels"] == {"com.dokku.network-name": name, RESOURCE_LABEL: OWNER}
    before = dokku.snapshot()
    assert dokku.run(dokku.plugin_dir / "install").returncode == 0
    assert dokku.snapshot() == before


# --- export and import ---------------------------------------------------------------------------


def document(*networks: dict, apps: dict | None = None, **fields: object) -> str:
    return json.dumps({"version": 1, "networks": list(networks), "global": {}, "apps": apps or {}, **fields})


BAD_DOCUMENTS = [
    (document(version=2), "version 2, this plugin reads version 1"),
    (document()[:-9], "not JSON ("),
    (document({"name": "x;reboot"}), "Invalid network name specified: x;reboot"),
    (document(apps={APP: {"colour": "blue"}}), f"{APP}: Invalid property specified, valid properties"),
    (document(apps={APP: {"initial-network": "a b"}}), f"{APP}: Invalid network name specified: a b"),
    (document({"name": "ok-net", "pools": [{"subnet": "10.1.2.3/16"}]}), "host bits set"),
    (document(**{"global": {"static-web-listener": "10.0.0.1"}}), "--global: Property cannot be specified"),
    ("[]", "not a JSON object"),
    ("", "not JSON ("),
]


@pytest.mark.parametrize(("text", "reason"), BAD_DOCUMENTS)
def test_a_bad_document_changes_nothing(dokku: DokkuHost, text: str, reason: str):
    dokku.create_app(APP)
    dokku.write_property(APP, "tld", "svc.local")
    before = dokku.snapshot()

    result = dokku.command("import", stdin=text)

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"{WARN}Invalid import document, nothing imported: ")
    assert reason in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert dokku.snapshot() == before


def test_an_app_that_does_not_exist_is_a_warning(dokku: DokkuHost):
    dokku.create_app(APP)

    result = dokku.command(
        "import", stdin=document(apps={APP: {"tld": "svc.local"}, "gone-app": {"tld": "x"}})
    )

    assert result.returncode == 0
    assert result.stdout == f"-----> Set network properties of {APP}: tld=svc.local\n"
    assert result.stderr == f"{WARN}App gone-app does not exist: its network properties are not imported\n"
    assert not (dokku.properties_root / "gone-app").exists()


def test_a_network_with_other_options_is_drift_left_alone(
    dokku: DokkuHost, docker_resources: DockerResources
):
    network = docker_resources.network()
    spec = {"name": network.name, "pools": [{"subnet": "10.233.0.0/24"}], "labels": {}}

    result = dokku.command("import", stdin=document(spec))

    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr.startswith(f"{WARN}Network {network.name} exists with other options, left alone: ")
    assert "no subnet 10.233.0.0/24" in result.stderr
    assert ipam(docker_resources.client, network.name)[3] == network.id
    assert not (dokku.lib_root / "data" / "network" / "networks" / f"{network.name}.json").exists()


@pytest.fixture
def fresh_engine():
    reason = can_run_private_engine()
    if reason:
        pytest.skip(f"a second engine {reason}")
    with private_engine() as (engine, client):
        yield engine, client


def test_export_then_import_on_a_fresh_engine_makes_the_same_networks_and_properties(
    dokku: DokkuHost, docker_client: docker.DockerClient, network_name: str, fresh_engine, tmp_path
):
    engine, fresh = fresh_engine
    dokku.create_app(APP)
    create(dokku, network_name, *CREATE_OPTIONS)
    for key, value in (("attach-post-create", network_name), ("tld", "svc.local")):
        assert dokku.command("set", APP, key, value).returncode == 0
    assert dokku.command("set", "--global", "bind-all-interfaces", "true").returncode == 0
    exported = dokku.command("export")
    assert (exported.returncode, exported.stderr) == (0, "")
    # The new host: another DOKKU_LIB_ROOT with the app, another engine.
    new_root, new_lib = tmp_path / "new-home", tmp_path / "new-lib"
    (new_root / APP).mkdir(parents=True)
    new = DokkuHost(
        dokku.plugin_dir,
        new_root,
        new_lib,
        dokku.env | {"DOKKU_ROOT": str(new_root), "DOKKU_LIB_ROOT": str(new_lib), "DOCKER_HOST": engine.url},
    )

    imported = new.command("import", stdin=exported.stdout)

    assert (imported.returncode, imported.stderr) == (0, "")
    assert imported.stdout.splitlines() == [
        f"-----> Creating network {network_name}",
        "-----> Set network properties of --global: bind-all-interfaces=true",
        f"-----> Set network properties of {APP}: attach-post-create={network_name}, tld=svc.local",
    ]
    config, options, labels, network_id = ipam(fresh, network_name)
    assert config == [{"Subnet": SUBNET, "IPRange": IP_RANGE, "Gateway": GATEWAY}]
    assert config == ipam(docker_client, network_name)[0]
    assert options == {"com.docker.network.driver.mtu": "1400"}
    assert labels == ipam(docker_client, network_name)[2]
    for owner in (APP, "--global"):
        old = dokku.command("report", owner, "--format", "json")
        assert json.loads(new.command("report", owner, "--format", "json").stdout) == json.loads(old.stdout)
    assert new.command("export").stdout == exported.stdout

    before = new.snapshot()
    again = new.command("import", stdin=exported.stdout)

    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.splitlines() == [
        f"       Network {network_name} exists",
        "       Network properties of --global unchanged",
        f"       Network properties of {APP} unchanged",
    ]
    assert ipam(fresh, network_name)[3] == network_id
    assert new.snapshot() == before


@pytest.mark.usefixtures("docker_client")
def test_export_of_one_app_holds_it_and_the_networks_it_names(dokku: DokkuHost, network_name: str):
    other = f"{network_name}-other"
    for name in (network_name, other):
        create(dokku, name, "--label", f"{RESOURCE_LABEL}={OWNER}")
    try:
        for app in (APP, "other-app"):
            dokku.create_app(app)
        assert dokku.command("set", APP, "initial-network", network_name).returncode == 0
        assert dokku.command("set", "other-app", "initial-network", other).returncode == 0
        assert dokku.command("set", "--global", "tld", "svc.local").returncode == 0

        result = dokku.command("export", "--app", APP)

        assert (result.returncode, result.stderr) == (0, "")
        exported = json.loads(result.stdout)
        assert [network["name"] for network in exported["networks"]] == [network_name]
        assert (exported["global"], exported["apps"]) == ({}, {APP: {"initial-network": network_name}})
    finally:
        dokku.command("destroy", other, "--force")


# --- made again before Dokku creates a container ---------------------------------------------------


@pytest.fixture
def removed_networks(dokku: DokkuHost, docker_client: docker.DockerClient, network_name: str):
    """An app whose initial-network and attach-post-create were made by network:create, then
    removed from the engine by hand (`docker network rm`, a prune, a new data root)."""
    dokku.create_app(APP)
    attached = f"{network_name}-attached"
    create(dokku, network_name, *CREATE_OPTIONS)
    create(dokku, attached, "--subnet", "10.234.0.0/24", "--label", f"{RESOURCE_LABEL}={OWNER}")
    assert dokku.command("set", APP, "initial-network", network_name).returncode == 0
    assert dokku.command("set", APP, "attach-post-create", attached).returncode == 0
    before = {name: ipam(docker_client, name)[:3] for name in (network_name, attached)}
    for name in (network_name, attached):
        docker_client.api.remove_network(name)
    return network_name, attached, before  # made again with RESOURCE_LABEL: the sweep removes them


@pytest.mark.parametrize("script", [DEPLOY_DOCKER_ARGS, PRE_START_DOCKER_ARGS], ids=["deploy", "pre-start"])
def test_dokku_creates_the_container_on_the_recreated_networks(
    dokku: DokkuHost, removed_networks, docker_resources: DockerResources, test_image: str, script: str
):
    # removed_networks first: its networks outlive the containers docker_resources removes.
    initial, attached, before = removed_networks

    result = replay(dokku, script)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"--network={initial}"]  # docker-args-deploy is not ours
    assert result.stderr == f"-----> Recreating network {initial}\n-----> Recreating network {attached}\n"
    container = docker_resources.app_container(APP, network=initial, start=False)
    created = replay(dokku, AFTER_CREATE, CID=container.id)
    assert (created.returncode, created.stderr) == (0, "")
    container.start()
    container.reload()
    assert set(container.attrs["NetworkSettings"]["Networks"]) == {initial, attached}
    assert {name: ipam(docker_resources.client, name)[:3] for name in (initial, attached)} == before
    assert container.attrs["NetworkSettings"]["Networks"][initial]["IPAddress"].startswith("10.231.4.")


def test_an_unrecorded_missing_network_is_named_before_any_container_exists(
    dokku: DokkuHost, docker_client: docker.DockerClient
):
    dokku.create_app(APP)
    missing = f"dnt-{uuid.uuid4().hex[:10]}"
    dokku.write_property(APP, "attach-post-deploy", missing)

    result = replay(dokku, DEPLOY_DOCKER_ARGS + 'echo "docker container create $DOCKER_ARGS"\n')

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"{WARN}Network {missing} (the attach-post-deploy of {APP}) does not exist and has no record"
        f" to recreate it from: make it with `dokku network:create {missing}` and its options, or import"
        " a backup with `dokku network:import`\n"
    )
    assert docker_client.api.networks(names=[missing]) == []


@pytest.mark.usefixtures("docker_client")
def test_a_hand_edited_container_mode_is_refused_alike_before_and_after_the_container_is_created(
    dokku: DokkuHost,
):
    """Both triggers read a stored network with one rule: neither advises a network:create that
    network:create refuses."""
    dokku.create_app(APP)
    dokku.write_property(APP, "attach-post-create", "container:abc")
    refused = f"{WARN}Invalid attach-post-create stored for {APP}: container:abc\n"

    before = replay(dokku, DEPLOY_DOCKER_ARGS)
    after = replay(dokku, AFTER_CREATE, CID="0123abcd")

    assert (before.returncode, before.stdout, before.stderr) == (1, "", refused)
    assert (after.returncode, after.stdout, after.stderr) == (1, "", refused)


def test_containers_deployed_side_by_side_make_a_missing_network_once(
    dokku: DokkuHost, docker_client: docker.DockerClient, removed_networks
):
    initial, attached, before = removed_networks
    # scheduler-docker-local deploys a process type's containers in parallel (GNU parallel).
    script = "; ".join(DEPLOY_DOCKER_ARGS.strip().splitlines())
    parallel = f"({script}) >out.1 2>err.1 & ({script}) >out.2 2>err.2 & wait\ncat out.1 out.2 err.1 err.2"

    result = replay(dokku, f"cd {dokku.dokku_root.parent}\n{parallel}")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == [f"--network={initial}"] * 2, result.stdout
    assert " !" not in result.stdout
    for name in (initial, attached):
        assert result.stdout.count(f"-----> Recreating network {name}\n") == 1
    for name in (initial, attached):
        listed = docker_client.api.networks(names=[name])
        assert [found["Name"] for found in listed].count(name) == 1
        assert ipam(docker_client, name)[:3] == before[name]
