"""`network:create` options, parsed and checked before the engine sees them
(docs/reference.md: network:create).

Each bad value is one ` !     ` line naming it: the engine would either refuse it with a
message about its own internals, or worse, accept it (a subnet with host bits set, an
IPv6 subnet without `--ipv6`) and create something other than what was asked.
Subnets, ranges and gateways are paired the way `docker network create` pairs them:
each range and gateway belongs to the one subnet that contains it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from network_plugin.docker_engine import NETWORK_NAME_LABEL
from network_plugin.error_handler import PluginError
from network_plugin.validation import unusable_space, verify_new_network

DRIVERS = ("bridge", "ipvlan", "macvlan", "overlay")
OVERLAY = "overlay"

TYPE_CHECKING = False
if TYPE_CHECKING:
    IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Pool:
    """One IPAM pool: a subnet and, optionally, its range and gateway."""

    subnet: str
    ip_range: str = ""
    gateway: str = ""


@dataclass(frozen=True)
class CreateOptions:
    driver: str
    pools: tuple[Pool, ...]
    internal: bool
    ipv6: bool
    options: dict[str, str]
    labels: dict[str, str]


def parse(
    name: str,
    *,
    driver: str,
    subnets: list[str],
    gateways: list[str],
    ip_ranges: list[str],
    internal: bool,
    ipv6: bool,
    opts: list[str],
    labels: list[str],
) -> CreateOptions:
    """Check every option of `network:create <name>`; the first bad value raises PluginError."""
    verify_new_network(name)
    if driver not in DRIVERS:
        raise PluginError(f"Invalid driver specified: {driver}, use one of {', '.join(DRIVERS)}")
    networks = [_network(value, "subnet") for value in subnets]
    for index, network in enumerate(networks):
        for other in networks[:index]:
            if network.overlaps(other):
                raise PluginError(f"Subnet {network} overlaps subnet {other}")
        if network.version == 6 and not ipv6:
            raise PluginError(f"Subnet {network} is IPv6: add --ipv6")
    ranges = _assign(networks, [_network(value, "ip range") for value in ip_ranges], "ip range")
    addresses = _assign(networks, [_address(value) for value in gateways], "gateway")
    pools = tuple(
        Pool(str(network), ranges.get(network, ""), addresses.get(network, "")) for network in networks
    )
    label_map = _key_values(labels, "label")
    if label_map.get(NETWORK_NAME_LABEL, name) != name:
        raise PluginError(f"Label {NETWORK_NAME_LABEL} is set by the plugin: it is always {name}")
    label_map[NETWORK_NAME_LABEL] = name
    return CreateOptions(driver, pools, internal, ipv6, _key_values(opts, "option"), label_map)


def _network(value: str, what: str) -> IPNetwork:
    _verify_unscoped(value, what)
    try:
        interface = ipaddress.ip_interface(value) if "/" in value else None
    except ValueError:
        interface = None
    if interface is None:
        raise PluginError(f"Invalid {what} specified: {value}, use CIDR notation such as 10.20.0.0/16")
    if interface.ip != interface.network.network_address:
        raise PluginError(f"Invalid {what} specified: {value}, host bits set: use {interface.network}")
    _verify_usable(value, what)
    return interface.network


def _address(value: str) -> IPAddress:
    _verify_unscoped(value, "gateway")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise PluginError(
            f"Invalid gateway specified: {value}, use an IP address such as 10.20.0.1"
        ) from None
    _verify_usable(value, "gateway")
    return address


def _verify_unscoped(value: str, what: str) -> None:
    if "%" in value:
        raise PluginError(
            f"Invalid {what} specified: {value}, a scoped address (%zone) names one of the host's interfaces"
        )


def _verify_usable(value: str, what: str) -> None:
    why = unusable_space(value)
    if why:
        raise PluginError(f"Invalid {what} specified: {value}, {why}")


def _assign(
    networks: list[IPNetwork], values: list[IPNetwork | IPAddress], what: str
) -> dict[IPNetwork, str]:
    """Each range or gateway goes to the subnet containing it; at most one per subnet."""
    assigned: dict[IPNetwork, str] = {}
    for value in values:
        home = next((network for network in networks if _within(value, network)), None)
        if home is None:
            raise PluginError(f"No subnet contains {what} {value}: give the --subnet it belongs to")
        if home in assigned:
            raise PluginError(f"Subnet {home} has more than one {what}: {assigned[home]} and {value}")
        assigned[home] = str(value)
    return assigned


def _within(value: IPNetwork | IPAddress, network: IPNetwork) -> bool:
    if value.version != network.version:
        return False
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value.subnet_of(network)  # type: ignore[arg-type]
    return value in network


def _key_values(values: list[str], what: str) -> dict[str, str]:
    """`KEY=VALUE` pairs; a later key wins, as with `docker network create`."""
    pairs: dict[str, str] = {}
    for value in values:
        key, separator, setting = value.partition("=")
        if not separator or not key or not key.isprintable() or any(c.isspace() for c in key):
            raise PluginError(f"Invalid {what} specified: {value}, use KEY=VALUE")
        if not setting.isprintable():
            raise PluginError(f"Invalid {what} specified: {value}, control characters are not allowed")
        pairs[key] = setting
    return pairs
