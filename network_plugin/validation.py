"""Name and value rules, checked before anything reaches a path or a command line.

Checks use character sets rather than regular expressions: `re` costs a few
milliseconds to import, and `$` in a regex would let a trailing newline through.
"""

from __future__ import annotations

from network_plugin.error_handler import PluginError

_DIGITS = frozenset("0123456789")
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz") | _DIGITS
_ALNUM = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX_IP = frozenset("0123456789abcdefABCDEF.:")

# Older Dokku apps may contain `_`; new names may not, but both must keep working.
_APP_NAME_REST = _LOWER_ALNUM | frozenset("._-")
# What Dokku's Procfile parser accepts: `[A-Za-z0-9_-]+` (e.g. `_worker`).
_PROCESS_TYPE_CHARS = _ALNUM | frozenset("_-")
# Names Docker accepts that are also safe on Dokku's DOCKER_ARGS line (e.g. `_internal`).
_NETWORK_NAME_FIRST = _ALNUM | frozenset("_")
_NETWORK_NAME_REST = _ALNUM | frozenset("_.:@-")
_DNS_LABEL_REST = _LOWER_ALNUM | frozenset("-")

# The engine's own networks (`--network=host` etc. are its modes): never an app's network to
# attach, nor ours to destroy.
DOCKER_NETWORKS = frozenset({"bridge", "default", "host", "none"})

CONTAINER_MODE = "container:"
# The name of an app's own network (app-network) is this prefix and the app's name: kept for it.
APP_NETWORK_PREFIX = "dokku-app-"
# A network the plugin makes has a record named for it (records.py): `<name>.json` in the
# 255 bytes of a file name.
MAX_NEW_NETWORK_BYTES = 255 - len(".json")
MAX_INDEX_DIGITS = 9
MAX_DNS_LABEL = 63
MAX_DNS_NAME = 253

APP_NAME_ERROR = (
    "App name must begin with lowercase alphanumeric character,"
    " and may only contain lowercase alphanumerics, dots, and hyphens"
)


def _matches(value: str, first: frozenset[str], rest: frozenset[str]) -> bool:
    return bool(value) and value[0] in first and rest.issuperset(value[1:])


def is_app_name(value: str) -> bool:
    return _matches(value, _LOWER_ALNUM, _APP_NAME_REST)


def app_network_owner(name: str) -> str:
    """The app whose own network `name` is (`dokku-app-<app>`), '' for any other name."""
    app = name[len(APP_NETWORK_PREFIX) :] if name.startswith(APP_NETWORK_PREFIX) else ""
    return app if is_app_name(app) else ""


def is_process_type(value: str) -> bool:
    return _matches(value, _PROCESS_TYPE_CHARS, _PROCESS_TYPE_CHARS)


def _is_number(value: str, max_digits: int) -> bool:
    """Decimal digits as a number is written: no leading zero (`01` beside `1` would name one
    container twice), at most `max_digits`."""
    return 0 < len(value) <= max_digits and _DIGITS.issuperset(value) and (value == "0" or value[0] != "0")


def is_container_index(value: str) -> bool:
    return _is_number(value, MAX_INDEX_DIGITS)


# Three rules of network names, one per purpose: a name Docker accepts (commands naming a
# network that may exist), a name an app's properties may store, a name the plugin may make.


def is_network_name(value: str) -> bool:
    """A name Docker accepts, safe on Dokku's DOCKER_ARGS line."""
    return _matches(value, _NETWORK_NAME_FIRST, _NETWORK_NAME_REST)


def is_app_network(value: str) -> bool:
    """A network an app's properties may name: not `container:<id>`, Docker's mode of sharing
    another container's network stack (the app's containers would have no address of their own)."""
    return is_network_name(value) and not value.startswith(CONTAINER_MODE)


def is_user_defined_network(mode: str) -> bool:
    """A container's network mode that names a network of its own: not one of Docker's
    (`bridge`, `default`, `host`, `none`), nor another container's stack (`container:<id>`)."""
    return bool(mode) and mode not in DOCKER_NETWORKS and not mode.startswith(CONTAINER_MODE)


def is_dns_name(value: str) -> bool:
    """Lower-case DNS name: dot-separated labels of at most 63 characters, at most 253 in all,
    no label starting or ending with `-`."""
    return 0 < len(value) <= MAX_DNS_NAME and all(
        len(label) <= MAX_DNS_LABEL
        and _matches(label, _LOWER_ALNUM, _DNS_LABEL_REST)
        and not label.endswith("-")
        for label in value.split(".")
    )


def is_host_name(value: str) -> bool:
    """A lower-case DNS name whose last label is not all digits (`10.0.0.256` is a broken address)."""
    return is_dns_name(value) and not _DIGITS.issuperset(value.rpartition(".")[2])


def is_port(value: str) -> bool:
    return _is_number(value, 5) and 1 <= int(value) <= 65535


def looks_like_ip(value: str) -> bool:
    """Shape check for values read back from disk, without the `ipaddress` import:
    a dotted quad of 0-255, or hex groups with at least two colons (IPv6)."""
    if not value or not _HEX_IP.issuperset(value):
        return False
    if ":" in value:
        return value.count(":") >= 2
    parts = value.split(".")
    return len(parts) == 4 and all(_is_octet(part) for part in parts)


