"""An app's network of its own (`app-network`, docs/reference.md: Apps on networks of their own),
on the real engine: made at the app's first docker-args from the global pool, one /24 per app,
race-free; named by nobody else; the service links of its containers connected; removed at
post-delete. Each app is named by `docker_fixtures.app_name`, so its network is swept."""

from __future__ import annotations

import ipaddress
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from network_plugin.error_handler import PluginError
from network_plugin.subnet_pool import free_block, parse_pool
from tests.docker_fixtures import SERVICE_PAGE, SERVICE_PORT, DockerResources, app_name, exec_in
from tests.host import DokkuHost
from tests.polling import wait_for

ALIAS = "dokku-postgres-db"
CREATING = re.compile(r"-----> Creating network (dokku-app-\S+) for (\S+) on (10\.\d+\.\d+\.0/24)")
DEPLOY_ARGS = " --rm -e PORT=5000 "


def network_of(app: str) -> str:
    return f"dokku-app-{app}"


def app_on_its_network(dokku: DokkuHost) -> str:
    app = app_name()
    dokku.create_app(app)
    assert dokku.command("set", app, "app-network", "true").returncode == 0
    return app


def deploy_args(dokku: DokkuHost, app: str, process_type: str = "web"):
    """`docker-args-process-deploy` as scheduler-docker-local calls it for a web container."""
    return dokku.trigger(
        "docker-args-process-deploy",
        app,
        "herokuish",
        "dokku/app:latest",
        process_type,
        "1",
        stdin=DEPLOY_ARGS,
    )


def made(dokku: DokkuHost, app: str) -> ipaddress.IPv4Network:
    """The app's first deploy makes its network: the subnet it says it took."""
    result = deploy_args(dokku, app)
    assert (result.returncode, result.stdout) == (0, f" --network={network_of(app)} {DEPLOY_ARGS}"), (
        result.stderr
    )
    found = CREATING.fullmatch(result.stderr.rstrip("\n"))
    assert found and found.group(1, 2) == (network_of(app), app), result.stderr
    return ipaddress.IPv4Network(found.group(3))


def subnets(resources: DockerResources, name: str) -> list[str]:
    network = resources.client.api.inspect_network(name)
    return [entry["Subnet"] for entry in network["IPAM"]["Config"]]


def report_field(dokku: DokkuHost, app: str, field: str) -> str:
    result = dokku.command("report", app, f"--network-{field}")
    assert result.returncode == 0, result.stderr
    return result.stdout.rstrip("\n")


def exists(resources: DockerResources, name: str) -> bool:
    return bool(resources.client.api.networks(names=[name]))


# --- without the engine ------------------------------------------------------------------------


def test_the_first_free_block_is_taken_in_address_order_past_any_overlap():
    pool = ipaddress.IPv4Network("10.224.0.0/22")
    taken = [ipaddress.IPv4Network(value) for value in ("10.224.0.0/24", "10.224.1.128/25", "172.17.0.0/16")]
    assert free_block(pool, taken) == ipaddress.IPv4Network("10.224.2.0/24")
    assert free_block(pool, [ipaddress.IPv4Network("10.224.0.0/16")]) is None
    assert free_block(pool, [ipaddress.IPv4Network("10.224.3.0/24")]) == ipaddress.IPv4Network(
        "10.224.0.0/24"
    )
    assert free_block(ipaddress.IPv4Network("10.224.0.0/24"), []) == ipaddress.IPv4Network("10.224.0.0/24")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("10.224.0.0/25", "each app takes a /24: use /24 or wider"),
        ("fd00::/64", "use an IPv4 subnet in CIDR notation such as 10.224.0.0/12"),
        ("10.224.0.1/12", "use an IPv4 subnet in CIDR notation such as 10.224.0.0/12"),
    ],
)
def test_a_pool_that_cannot_hold_app_networks_is_refused(value, why):
    with pytest.raises(PluginError) as refused:
        parse_pool(value)
    assert str(refused.value) == f"Invalid app-network-pool specified: {value}, {why}"


