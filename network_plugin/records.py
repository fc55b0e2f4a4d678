"""The record of every network the plugin made (docs/reference.md: Network records).

`network:create` and `network:import` write `$DOKKU_LIB_ROOT/data/network/networks/<name>.json`:
the network's name, driver and every create option, so that it can be made again the same
way (`network:import`, and before Dokku creates an app's containers when it is gone);
`network:destroy` removes it. A record is read with the rules of `network:create`: one that
cannot be read, or holds what `network:create` would refuse, is one warning and no record.
"""

from __future__ import annotations

import os

from network_plugin.error_handler import PluginError, unless_engine_fault
from network_plugin.file_lock import host_lock
from network_plugin.files import (
    ensure_dir,
    holds,
    is_file,
    list_folder,
    open_folder,
    read_bytes,
    remove_file,
    write_atomic,
)
from network_plugin.output import clip, warn
from network_plugin.paths import records_root
from network_plugin.validation import MAX_NEW_NETWORK_BYTES, is_network_name, verify_new_network

TYPE_CHECKING = False
if TYPE_CHECKING:
    from network_plugin.network_options import CreateOptions

RECORD_VERSION = 1
SUFFIX = ".json"
# A record is a few hundred bytes; anything this big is not one.
MAX_RECORD_BYTES = 1 << 20
# install/update record the networks made before records were kept, once.
ENGINE_RECORDED_MARKER = ".recorded-from-engine"
SPEC_KEYS = frozenset({"name", "driver", "pools", "internal", "ipv6", "options", "labels"})
POOL_KEYS = frozenset({"subnet", "ip_range", "gateway"})


def can_record(name: str) -> bool:
    """A name whose record stays in the records folder, in a file name the filesystem takes (a
    record of a name the plugin would not make, a hand-made `bridge.json`, is read to be refused)."""
    return is_network_name(name) and len(name.encode()) <= MAX_NEW_NETWORK_BYTES


def record_path(name: str) -> str:
    """The record of network `name`; a name that could leave the records folder is refused."""
    if not can_record(name):
        raise PluginError(f"Invalid network name specified: {name}")
    return os.path.join(records_root(), name + SUFFIX)


def spec(name: str, options: CreateOptions) -> dict:
    """The JSON object of a network's spec, as records and `network:export` hold it."""
    return {
        "name": name,
        "driver": options.driver,
        "pools": [
            {"subnet": pool.subnet, "ip_range": pool.ip_range, "gateway": pool.gateway}
            for pool in options.pools
        ],
        "internal": options.internal,
        "ipv6": options.ipv6,
        "options": dict(options.options),
        "labels": dict(options.labels),
    }


def parse_spec(document: object) -> tuple[str, CreateOptions]:
    """(name, options) of a spec object, checked as `network:create` checks its options."""
    from network_plugin import network_options

    if not isinstance(document, dict):
        raise PluginError("a network must be a JSON object")
    unknown = sorted(set(document) - SPEC_KEYS)
    if unknown:
        raise PluginError(f"unknown network field {unknown[0]!r}")
    name = _text(document.get("name"), "name")
    verify_new_network(name)
    pools = document.get("pools", [])
    if not isinstance(pools, list) or not all(isinstance(pool, dict) for pool in pools):
        raise PluginError(f"network {name}: pools must be a list of objects")
    for pool in pools:
        extra = sorted(set(pool) - POOL_KEYS)
        if extra:
            raise PluginError(f"network {name}: unknown pool field {extra[0]!r}")
    options = network_options.parse(
        name,
        driver=_text(document.get("driver", "bridge"), "driver"),
        subnets=[_text(pool.get("subnet"), "subnet") for pool in pools],
        gateways=[value for pool in pools if (value := _text(pool.get("gateway", ""), "gateway"))],
        ip_ranges=[value for pool in pools if (value := _text(pool.get("ip_range", ""), "ip_range"))],
        internal=_flag(document.get("internal", False), "internal"),
        ipv6=_flag(document.get("ipv6", False), "ipv6"),
        opts=_pairs(document.get("options", {}), "option"),
        labels=_pairs(document.get("labels", {}), "label"),
    )
    return name, options


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise PluginError(f"{field} must be a string")
    return value


def _flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise PluginError(f"{field} must be true or false")
    return value


def _pairs(value: object, what: str) -> list[str]:
    """A JSON object of strings as `KEY=VALUE` arguments; a key holding `=` could not round-trip."""
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise PluginError(f"{what}s must be an object of strings")
    for key in value:
        if "=" in key:
            raise PluginError(f"Invalid {what} specified: {key}, a key holds no =")
    return [f"{key}={item}" for key, item in value.items()]


