"""Networks the plugin makes never take a host interface, route or address (docs/reference.md:
The host's interfaces and routes): the parsing of /proc's route files from sample text, which
engine counts as this host's, and, as root on the real engine, a bridge and a route of an
interface each test makes and removes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from ipaddress import ip_network

import pytest

from network_plugin import host_network
from tests.docker_fixtures import OWNER, RESOURCE_LABEL, DockerResources
from tests.host import DokkuHost
from tests.test_import_checks import SECOND_OCTETS, assert_refused, document, on_engine

WARN = " !     "
APP = "node-js-app"


def word(*octets: int) -> str:
    """An IPv4 address as /proc/net/route prints it: the kernel's word in host byte order."""
    return f"{int.from_bytes(bytes(octets), sys.byteorder):08X}"


ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"


def route_line(interface: str, destination: str, flags: str, mask: str) -> str:
    return f"{interface}\t{destination}\t{word(0, 0, 0, 0)}\t{flags}\t0\t0\t0\t{mask}\t0\t0\t0"


def test_ipv4_routes_are_read_but_the_default_and_reject_routes():
    text = "\n".join([
        ROUTE_HEADER,
        route_line("eth0", word(0, 0, 0, 0), "0003", word(0, 0, 0, 0)),  # default
        route_line("eth0", word(192, 168, 1, 0), "0001", word(255, 255, 255, 0)),
        route_line("virbr0", word(192, 168, 122, 0), "0001", word(255, 255, 255, 0)),
        route_line("lo", word(10, 0, 0, 0), "0201", word(255, 0, 0, 0)),  # unreachable
        route_line("tun0", word(10, 8, 0, 0), "0000", word(255, 255, 0, 0)),  # down
        "garbage",
    ])  # fmt: skip

    assert host_network.parse_routes(text) == [
        (ip_network("192.168.1.0/24"), "route 192.168.1.0/24 on eth0"),
        (ip_network("192.168.122.0/24"), "route 192.168.122.0/24 on virbr0"),
    ]


FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 4
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
     |-- 203.0.113.7
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 4
     |-- 192.0.2.2
        /32 host LOCAL
"""


def test_local_ipv4_addresses_are_read_from_the_fib_trie_once_each():
    assert host_network.parse_local_addresses(FIB_TRIE) == [
        (ip_network("127.0.0.1/32"), "address 127.0.0.1"),
        (ip_network("192.0.2.2/32"), "address 192.0.2.2"),
        (ip_network("203.0.113.7/32"), "address 203.0.113.7"),
    ]


ZERO = "0" * 32
FD00 = "fd00" + "0" * 28
IPV6_ROUTE = f"""{FD00} 40 {ZERO} 00 {ZERO} 00000100 00000002 00000000 00000001     eth0
{ZERO} 00 {ZERO} 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
fd000000000000000000000000000002 80 {ZERO} 00 {ZERO} 00000000 00000002 00000000 80200001     eth0
20010db8000000000000000000000000 20 {ZERO} 00 {ZERO} 00000400 00000001 00000000 00200200       lo
20010db8aaaa00000000000000000000 30 {ZERO} 00 {ZERO} 00000400 00000001 00000000 00000000     wg0
short line
"""


def test_ipv6_routes_and_addresses_are_read_but_the_default_and_reject_routes():
    assert host_network.parse_ipv6_routes(IPV6_ROUTE) == [
        (ip_network("fd00::/64"), "route fd00::/64 on eth0"),
        (ip_network("fd00::2/128"), "address fd00::2 on eth0"),
    ]


def test_an_engine_out_of_reach_or_on_tcp_is_not_this_host_s(monkeypatch: pytest.MonkeyPatch):
    for url in ("tcp://127.0.0.1:2376", "ssh://dokku@elsewhere", "unix:///nonexistent/docker.sock"):
        monkeypatch.setenv("DOCKER_HOST", url)
        assert not host_network.engine_shares_host_network(), url


@pytest.mark.usefixtures("docker_client")
def test_the_shared_engine_is_this_host_s(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert host_network.engine_shares_host_network()


# --- as root, on the real engine: an interface of this host ------------------------------------


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def skip_unless_root_beside_the_engine() -> None:
    """Only root makes an interface, and only one in the engine's network namespace counts."""
    if os.geteuid() != 0:
        pytest.skip("only root makes an interface")
    if not host_network.engine_shares_host_network():
        pytest.skip(
            "the engine runs in another network namespace (tools/sid-engine), where this host's"
            " interfaces are not its networks' neighbours: the plugin checks them only beside its engine"
        )


@pytest.fixture
def host_bridge() -> Iterator[str]:
    """A bridge of this host (as libvirt's virbr0 is), with an address of its own."""
    skip_unless_root_beside_the_engine()
    name = f"dnt-{os.getpid()}"
    ip("link", "add", name, "type", "bridge")
    try:
        ip("address", "add", "192.0.2.77/32", "dev", name)
        yield name
    finally:
        subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)


def addresses(interface: str) -> list[str]:
    shown = subprocess.run(
        ["ip", "-j", "address", "show", "dev", interface], check=True, capture_output=True, text=True
    )
    return [entry["local"] for link in json.loads(shown.stdout) for entry in link.get("addr_info", [])]


def fresh_name() -> str:
    return f"dnt-{uuid.uuid4().hex[:10]}"


def bridge_spec(name: str, bridge: str) -> dict:
    return {
        "name": name,
        "options": {"com.docker.network.bridge.name": bridge},
        "labels": {RESOURCE_LABEL: OWNER},
    }


