"""This host's own interfaces, routes and addresses, which a network the plugin makes must not
take (docs/reference.md: The host's interfaces and routes).

A bridge network given `com.docker.network.bridge.name` of an interface that exists makes
Docker take that interface (and replace its address); a macvlan or ipvlan network whose
`parent` is a bridge, or a port of one, puts the network on someone else's switch; a bridge
network whose subnet holds a host route or address takes that traffic from the host. The
interfaces are read from /sys/class/net, the routes from /proc (no subprocess), and only
when the engine runs in this host's network namespace: a remote engine's host, or the host
of an engine in a container or another namespace, is not the one these files describe.
"""

from __future__ import annotations

import ipaddress
import os
import sys

from network_plugin.error_handler import PluginError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from network_plugin.network_options import CreateOptions, IPNetwork

SYS_NET = "/sys/class/net"
PROC_NET = "/proc/net"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
UNIX = "unix://"
BRIDGE = "bridge"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
PARENT_OPTION = "parent"
PARENTED_DRIVERS = ("macvlan", "ipvlan")
# rtnetlink's route flags as /proc prints them.
RTF_UP = 0x1
RTF_REJECT = 0x200
RTF_LOCAL = 0x80000000
IPV4_ROUTE_FIELDS = 8
IPV6_ROUTE_FIELDS = 10
CRED_FORMAT = "3i"  # struct ucred: pid, uid, gid


def engine_shares_host_network() -> bool:
    """Whether the engine answers on a unix socket from a process in this network namespace:
    only then are this host's interfaces and routes those its networks land beside."""
    host = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    if not host.startswith(UNIX):
        return False
    import socket
    import struct

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(host[len(UNIX) :])
            credentials = probe.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(CRED_FORMAT)
            )
        pid = struct.unpack(CRED_FORMAT, credentials)[0]
        if pid <= 0:
            return False  # the engine runs in a process namespace not ours (Dokku in a container)
        # /proc/<pid>/net is the network namespace of that process, readable by any user: the
        # namespace link (/proc/<pid>/ns/net) is not, to the Dokku user.
        ours, theirs = os.stat(os.path.join(PROC_NET, "dev")), os.stat(f"/proc/{pid}/net/dev")
    except OSError:
        return False
    return (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)


def verify_made(made: list[tuple[str, CreateOptions]], refused: str) -> None:
    """Refuse (`refused` then the reason) networks an import or a record would make that take
    a host interface or route, when the engine shares this host's network."""
    if not made or not engine_shares_host_network():
        return
    for name, options in made:
        verify_interfaces(options, f"{refused}network {name}: option ")
        verify_routes(name, options, refused)


def verify_interfaces(options: CreateOptions, refused: str) -> None:
    """Refuse (`refused` then the reason) options naming a host interface the network would take."""
    if options.driver == BRIDGE and BRIDGE_NAME_OPTION in options.options:
        name = options.options[BRIDGE_NAME_OPTION]
        if name in _interfaces():
            raise PluginError(
                f"{refused}{BRIDGE_NAME_OPTION}={name}, {name} is an interface of this host:"
                " a bridge network makes a bridge of its own"
            )
    if options.driver in PARENTED_DRIVERS and PARENT_OPTION in options.options:
        name = options.options[PARENT_OPTION]
        taken = _taken_parent(name) if name in _interfaces() else ""
        if taken:
            raise PluginError(
                f"{refused}{PARENT_OPTION}={name}, {name} is {taken}: the parent of a"
                f" {options.driver} network is an uplink, not a bridge or one of its ports"
            )


def _interfaces() -> set[str]:
    try:
        return set(os.listdir(SYS_NET))
    except OSError:
        return set()


def _taken_parent(name: str) -> str:
    """What the existing interface `name` belongs to, when it is no uplink of its own: '' if it is one."""
    folder = os.path.join(SYS_NET, name)
    if os.path.isdir(os.path.join(folder, BRIDGE)):
        return "a bridge of this host"
    try:
        master = os.path.basename(os.readlink(os.path.join(folder, "master")))
    except OSError:
        return ""
    return f"a port of {master} on this host"