def parse_json(data: bytes | str) -> object:
    """A JSON document, refused (PluginError) when an object holds a key twice: JSON would let
    the last one win silently. Nesting too deep for the parser is a ValueError, as bad JSON is."""
    try:
        import json  # here: the report reads whether a record exists, and needs no parser

        return json.loads(data, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found: dict[str, object] = {}
    for key, value in pairs:
        if key in found:
            import json

            raise PluginError(f"key {clip(json.dumps(key))} given twice")
        found[key] = value
    return found


class _Unreadable(Exception):
    """A record that exists but cannot be read (its warning is printed)."""


def read(name: str) -> CreateOptions | None:
    """The recorded options of `name`; None without a record, or (one warning) an unreadable one."""
    try:
        return _read(name)
    except _Unreadable:
        return None


def _read(name: str) -> CreateOptions | None:
    """The recorded options of `name`; None without a record; _Unreadable, after one warning,
    when it cannot be read."""
    path = record_path(name)
    try:
        data = read_bytes(path, MAX_RECORD_BYTES)
        if data is None:
            return None
        document = parse_json(data)
        if not isinstance(document, dict) or document.get("version") != RECORD_VERSION:
            raise PluginError(f"not a version {RECORD_VERSION} record")
        recorded, options = parse_spec({key: value for key, value in document.items() if key != "version"})
        if recorded != name:
            raise PluginError(f"it is the record of {recorded}")
    except (OSError, ValueError, PluginError) as error:
        reason = error.message if isinstance(error, PluginError) else str(error)
        warn(f"Ignoring the record of network {name} ({path}): {clip(reason, 300)}")
        raise _Unreadable(name) from None
    return options


def recorded() -> tuple[dict[str, CreateOptions], list[str]]:
    """Every readable record, by network name, and the names of those that could not be read
    (a warning each)."""
    found = {}
    unreadable = []
    for entry in sorted(list_folder(records_root())):
        name = entry[: -len(SUFFIX)]
        if entry.endswith(SUFFIX) and can_record(name):
            try:
                options = _read(name)
            except _Unreadable:
                unreadable.append(name)
                continue
            if options is not None:  # None: removed meanwhile
                found[name] = options
    return found, unreadable


def write(name: str, options: CreateOptions) -> bool:
    """Record `name`; False when its record already said exactly that (nothing written)."""
    path = record_path(name)
    import json

    content = json.dumps({"version": RECORD_VERSION, **spec(name, options)}, indent=2, sort_keys=True) + "\n"
    if holds(path, content):
        return False
    with host_lock():  # records belong to the host
        ensure_dir(records_root())
        return write_atomic(path, content)


def is_recorded(name: str) -> bool:
    return is_file(record_path(name))


def verify_folder_reachable() -> None:
    """Refuse (one line), before the engine is asked to change, a records folder behind a link
    the plugin does not follow (files._walk): no record could follow the engine. A folder not
    made yet is reachable: the first write makes it."""
    try:
        os.close(open_folder(records_root()))
    except (FileNotFoundError, NotADirectoryError):
        pass


def remove(name: str) -> None:
    path = record_path(name)
    with host_lock():
        remove_file(path)


def differences(options: CreateOptions, network: dict) -> list[str]:
    """How the engine's `network` differs from the recorded `options` ([] when it is what they
    ask for). A recorded value is compared only when it was given: a subnet or gateway the
    engine chose, or an option the engine adds by default, is no difference."""
    found = []
    for field, engine_value, value in (
        ("driver", network.get("Driver", ""), options.driver),
        ("internal", bool(network.get("Internal")), options.internal),
        ("ipv6", bool(network.get("EnableIPv6")), options.ipv6),
    ):
        if engine_value != value:
            found.append(f"{field} {_shown(engine_value)} instead of {_shown(value)}")
    entries = (network.get("IPAM") or {}).get("Config") or []
    config = {_canonical(entry.get("Subnet", "")): entry for entry in entries}
    for pool in options.pools:
        entry = config.get(pool.subnet)
        if entry is None:
            found.append(f"no subnet {pool.subnet}")
            continue
        if _canonical(entry.get("IPRange") or "") != pool.ip_range:
            found.append(f"ip range {entry.get('IPRange') or 'none'} instead of {pool.ip_range or 'none'}")
        if pool.gateway and _canonical(entry.get("Gateway") or "") != pool.gateway:
            found.append(f"gateway {entry.get('Gateway') or 'none'} instead of {pool.gateway}")
    for what, engine_pairs, pairs in (
        ("option", network.get("Options") or {}, options.options),
        ("label", network.get("Labels") or {}, options.labels),
    ):
        for key, value in sorted(pairs.items()):
            if engine_pairs.get(key) != value:
                found.append(f"{what} {key}={engine_pairs.get(key, '(none)')} instead of {key}={value}")
    return found


def _shown(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _canonical(value: str) -> str:
    """An address or subnet as network_options writes it (IPv6 compressed, lower case)."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(value) if "/" in value else ipaddress.ip_address(value))
    except ValueError:
        return value


def engine_spec(network: dict) -> dict:
    """The spec of a network the engine lists, for networks made before records were kept."""
    return {
        "name": network.get("Name", ""),
        "driver": network.get("Driver") or "bridge",
        "pools": [
            {
                "subnet": entry["Subnet"],
                "ip_range": entry.get("IPRange") or "",
                "gateway": entry.get("Gateway") or "",
            }
            for entry in (network.get("IPAM") or {}).get("Config") or []
            if entry.get("Subnet")
        ],
        "internal": bool(network.get("Internal")),
        "ipv6": bool(network.get("EnableIPv6")),
        "options": dict(network.get("Options") or {}),
        "labels": dict(network.get("Labels") or {}),
    }


def record_engine_networks() -> None:
    """install/update: record, once, the Dokku-labelled networks that have no record (made
    before this version). An engine out of reach is one warning; the next install tries again."""
    marker = os.path.join(records_root(), ENGINE_RECORDED_MARKER)
    if is_file(marker):
        return
    from network_plugin import docker_engine

    listed = unless_engine_fault(
        lambda: docker_engine.api().networks(filters={"label": docker_engine.NETWORK_NAME_LABEL}),
        ": networks made before this version are recorded at the next install",
    )
    if listed is None:
        return
    for network in sorted(listed, key=lambda network: network.get("Name", "")):
        try:
            name = network.get("Name", "")
            if not is_recorded(name):
                write(*parse_spec(engine_spec(network)))
        except PluginError as error:
            warn(f"Not recording network {network.get('Name', '')}: {error.message}")
    with host_lock():
        write_atomic(os.path.join(ensure_dir(records_root()), ENGINE_RECORDED_MARKER), "")
