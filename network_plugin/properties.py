"""The property store: one file per property, per app and for `--global`.

Layout and content are those of Dokku's own network plugin, so existing hosts
keep their settings: `$DOKKU_LIB_ROOT/config/network/<app>/<key>` holds the raw value.
"""

from __future__ import annotations

import os

from network_plugin.error_handler import PluginError
from network_plugin.file_lock import AppLock
from network_plugin.files import ensure_dir, read_value, remove_file, remove_tree, write_atomic
from network_plugin.paths import GLOBAL_APP, property_dir
from network_plugin.validation import (
    is_dns_name,
    is_listener,
    is_network_name,
    verify_app_name,
)

ATTACH_POST_CREATE = "attach-post-create"
ATTACH_POST_DEPLOY = "attach-post-deploy"
BIND_ALL_INTERFACES = "bind-all-interfaces"
INITIAL_NETWORK = "initial-network"
STATIC_WEB_LISTENER = "static-web-listener"
TLD = "tld"

DEFAULTS = {
    ATTACH_POST_CREATE: "",
    ATTACH_POST_DEPLOY: "",
    BIND_ALL_INTERFACES: "false",
    INITIAL_NETWORK: "",
    STATIC_WEB_LISTENER: "",
    TLD: "",
}
GLOBAL_KEYS = frozenset(DEFAULTS) - {STATIC_WEB_LISTENER}
ATTACH_KEYS = (ATTACH_POST_CREATE, ATTACH_POST_DEPLOY)
# Docker's own networks: attaching an app to them explicitly makes no sense.
RESERVED_ATTACH_NETWORKS = frozenset({"host", "bridge"})
NETWORK_KEYS = (INITIAL_NETWORK, ATTACH_POST_CREATE, ATTACH_POST_DEPLOY)
# Docker's own networks (and modes): every engine has them, the plugin never makes them.
DOCKER_NETWORKS = frozenset({"bridge", "default", "host", "none"})


def property_path(app: str, key: str) -> str:
    return os.path.join(property_dir(app), key)


def get(app: str, key: str) -> str:
    return read_value(property_path(app, key))


def get_global(key: str) -> str:
    return get(GLOBAL_APP, key) if key in GLOBAL_KEYS else ""


def computed(app: str, key: str) -> str:
    """The app's value, else the global one, else the default."""
    return get(app, key) or get_global(key) or DEFAULTS[key]


def networks(value: str) -> list[str]:
    """Network names of a stored `attach-*` value (`net-a,net-b`)."""
    return [name for name in (part.strip() for part in value.split(",")) if name]


def named_networks(app: str, keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """(property, network) for every network but Docker's own in the app's computed `keys`."""
    return [
        (key, name) for key in keys for name in networks(computed(app, key)) if name not in DOCKER_NETWORKS
    ]


def exists(app: str, key: str) -> bool:
    return os.path.isfile(property_path(app, key))


def write(app: str, key: str, value: str) -> None:
    with AppLock(app):
        write_atomic(property_path(app, key), value)


def delete(app: str, key: str) -> None:
    with AppLock(app):
        remove_file(property_path(app, key))


def verify_key(key: str) -> None:
    if not key:
        raise PluginError("No property specified")
    if key not in DEFAULTS:
        valid = ", ".join(sorted(DEFAULTS))
        raise PluginError(f"Invalid property specified, valid properties include: {valid}")


def validated_value(app: str, key: str, values: list[str]) -> str:
    """The value to store for `network:set <app> <key> <values...>`, after every check."""
    if key not in ATTACH_KEYS:
        return normalized(key, " ".join(values))
    value = normalized(key, ",".join(values))
    other_key = ATTACH_POST_DEPLOY if key == ATTACH_POST_CREATE else ATTACH_POST_CREATE
    verify_attach_lists(value, computed(app, other_key))
    return value


def normalized(key: str, value: str) -> str:
    """`value` as `key` stores it (attach lists: `net-a,net-b`, each name once), once its
    syntax is checked; '' unsets."""
    if key in ATTACH_KEYS:
        names = networks(value)
        for name in names:
            if name in RESERVED_ATTACH_NETWORKS:
                raise PluginError(f"Invalid network name specified for attach: {name}")
            if not is_network_name(name):
                raise PluginError(f"Invalid network name specified: {name}")
        return ",".join(dict.fromkeys(names))
    if not value:
        return ""
    if key == INITIAL_NETWORK and not is_network_name(value):
        raise PluginError(f"Invalid network name specified: {value}")
    if key == TLD and not is_dns_name(value):
        raise PluginError(f"Invalid tld specified, must be a lowercase DNS name: {value}")
    if key == BIND_ALL_INTERFACES and value not in ("true", "false"):
        raise PluginError(f"Invalid value specified for {key}, must be true or false: {value}")
    if key == STATIC_WEB_LISTENER and not is_listener(value):
        raise PluginError(f"Invalid static web listener, must be an ip or host:port: {value}")
    return value


def verify_attach_lists(value: str, other_value: str) -> None:
    """A network is never in both attach lists (`value` and the other list's computed value)."""
    taken = set(networks(other_value))
    for name in networks(value):
        if name in taken:
            raise PluginError(f"Network name already associated with this app: {name}")


def copy_all(source_app: str, target_app: str) -> None:
    """Give `target_app` every property `source_app` has (clone and rename)."""
    values = {key: get(source_app, key) for key in DEFAULTS if exists(source_app, key)}
    with AppLock(target_app):
        for key, value in values.items():
            write_atomic(property_path(target_app, key), value)


def remove_all(app: str) -> None:
    """Drop the app's property folder (post-delete, rename)."""
    verify_app_name(app)  # never let a crafted name turn this into rm -rf elsewhere
    remove_tree(property_dir(app))


def setup() -> None:
    ensure_dir(property_dir(GLOBAL_APP))