def verify_routes(name: str, options: CreateOptions, refused: str) -> None:
    """Refuse (`refused` then the reason) a bridge network whose subnet holds a host route or
    address (the default route aside). Macvlan and ipvlan networks share their parent's LAN by
    design, and an overlay network's subnet lives in the swarm, not in the host's routes."""
    if options.driver != BRIDGE or not options.pools:
        return
    host = host_routes()
    for pool in options.pools:
        subnet = ipaddress.ip_network(pool.subnet)
        taken = next((where for block, where in host if _overlap(subnet, block)), "")
        if taken:
            raise PluginError(f"{refused}subnet {subnet} of network {name} overlaps the host's {taken}")


def _overlap(subnet: IPNetwork, block: IPNetwork) -> bool:
    return subnet.version == block.version and subnet.overlaps(block)  # type: ignore[arg-type]


def host_routes() -> list[tuple[IPNetwork, str]]:
    """Every route and local address of this host but the default routes, each with how a
    line names it (`route 10.0.0.0/24 on eth0`, `address 10.0.0.5`)."""
    return [
        *parse_routes(_proc_text("route")),
        *parse_local_addresses(_proc_text("fib_trie")),
        *parse_ipv6_routes(_proc_text("ipv6_route")),
    ]


def _proc_text(name: str) -> str:
    try:
        with open(os.path.join(PROC_NET, name), encoding="ascii", errors="replace") as file:
            return file.read()
    except OSError:
        return ""  # a kernel without IPv6 has no ipv6_route


def parse_routes(text: str) -> list[tuple[IPNetwork, str]]:
    """/proc/net/route: each route that is up, not the default and not a reject route.
    Addresses are the kernel's words in host byte order, printed in hex."""
    found: list[tuple[IPNetwork, str]] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < IPV4_ROUTE_FIELDS:
            continue
        try:
            destination, flags, mask = (int(fields[index], 16) for index in (1, 3, 7))
        except ValueError:
            continue
        if mask == 0 or flags & RTF_REJECT or not flags & RTF_UP:
            continue
        address, netmask = (ipaddress.IPv4Address(_network_order(word)) for word in (destination, mask))
        try:
            network = ipaddress.IPv4Network(f"{address}/{netmask}", strict=False)
        except ValueError:
            continue  # a mask that is no prefix: no route the kernel makes
        found.append((network, f"route {network} on {fields[0]}"))
    return found


def _network_order(word: int) -> bytes:
    return word.to_bytes(4, sys.byteorder)


def parse_local_addresses(text: str) -> list[tuple[IPNetwork, str]]:
    """/proc/net/fib_trie: the host's own IPv4 addresses (a leaf followed by `/32 host LOCAL`),
    each once; those of 127.0.0.0/8 are no app network's anyway."""
    found: dict[ipaddress.IPv4Network, str] = {}
    leaf = ""
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == ["|--"] and len(fields) == 2:
            leaf = fields[1]
        elif fields == ["/32", "host", "LOCAL"] and leaf:
            try:
                network = ipaddress.IPv4Network(leaf)
            except ValueError:
                continue
            found.setdefault(network, f"address {leaf}")
    return list(found.items())


def parse_ipv6_routes(text: str) -> list[tuple[IPNetwork, str]]:
    """/proc/net/ipv6_route (every table: the local one lists the host's addresses): each route
    that is up, not the default and not a reject route."""
    found: list[tuple[IPNetwork, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < IPV6_ROUTE_FIELDS:
            continue
        try:
            address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
            length, flags = int(fields[1], 16), int(fields[8], 16)
            network = ipaddress.IPv6Network(f"{address}/{length}", strict=False)
        except ValueError:
            continue
        if length == 0 or flags & RTF_REJECT or not flags & RTF_UP:
            continue
        shown = f"address {address}" if flags & RTF_LOCAL else f"route {network}"
        found.append((network, f"{shown} on {fields[9]}"))
    return found
