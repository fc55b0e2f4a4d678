"""The property store: one file per property, per app and for `--global`.

Layout and content are those of Dokku's own network plugin, so existing hosts
keep their settings: `$DOKKU_LIB_ROOT/config/network/<app>/<key>` holds the raw value.
"""

from __future__ import annotations

import os

from network_plugin.apps import list_apps
from network_plugin.error_handler import PluginError
from network_plugin.file_lock import AppLock, host_lock
from network_plugin.files import ensure_dir, is_file, read_value, remove_file, remove_tree, write_atomic
from network_plugin.output import clip, listed
from network_plugin.paths import GLOBAL_APP, property_dir
from network_plugin.validation import (
    DOCKER_NETWORKS,
    app_network_owner,
    is_app_network,
    is_host_name,
    is_listener,
    verify_app_name,
    verify_app_network,
)

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Callable

APP_NETWORK = "app-network"
APP_NETWORK_POOL = "app-network-pool"
ATTACH_POST_CREATE = "attach-post-create"
ATTACH_POST_DEPLOY = "attach-post-deploy"
BIND_ALL_INTERFACES = "bind-all-interfaces"
INITIAL_NETWORK = "initial-network"
STATIC_WEB_LISTENER = "static-web-listener"
TLD = "tld"

# Where app networks take their subnets (/24 each) by default: private space beside Docker's own
# default pools (172.17.0.0/12 and 192.168.0.0/16), room for 4,096 apps.
DEFAULT_APP_NETWORK_POOL = "10.224.0.0/12"

DEFAULTS = {
    APP_NETWORK: "false",
    APP_NETWORK_POOL: DEFAULT_APP_NETWORK_POOL,
    ATTACH_POST_CREATE: "",
    ATTACH_POST_DEPLOY: "",
    BIND_ALL_INTERFACES: "false",
    INITIAL_NETWORK: "",
    STATIC_WEB_LISTENER: "",
    TLD: "",
}
GLOBAL_KEYS = frozenset(DEFAULTS) - {STATIC_WEB_LISTENER}
# The pool is the host's: one for every app.
APP_KEYS = frozenset(DEFAULTS) - {APP_NETWORK_POOL}
BOOLEAN_KEYS = (APP_NETWORK, BIND_ALL_INTERFACES)
ATTACH_KEYS = (ATTACH_POST_CREATE, ATTACH_POST_DEPLOY)
NETWORK_KEYS = (INITIAL_NETWORK, ATTACH_POST_CREATE, ATTACH_POST_DEPLOY)


def property_path(app: str, key: str) -> str:
    return os.path.join(property_dir(app), key)


def get(app: str, key: str) -> str:
    return read_value(property_path(app, key))


def get_global(key: str) -> str:
    return get(GLOBAL_APP, key) if key in GLOBAL_KEYS else ""


def computed(app: str, key: str) -> str:
    """The app's value, else the global one, else the default."""
    own = get(app, key) if key in APP_KEYS else ""
    return own or get_global(key) or DEFAULTS[key]


def networks(value: str) -> list[str]:
    """Network names of a stored `attach-*` value (`net-a,net-b`)."""
    return [name for name in (part.strip() for part in value.split(",")) if name]