def test_the_pool_is_global_only_and_checked_when_set(dokku: DokkuHost):
    dokku.create_app("node-js-app")
    per_app = dokku.command("set", "node-js-app", "app-network-pool", "10.250.0.0/16")
    narrow = dokku.command("set", "--global", "app-network-pool", "10.250.0.0/28")
    assert (per_app.returncode, per_app.stderr) == (1, " !     Property can only be specified globally\n")
    assert narrow.returncode == 1
    assert narrow.stderr == (
        " !     Invalid app-network-pool specified: 10.250.0.0/28, each app takes a /24: use /24 or wider\n"
    )
    assert not dokku.property_file("--global", "app-network-pool").exists()


# --- on the engine ---------------------------------------------------------------------------

ON_ENGINE = pytest.mark.usefixtures("test_image")


@ON_ENGINE
def test_the_first_deploy_makes_the_apps_network_labelled_recorded_and_later_ones_say_nothing(
    dokku: DokkuHost, docker_resources: DockerResources
):
    app = app_on_its_network(dokku)

    subnet = made(dokku, app)

    network = docker_resources.client.api.inspect_network(network_of(app))
    assert network["Driver"] == "bridge"
    assert network["Labels"]["com.dokku.app-name"] == app
    assert network["Labels"]["com.dokku.network-name"] == network_of(app)
    assert subnets(docker_resources, network_of(app)) == [str(subnet)]
    assert subnet.subnet_of(ipaddress.IPv4Network("10.224.0.0/12"))  # the documented default pool
    record = json.loads(
        (dokku.lib_root / "data" / "network" / "networks" / f"{network_of(app)}.json").read_text()
    )
    assert str(subnet) in json.dumps(record)
    again = deploy_args(dokku, app)
    assert (again.returncode, again.stdout, again.stderr) == (
        0,
        f" --network={network_of(app)} {DEPLOY_ARGS}",
        "",
    )
    # Callers asking for the network that holds the app's addresses get it (openresty's label).
    asked = dokku.trigger("network-get-property", app, "initial-network")
    assert (asked.returncode, asked.stdout) == (0, f"{network_of(app)}\n")


@ON_ENGINE
def test_the_ip_lookup_and_the_report_follow_the_apps_network(
    dokku: DokkuHost, docker_resources: DockerResources
):
    app = app_on_its_network(dokku)
    root = dokku.dokku_root / app
    old = docker_resources.app_container(app, "web", 1, app_root=root)  # deployed before it was on
    old.reload()
    (root / "IP.web.1").write_text(old.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"])
    assert report_field(dokku, app, "app-network-status") == (
        "takes effect at the next deploy or ps:rebuild (containers on another network until then)"
    )
    assert report_field(dokku, app, "effective-initial-network") == network_of(app)
    subnet = made(dokku, app)
    new = docker_resources.app_container(app, "web", 1, app_root=root, network=network_of(app))

    lookup = dokku.trigger("network-get-ipaddr", app, "web", new.id)

    new.reload()
    ip = new.attrs["NetworkSettings"]["Networks"][network_of(app)]["IPAddress"]
    assert ipaddress.IPv4Address(ip) in subnet
    assert (lookup.returncode, lookup.stdout, lookup.stderr) == (0, f"{ip}\n", "")
    (root / "IP.web.1").write_text(ip)  # what the scheduler writes back
    assert report_field(dokku, app, "app-network-status") == "in use"
    assert dokku.command("set", app, "app-network", "false").returncode == 0
    assert report_field(dokku, app, "app-network-status") == (
        f"off: the containers leave {network_of(app)} at the next deploy or ps:rebuild"
    )


@ON_ENGINE
def test_concurrent_first_deploys_never_share_a_subnet_nor_make_two_networks(
    dokku: DokkuHost, docker_resources: DockerResources
):
    apps = [app_on_its_network(dokku) for _ in range(3)]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda app: deploy_args(dokku, app), [*apps, *apps]))

    assert [(r.returncode, r.stdout) for r in results] == [
        (0, f" --network={network_of(app)} {DEPLOY_ARGS}") for app in [*apps, *apps]
    ]
    # One creation line per app, whichever of its two deploys came first.
    lines = sorted(line for r in results for line in r.stderr.splitlines())
    assert [CREATING.fullmatch(line).group(2) for line in lines] == sorted(apps)  # type: ignore[union-attr]
    taken = [subnets(docker_resources, network_of(app)) for app in apps]
    assert all(len(each) == 1 for each in taken)
    assert len({each[0] for each in taken}) == len(apps)


