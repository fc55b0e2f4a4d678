"""`network:create` options against the local engine: what gets created, and the one line a
bad value earns before the engine sees anything (docs/reference.md: network:create)."""

from __future__ import annotations

import json

import pytest

from tests.host import DokkuHost

# Where no engine answers: a value refused before any engine call is refused here too.
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def test_create_with_every_option(dokku: DokkuHost, docker_client, network_name):
    bridge_name = f"br-{network_name[4:]}"
    result = dokku.command(
        "create",
        network_name,
        "--subnet",
        "10.201.0.0/16",
        "--gateway",
        "10.201.0.254",
        "--ip-range",
        "10.201.5.0/24",
        "--subnet",
        "fd00:dd:1::/64",
        "--ipv6",
        "--internal",
        "--opt",
        f"com.docker.network.bridge.name={bridge_name}",
        "--label",
        "team=backend",
        "--label",
        "empty=",
    )

    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"-----> Creating network {network_name}\n",
        "",
    )
    attrs = docker_client.networks.get(network_name).attrs
    assert (attrs["Driver"], attrs["Attachable"], attrs["Internal"], attrs["EnableIPv6"]) == (
        "bridge",
        True,
        True,
        True,
    )
    assert attrs["IPAM"]["Config"] == [
        {"Subnet": "10.201.0.0/16", "IPRange": "10.201.5.0/24", "Gateway": "10.201.0.254"},
        {"Subnet": "fd00:dd:1::/64"},
    ]
    assert attrs["Options"] == {"com.docker.network.bridge.name": bridge_name}
    assert attrs["Labels"] == {"com.dokku.network-name": network_name, "team": "backend", "empty": ""}

    text = dokku.command("info", network_name).stdout.splitlines()
    document = json.loads(dokku.command("info", network_name, "--format", "json").stdout)

    assert text[1:] == [
        f"       ID:            {attrs['Id']}",
        f"       Name:          {network_name}",
        "       Driver:        bridge",
        "       Scope:         local",
        "       Dokku managed: true",
        "       Internal:      true",
        "       Attachable:    true",
        "       IPv6:          true",
        "       Subnets:       10.201.0.0/16 fd00:dd:1::/64",
        "       Gateways:      10.201.0.254",
        "       IP ranges:     10.201.5.0/24",
        f"       Options:       com.docker.network.bridge.name={bridge_name}",
        f"       Labels:        com.dokku.network-name={network_name} empty= team=backend",
        "       Apps:          ",
        "       Containers:    0",
    ]
    assert {key: document[key] for key in ("Driver", "Internal", "IPv6", "Subnets", "Gateways")} == {
        "Driver": "bridge",
        "Internal": True,
        "IPv6": True,
        "Subnets": ["10.201.0.0/16", "fd00:dd:1::/64"],
        "Gateways": ["10.201.0.254"],
    }
    assert document["IPRanges"] == ["10.201.5.0/24"]
    assert document["Options"] == {"com.docker.network.bridge.name": bridge_name}
    assert document["Labels"] == {"com.dokku.network-name": network_name, "team": "backend", "empty": ""}


def test_a_gateway_and_range_find_their_own_subnet(dokku: DokkuHost, docker_client, network_name):
    """As with `docker network create`, order does not pair them: containment does."""
    result = dokku.command(
        "create",
        network_name,
        "--ipv6",
        "--gateway",
        "fd00:dd:2::1",
        "--subnet",
        "10.202.0.0/24",
        "--subnet",
        "fd00:dd:2::/64",
        "--gateway",
        "10.202.0.1",
    )

    assert result.returncode == 0, result.stderr
    assert docker_client.networks.get(network_name).attrs["IPAM"]["Config"] == [
        {"Subnet": "10.202.0.0/24", "Gateway": "10.202.0.1"},
        {"Subnet": "fd00:dd:2::/64", "Gateway": "fd00:dd:2::1"},
    ]


# network_name before docker_resources: the container goes first, then its network.
def test_a_container_gets_its_address_from_the_range(
    dokku: DokkuHost, docker_client, network_name, docker_resources, test_image
):
    dokku.command("create", network_name, "--subnet", "10.203.0.0/16", "--ip-range", "10.203.7.0/24")

    container = docker_resources.app_container("node-js-app", network=network_name)
    container.reload()

    assert container.attrs["NetworkSettings"]["Networks"][network_name]["IPAddress"].startswith("10.203.7.")


def test_the_driver_option_reaches_the_engine(dokku: DokkuHost, docker_client, network_name):
    result = dokku.command(
        "create", network_name, "--driver", "bridge", "--opt", "com.docker.network.mtu=1400"
    )

    assert result.returncode == 0, result.stderr
    attrs = docker_client.networks.get(network_name).attrs
    assert (attrs["Driver"], attrs["Options"]) == ("bridge", {"com.docker.network.mtu": "1400"})