def named_networks(app: str, keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """(property, network) for every network but Docker's own in the app's computed `keys`."""
    return [
        (key, name) for key in keys for name in networks(computed(app, key)) if name not in DOCKER_NETWORKS
    ]


def stored_networks(app: str, keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """`named_networks`, as the triggers about to use them read them: a name no app may store
    (hand-edited: `x;reboot`, `container:<id>`) is refused, never passed to the engine."""
    named = named_networks(app, keys)
    for key, name in named:
        if not is_app_network(name) or app_network_owner(name) not in ("", app):
            raise PluginError(f"Invalid {key} stored for {app}: {name}")
    return named


def is_stored(app: str, key: str) -> bool:
    return is_file(property_path(app, key))


def write(app: str, key: str, value: str) -> None:
    with AppLock(app):
        write_atomic(property_path(app, key), value)


def verify_key(key: str, owner: str) -> None:
    """`key` is a property `owner` (an app, or `--global`) may hold."""
    if not key:
        raise PluginError("No property specified")
    if key not in DEFAULTS:
        valid = ", ".join(sorted(DEFAULTS))
        raise PluginError(f"Invalid property specified, valid properties include: {valid}")
    if owner == GLOBAL_APP and key not in GLOBAL_KEYS:
        raise PluginError("Property cannot be specified globally")
    if owner != GLOBAL_APP and key not in APP_KEYS:
        raise PluginError("Property can only be specified globally")


def set_value(owner: str, key: str, values: list[str]) -> str:
    """`network:set <owner> <key> <values...>`: check, then store the value (none: unset); the value stored.

    The check and the write happen under one lock. Every change of an attach list also
    holds the host lock: a global change reads every app's lists, so two changes of attach
    lists (of one app, or global and an app's) never both pass their check. The host lock is
    `--global`'s own: the owner's lock is a no-op after it for `--global`.
    A first check before the locks refuses bad input without creating a lock file.
    """
    validated_value(owner, key, values)
    with host_lock() if key in ATTACH_KEYS else AppLock(owner), AppLock(owner):
        value = validated_value(owner, key, values)
        store(owner, key, value)
    return value


def store(owner: str, key: str, value: str) -> None:
    """Write `value` ('' removes the file); the caller holds the owner's lock."""
    if value:
        write_atomic(property_path(owner, key), value)
    else:
        remove_file(property_path(owner, key))


def validated_value(owner: str, key: str, values: list[str]) -> str:
    """The value to store for `network:set <owner> <key> <values...>`, after every check."""
    value = owned_value(owner, key, (",".join if key in ATTACH_KEYS else " ".join)(values))
    if key in ATTACH_KEYS:
        _verify_new_attach_list(owner, key, value)
    return value


def owned_value(owner: str, key: str, value: str) -> str:
    """`normalized`, and an app's own network named only by that app: its addresses are then
    only ever held by its containers (no other app, nor `--global`, may name it)."""
    value = normalized(key, value)
    for name in networks(value) if key in NETWORK_KEYS else []:
        app = app_network_owner(name)
        if app and app != owner:
            raise PluginError(f"Network {name} is the app network of {app}: only {app}'s containers join it")
    return value


def normalized(key: str, value: str) -> str:
    """`value` as `key` stores it (attach lists: `net-a,net-b`, each name once), once its
    writer's rule is checked; '' unsets."""
    if key in ATTACH_KEYS:
        value = ",".join(dict.fromkeys(networks(value)))
    if value:
        verify_value(key, value)
    return value


def verify_value(key: str, value: str) -> None:
    """The writer's rule for a non-empty value of `key` (an attach list as stored: `net-a,net-b`)."""
    if key in ATTACH_KEYS:
        for name in networks(value):
            if name in DOCKER_NETWORKS:
                raise PluginError(f"Invalid network name specified for attach: {name}")
            verify_app_network(name)
    if key == INITIAL_NETWORK:
        verify_app_network(value)
    if key == TLD and not is_host_name(value):
        raise PluginError(f"Invalid tld specified, must be a lowercase DNS name: {value}")
    if key == APP_NETWORK_POOL:
        from network_plugin.subnet_pool import parse_pool

        parse_pool(value)
    if key in BOOLEAN_KEYS and value not in ("true", "false"):
        raise PluginError(f"Invalid value specified for {key}, must be true or false: {value}")
    if key == STATIC_WEB_LISTENER and not is_listener(value):
        raise PluginError(f"Invalid static web listener, must be an ip or host:port: {value}")


def refused_values(owner: str) -> list[str]:
    """A line for each value stored for `owner` (an app, or `--global`) that `network:set` would
    refuse (a hand edit, another plugin, an older version): the triggers stop on it."""
    keys = GLOBAL_KEYS if owner == GLOBAL_APP else APP_KEYS
    lines = []
    for key in sorted(keys):
        value = get(owner, key)
        try:
            if value:
                verify_value(key, value)
        except PluginError:
            lines.append(
                f"Invalid {key} stored for {owner}: {clip(value)}: network:set refuses it, and the"
                f" triggers that read it stop on it; set it again (dokku network:set {owner} {key} <value>)"
                " or unset it"
            )
    return lines


def verified_computed(app: str, key: str) -> str:
    """The computed value, held to the rule of its writer: a value a hand edit (or another
    plugin) stored that `network:set` would refuse never reaches a caller."""
    value = computed(app, key)
    if value:
        try:
            verify_value(key, value)
        except PluginError:
            raise PluginError(f"Invalid {key} stored for {app}: {value}") from None
    return value


def _verify_new_attach_list(owner: str, key: str, value: str) -> None:
    """No network may end up in both computed attach lists, of `owner` or, for a global
    value, of any app that takes it (an app's own value hides the global one)."""
    other_key = ATTACH_POST_DEPLOY if key == ATTACH_POST_CREATE else ATTACH_POST_CREATE
    # Unset, the app's list falls back to the global one.
    verify_attach_pair(value or (get_global(key) if owner != GLOBAL_APP else ""), computed(owner, other_key))
    if owner == GLOBAL_APP:
        verify_apps_attach_pairs(
            [app for app in list_apps() if not get(app, key)],
            lambda stored_owner, stored_key: (
                value if (stored_owner, stored_key) == (GLOBAL_APP, key) else get(stored_owner, stored_key)
            ),
        )


def verify_apps_attach_pairs(apps: list[str], stored: Callable[[str, str], str]) -> None:
    """No app of `apps` has a network in both computed attach lists, `stored(owner, key)` being
    the value the app (or `--global`) stores, or is about to: the rule a global change holds
    every app that takes it to; the apps are named, grouped by network."""
    global_lists = [stored(GLOBAL_APP, key) for key in ATTACH_KEYS]
    clashes: dict[str, list[str]] = {}
    for app in apps:
        create, deploy = (stored(app, key) or value for key, value in zip(ATTACH_KEYS, global_lists))
        clash = _first_shared(networks(create), deploy)
        if clash:
            clashes.setdefault(clash, []).append(app)
    if clashes:
        clash, clashing = next(iter(clashes.items()))
        raise PluginError(f"Network name already associated with app {listed(clashing)}: {clash}")


def verify_attach_pair(value: str, other_value: str) -> None:
    """A network is never in both attach lists (`value` and the other list's computed value)."""
    clash = _first_shared(networks(value), other_value)
    if clash:
        raise PluginError(f"Network name already associated with this app: {clash}")


def _first_shared(names: list[str], other_value: str) -> str:
    taken = set(networks(other_value))
    return next((name for name in names if name in taken), "")


def copy_all(source_app: str, target_app: str) -> None:
    """Make `target_app`'s properties exactly those `source_app` has (clone and rename): a value
    the target had of its own (e.g. written by an older Dokku's post-create) does not survive."""
    values = {key: get(source_app, key) for key in APP_KEYS if is_stored(source_app, key)}
    with AppLock(target_app):
        for key in APP_KEYS:
            if key in values:
                write_atomic(property_path(target_app, key), values[key])
            else:
                remove_file(property_path(target_app, key))


def remove_all(app: str) -> None:
    """Drop the app's property folder (post-delete, rename)."""
    verify_app_name(app)  # never let a crafted name turn this into rm -rf elsewhere
    remove_tree(property_dir(app))


def setup() -> None:
    ensure_dir(property_dir(GLOBAL_APP))