@ON_ENGINE
def test_forty_apps_get_forty_networks_and_post_delete_removes_every_one(
    dokku: DokkuHost, docker_resources: DockerResources
):
    # More than Docker's default address pools hold (about 31 bridge networks).
    apps = [app_on_its_network(dokku) for _ in range(40)]

    with ThreadPoolExecutor(4) as pool:
        first = list(pool.map(lambda app: made(dokku, app), apps))
    assert len(set(first)) == 40
    with ThreadPoolExecutor(4) as pool:
        deleted = list(pool.map(lambda app: dokku.trigger("post-delete", app), apps))

    assert [(r.returncode, r.stdout, r.stderr) for r in deleted] == [
        (0, f"-----> Removed network {network_of(app)} of {app}\n", "") for app in apps
    ]
    assert not any(exists(docker_resources, network_of(app)) for app in apps)
    records = dokku.lib_root / "data" / "network" / "networks"
    assert not any((records / f"{network_of(app)}.json").exists() for app in apps)


@ON_ENGINE
def test_a_full_pool_is_one_line_with_the_fix(dokku: DokkuHost, docker_resources: DockerResources):
    first, second = app_on_its_network(dokku), app_on_its_network(dokku)
    # A pool of one block, the first app's.
    pool = str(made(dokku, first))
    assert dokku.command("set", "--global", "app-network-pool", pool).returncode == 0

    refused = deploy_args(dokku, second)

    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f" !     No free /24 left in app-network-pool {pool} (1 in all, each taken by a network, a record"
        " or a route of this host): give a wider or another pool with"
        " `dokku network:set --global app-network-pool <subnet>`, or remove networks of deleted apps\n"
    )
    assert not exists(docker_resources, network_of(second))


@ON_ENGINE
def test_an_apps_network_is_its_own(dokku: DokkuHost, docker_resources: DockerResources):
    app = app_on_its_network(dokku)
    made(dokku, app)
    dokku.create_app("other-app")
    own = network_of(app)
    refusal = f" !     Network {own} is the app network of {app}: only {app}'s containers join it\n"

    for target, key in (
        ("other-app", "attach-post-create"),
        ("other-app", "initial-network"),
        ("--global", "attach-post-deploy"),
        ("--global", "initial-network"),
    ):
        result = dokku.command("set", target, key, own)
        assert (result.returncode, result.stderr) == (1, refusal), (target, key)
        assert not dokku.property_file(target, key).exists()
    # The app itself may name it, as any network.
    assert dokku.command("set", app, "attach-post-deploy", own).returncode == 0
    created = dokku.command("create", network_of("new-app"))
    assert created.returncode == 1
    assert created.stderr == (
        f" !     Invalid network name specified: {network_of('new-app')}, dokku-app-<app> names the network"
        " of an app of its own: set app-network for new-app instead\n"
    )