OVERLAY_OUTSIDE_A_SWARM = (
    "Overlay networks need a Docker Swarm and this engine is in none:"
    " run `docker swarm init` here (or `docker swarm join` an existing swarm) first"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--driver", "weave"],
            "Invalid driver specified: weave, use one of bridge, ipvlan, macvlan, overlay",
        ),
        (["--driver", ""], "Invalid driver specified: , use one of bridge, ipvlan, macvlan, overlay"),
        (
            ["--subnet", "10.0.0.0"],
            "Invalid subnet specified: 10.0.0.0, use CIDR notation such as 10.20.0.0/16",
        ),
        (
            ["--subnet", "10.0.0.0/33"],
            "Invalid subnet specified: 10.0.0.0/33, use CIDR notation such as 10.20.0.0/16",
        ),
        (
            ["--subnet", "300.0.0.0/8"],
            "Invalid subnet specified: 300.0.0.0/8, use CIDR notation such as 10.20.0.0/16",
        ),
        (
            ["--subnet", "10.1.2.3/16"],
            "Invalid subnet specified: 10.1.2.3/16, host bits set: use 10.1.0.0/16",
        ),
        (
            ["--subnet", "10.9.0.0/16", "--subnet", "10.9.8.0/24"],
            "Subnet 10.9.8.0/24 overlaps subnet 10.9.0.0/16",
        ),
        (["--subnet", "fd00:1::/64"], "Subnet fd00:1::/64 is IPv6: add --ipv6"),
        (
            ["--subnet", "10.9.0.0/16", "--gateway", "10.9.0.300"],
            "Invalid gateway specified: 10.9.0.300, use an IP address such as 10.20.0.1",
        ),
        (
            ["--subnet", "10.9.0.0/16", "--gateway", "10.10.0.1"],
            "No subnet contains gateway 10.10.0.1: give the --subnet it belongs to",
        ),
        (["--gateway", "10.9.0.1"], "No subnet contains gateway 10.9.0.1: give the --subnet it belongs to"),
        (
            ["--subnet", "10.9.0.0/16", "--gateway", "10.9.0.1", "--gateway", "10.9.0.2"],
            "Subnet 10.9.0.0/16 has more than one gateway: 10.9.0.1 and 10.9.0.2",
        ),
        (
            ["--subnet", "10.9.0.0/16", "--ip-range", "10.9.1.0"],
            "Invalid ip range specified: 10.9.1.0, use CIDR notation such as 10.20.0.0/16",
        ),
        (
            ["--subnet", "10.9.0.0/16", "--ip-range", "10.8.0.0/24"],
            "No subnet contains ip range 10.8.0.0/24: give the --subnet it belongs to",
        ),
        (
            ["--subnet", "10.9.0.0/16", "--ip-range", "10.9.1.0/24", "--ip-range", "10.9.2.0/24"],
            "Subnet 10.9.0.0/16 has more than one ip range: 10.9.1.0/24 and 10.9.2.0/24",
        ),
        (["--opt", "mtu"], "Invalid option specified: mtu, use KEY=VALUE"),
        (["--opt", "=1400"], "Invalid option specified: =1400, use KEY=VALUE"),
        (["--label", "team"], "Invalid label specified: team, use KEY=VALUE"),
        (["--label", "a b=c"], "Invalid label specified: a b=c, use KEY=VALUE"),
        (["--label", "x\n=y"], "Invalid label specified: x\\n=y, use KEY=VALUE"),
        (
            ["--label", "com.dokku.network-name=other"],
            "Label com.dokku.network-name is set by the plugin: it is always {name}",
        ),
        (["--subnet"], "Option '--subnet' requires an argument."),
        (["--color", "blue"], "No such option: --color"),
    ],
)
def test_bad_values_are_one_line_before_the_engine_is_asked(dokku: DokkuHost, args, message):
    result = dokku.command("create", "dnt-refused", *args, env=NO_ENGINE)

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f" !     {message.format(name='dnt-refused')}\n",
    )


def test_an_overlay_network_outside_a_swarm_is_one_line_and_created_nowhere(
    dokku: DokkuHost, docker_client, network_name
):
    result = dokku.command("create", network_name, "--driver", "overlay")

    assert (result.returncode, result.stdout, result.stderr) == (1, "", f" !     {OVERLAY_OUTSIDE_A_SWARM}\n")
    assert not docker_client.networks.list(names=[network_name])


def test_the_name_is_checked_before_the_options(dokku: DokkuHost):
    result = dokku.command("create", "a/b", "--subnet", "nonsense", env=NO_ENGINE)

    assert (result.returncode, result.stderr) == (1, " !     Invalid network name specified: a/b\n")


def test_an_existing_network_is_not_touched(dokku: DokkuHost, docker_client, network_name):
    dokku.command("create", network_name, "--label", "first=yes")

    again = dokku.command("create", network_name, "--driver", "overlay")

    assert (again.returncode, again.stderr) == (1, f" !     Network {network_name} already exists\n")
    assert docker_client.networks.get(network_name).attrs["Labels"]["first"] == "yes"


def test_the_engine_s_own_refusal_is_one_line(dokku: DokkuHost, docker_client, network_name):
    """Valid values the bridge driver cannot use: the engine says why, in one line."""
    result = dokku.command("create", network_name, "--subnet", "10.204.0.0/24", "--subnet", "10.205.0.0/24")

    assert (result.returncode, result.stderr) == (
        1,
        " !     Docker engine error: bridge driver doesn't support multiple subnets\n",
    )
    assert result.stdout == ""  # nothing said to be done before the engine agreed
    assert not docker_client.networks.list(names=[network_name])