@pytest.mark.root
def test_create_naming_a_host_bridge_is_refused_and_the_bridge_keeps_its_address(
    dokku: DokkuHost, docker_resources: DockerResources, host_bridge: str
):
    name = fresh_name()

    result = dokku.command(
        "create",
        name,
        "--opt",
        f"com.docker.network.bridge.name={host_bridge}",
        "--label",
        f"{RESOURCE_LABEL}={OWNER}",
    )

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"{WARN}Invalid option specified: com.docker.network.bridge.name={host_bridge}, {host_bridge} is an"
        " interface of this host: a bridge network makes a bridge of its own\n",
    )
    assert on_engine(docker_resources.client, name) == []
    assert addresses(host_bridge) == ["192.0.2.77"]


@pytest.mark.root
@pytest.mark.parametrize("driver", ["macvlan", "ipvlan"])
def test_create_of_a_network_whose_parent_is_a_host_bridge_is_refused(
    dokku: DokkuHost, docker_resources: DockerResources, host_bridge: str, driver: str
):
    name = fresh_name()

    result = dokku.command(
        "create",
        name,
        "--driver",
        driver,
        "--opt",
        f"parent={host_bridge}",
        "--label",
        f"{RESOURCE_LABEL}={OWNER}",
    )

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"{WARN}Invalid option specified: parent={host_bridge}, {host_bridge} is a bridge of this host:"
        f" the parent of a {driver} network is an uplink, not a bridge or one of its ports\n",
    )
    assert on_engine(docker_resources.client, name) == []


@pytest.mark.root
def test_an_import_naming_a_host_bridge_is_refused_before_any_network_is_made(
    dokku: DokkuHost, docker_resources: DockerResources, host_bridge: str
):
    first, second = fresh_name(), fresh_name()
    text = document({"name": first, "labels": {RESOURCE_LABEL: OWNER}}, bridge_spec(second, host_bridge))

    assert_refused(
        dokku,
        text,
        f"network {second}: option com.docker.network.bridge.name={host_bridge}, {host_bridge} is an"
        " interface of this host: a bridge network makes a bridge of its own",
    )
    assert on_engine(docker_resources.client, first, second) == []
    assert addresses(host_bridge) == ["192.0.2.77"]


def write_record(dokku: DokkuHost, spec: dict) -> None:
    folder = dokku.lib_root / "data" / "network" / "networks"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"version": 1, "driver": "bridge", "pools": [], "internal": False, "ipv6": False, **spec}
    (folder / f"{spec['name']}.json").write_text(json.dumps(record))


def deploy_args(dokku: DokkuHost) -> subprocess.CompletedProcess[str]:
    return dokku.trigger("docker-args-process-deploy", APP, "herokuish", "latest", "web", "1")


@pytest.mark.root
def test_a_record_naming_a_host_bridge_is_not_recreated(
    dokku: DokkuHost, docker_resources: DockerResources, host_bridge: str
):
    """As when the engine left the network's own bridge behind: the record is not made again
    over it, and the container is not created."""
    name = fresh_name()
    dokku.create_app(APP)
    write_record(dokku, bridge_spec(name, host_bridge))
    dokku.write_property(APP, "initial-network", name)

    result = deploy_args(dokku)

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"{WARN}Not recreating the networks of {APP}: network {name}: option"
        f" com.docker.network.bridge.name={host_bridge}, {host_bridge} is an interface of this host: a bridge"
        " network makes a bridge of its own\n",
    )
    assert on_engine(docker_resources.client, name) == []
    assert addresses(host_bridge) == ["192.0.2.77"]


@pytest.fixture
def host_route() -> Iterator[str]:
    """An interface of this host (a bridge: no kernel module to load) holding 10.<octet>.3.1/24:
    the route 10.<octet>.3.0/24 on it."""
    skip_unless_root_beside_the_engine()
    name = f"dntr-{os.getpid()}"
    octet = random.choice(SECOND_OCTETS)
    ip("link", "add", name, "type", "bridge")
    try:
        ip("address", "add", f"10.{octet}.3.1/24", "dev", name)
        ip("link", "set", name, "up")
        yield f"10.{octet}"
    finally:
        subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)


@pytest.mark.root
def test_an_import_whose_subnet_holds_a_host_route_is_refused_naming_both(
    dokku: DokkuHost, docker_resources: DockerResources, host_route: str
):
    name = fresh_name()
    text = document(
        {"name": name, "pools": [{"subnet": f"{host_route}.0.0/16"}], "labels": {RESOURCE_LABEL: OWNER}}
    )

    assert_refused(
        dokku,
        text,
        f"subnet {host_route}.0.0/16 of network {name} overlaps the host's route {host_route}.3.0/24 on"
        f" dntr-{os.getpid()}",
    )
    assert on_engine(docker_resources.client, name) == []


@pytest.mark.root
def test_a_record_whose_subnet_holds_a_host_address_is_not_recreated(
    dokku: DokkuHost, docker_resources: DockerResources, host_route: str
):
    name = fresh_name()
    dokku.create_app(APP)
    write_record(
        dokku,
        {"name": name, "pools": [{"subnet": f"{host_route}.3.0/28"}], "labels": {RESOURCE_LABEL: OWNER}},
    )
    dokku.write_property(APP, "attach-post-create", name)

    result = deploy_args(dokku)

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"{WARN}Not recreating the networks of {APP}: subnet {host_route}.3.0/28 of network {name} overlaps"
        f" the host's route {host_route}.3.0/24 on dntr-{os.getpid()}\n"
    )
    assert on_engine(docker_resources.client, name) == []