@ON_ENGINE
def test_an_explicit_initial_network_or_a_network_mode_in_docker_options_wins(
    dokku: DokkuHost, docker_resources: DockerResources
):
    named, hosted = app_on_its_network(dokku), app_on_its_network(dokku)
    network = docker_resources.network().name
    assert dokku.command("set", named, "initial-network", network).returncode == 0
    options = dokku.lib_root / "config" / "docker-options" / hosted
    options.mkdir(parents=True)
    (options / "_default_.deploy").write_text("--restart=on-failure:10\n--network=host\n")

    on_named, on_host = deploy_args(dokku, named), deploy_args(dokku, hosted)

    assert (on_named.returncode, on_named.stdout, on_named.stderr) == (
        0,
        f" --network={network} {DEPLOY_ARGS}",
        "",
    )
    assert (on_host.returncode, on_host.stdout, on_host.stderr) == (0, DEPLOY_ARGS, "")
    assert not exists(docker_resources, network_of(named))
    assert not exists(docker_resources, network_of(hosted))
    assert (
        report_field(dokku, named, "app-network-status")
        == f"not used: its initial-network {network} is used instead"
    )
    assert (
        report_field(dokku, hosted, "app-network-status")
        == "not used: its docker options give --network=host"
    )
    warned = dokku.command("set", hosted, "app-network", "true")
    assert (
        warned.stderr == f" !     app-network of {hosted}: not used: its docker options give --network=host\n"
    )


@ON_ENGINE
def test_a_linked_service_answers_by_its_alias_and_post_delete_lets_it_go_on(
    dokku: DokkuHost, docker_resources: DockerResources
):
    app = app_on_its_network(dokku)
    made(dokku, app)
    service = docker_resources.service()
    container_id = docker_resources.created_by_scheduler(app, network_of(app), [f"{service.name}:{ALIAS}"])

    created = dokku.trigger("post-container-create", "app", container_id, app, "deploy", "web")
    docker_resources.client.api.start(container_id)

    assert (created.returncode, created.stdout, created.stderr) == (0, "", "")
    container = docker_resources.client.containers.get(container_id)

    def page() -> str:
        code, output = exec_in(container, ["wget", "-qO-", f"http://{ALIAS}:{SERVICE_PORT}/"])
        return output if code == 0 else ""

    assert wait_for(page, "the service by its alias").strip() == SERVICE_PAGE
    kept = dokku.trigger("post-delete", app)
    assert (kept.returncode, kept.stdout) == (0, "")
    assert kept.stderr.startswith(
        f" !     Network {network_of(app)} stays: containers of {app} still use it ("
    )
    assert exists(docker_resources, network_of(app))
    docker_resources.client.api.remove_container(container_id, force=True)

    deleted = dokku.trigger("post-delete", app)

    assert (deleted.returncode, deleted.stdout, deleted.stderr) == (
        0,
        f"-----> Removed network {network_of(app)} of {app}\n",
        "",
    )
    assert not exists(docker_resources, network_of(app))
    service.reload()
    assert service.status == "running"
    assert list(service.attrs["NetworkSettings"]["Networks"]) == ["bridge"]


@ON_ENGINE
def test_a_removed_network_comes_back_with_its_subnet_and_a_renamed_app_gets_its_own(
    dokku: DokkuHost, docker_resources: DockerResources
):
    # A pool no other test takes from: the tests' hosts share one engine but not their records,
    # so another host's app would take the block this one's record keeps.
    assert dokku.command("set", "--global", "app-network-pool", "10.238.0.0/16").returncode == 0
    app = app_on_its_network(dokku)
    subnet = made(dokku, app)
    docker_resources.client.api.remove_network(network_of(app))  # a Docker reset, say

    again = deploy_args(dokku, app)

    assert (again.returncode, again.stdout) == (0, f" --network={network_of(app)} {DEPLOY_ARGS}")
    assert subnets(docker_resources, network_of(app)) == [str(subnet)]
    renamed = app_name()
    dokku.create_app(renamed)
    moved = dokku.trigger("post-app-rename-setup", app, renamed)
    assert moved.returncode == 0, moved.stderr
    assert report_field(dokku, renamed, "app-network") == "true"
    assert made(dokku, renamed) != subnet  # never one network for two apps