def _is_octet(part: str) -> bool:
    """0-255 without leading zeros (which some tools read as octal)."""
    return part.isdigit() and len(part) <= 3 and int(part) <= 255 and (part == "0" or part[0] != "0")


def is_ip_address(value: str) -> bool:
    if not looks_like_ip(value):
        return False
    if ":" not in value:
        return True  # looks_like_ip checked every octet of the dotted quad
    import ipaddress  # IPv6 only: the module costs milliseconds at start-up

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_listener(value: str) -> bool:
    """`static-web-listener`: an IP address, or `host:port` (IPv6 as `[addr]:port`)."""
    if is_ip_address(value):
        return True
    host, separator, port = value.rpartition(":")
    if not separator or not is_port(port):
        return False
    if host.startswith("[") and host.endswith("]"):
        return ":" in host and is_ip_address(host[1:-1])
    return is_listener_host(host)


def is_listener_host(value: str) -> bool:
    """What an `IP.<proc>.<n>` file may hold: an IP address, or the DNS host name of a
    static web listener (`localhost:8080` makes the scheduler write back `localhost`).
    A name whose last label is all digits (`10.0.0.256`) is a broken address, not a host."""
    if is_ip_address(value):
        return True
    # ASCII first: case folding turns the Kelvin sign (U+212A) into `k`.
    return value.isascii() and is_host_name(value.lower())


def listener_host(value: str) -> str:
    """The address part of a static listener: `10.0.0.1:5000` -> `10.0.0.1`."""
    if is_ip_address(value):
        return value
    host = value.rpartition(":")[0]
    return host[1:-1] if host.startswith("[") else host


# Address space no app network may take, and why (the first one a subnet overlaps is named).
# IPv4 has global, private and shared space left; IPv6 only global unicast and unique local.
_UNUSABLE_SPACES = (
    ("0.0.0.0/8", "unspecified space"),
    ("127.0.0.0/8", "loopback space (the host's own addresses)"),
    ("169.254.0.0/16", "link-local space (never routed)"),
    ("224.0.0.0/4", "multicast space"),
    ("240.0.0.0/4", "reserved space"),
    ("::/128", "unspecified space"),
    ("::1/128", "loopback space (the host's own address)"),
    ("fe80::/10", "link-local space (never routed)"),
    ("ff00::/8", "multicast space"),
)
_USABLE_IPV6 = ("2000::/3", "fc00::/7")


def unusable_space(value: str) -> str:
    """Why the subnet or address `value` (checked CIDR or IP) cannot hold containers; '' when it can."""
    import ipaddress  # network:create only

    network = ipaddress.ip_network(value)
    for space, why in _UNUSABLE_SPACES:
        other = ipaddress.ip_network(space)
        if other.version == network.version and network.overlaps(other):  # type: ignore[arg-type]
            return f"it overlaps {space}, {why}"
    if network.version == 6 and not any(
        network.subnet_of(ipaddress.IPv6Network(space))  # type: ignore[arg-type]
        for space in _USABLE_IPV6
    ):
        return "it lies outside global unicast (2000::/3) and unique local (fc00::/7) space: reserved"
    return ""


def verify_app_name(app: str) -> None:
    if not is_app_name(app):
        raise PluginError(APP_NAME_ERROR)


def verify_process_type(process_type: str) -> None:
    if not is_process_type(process_type):
        raise PluginError(f"Invalid process type specified: {process_type}")


def verify_container_index(index: str) -> None:
    if not is_container_index(index):
        raise PluginError(f"Invalid container index specified: {index}")


def verify_network_name(name: str) -> None:
    """A network named on the command line: a name Docker accepts."""
    if not name:
        raise PluginError("No network name specified")
    if not is_network_name(name):
        raise PluginError(f"Invalid network name specified: {name}")


def verify_app_network(name: str) -> None:
    """A network an app's properties may name (is_app_network), or the line why not."""
    if name.startswith(CONTAINER_MODE):
        raise PluginError(
            f"Invalid network name specified: {name}, container:<id> shares another container's"
            " network stack, which gives the app no address of its own"
        )
    if not is_network_name(name):
        raise PluginError(f"Invalid network name specified: {name}")


def verify_new_network(name: str) -> None:
    """A network network:create and network:import may make: a name Docker accepts that an app
    may name, not one of Docker's own, short enough for its record's file name."""
    if not is_network_name(name):
        raise PluginError(f"Invalid network name specified: {name}")
    verify_app_network(name)
    if name in DOCKER_NETWORKS:
        # `default` names the engine's network mode; the others exist on every engine.
        raise PluginError(f"Invalid network name specified: {name}, one of Docker's own networks")
    if len(name.encode()) > MAX_NEW_NETWORK_BYTES:
        raise PluginError(f"Invalid network name specified: {name}")


def verify_format(output_format: str, text_format: str) -> None:
    """`--format` takes `json` or the command's text layout (`stdout` or `text`)."""
    if output_format not in (text_format, "json"):
        raise PluginError(f"Invalid format specified, use either {text_format} or json")
