"""`network:export` and `network:import`: the recorded networks and every network property as
one versioned JSON document, to move a host or restore a backup (docs/reference.md).

An import checks all of the document before it changes anything (the subnets of the
networks it makes against each other and the engine's networks too), creates the missing
networks before it writes any property, and writes only what differs: a second import of the
same document recreates nothing and rewrites no file. From its last check to its last write
it holds the host lock, which every change of an attach list takes (network:set): the
attach-list rule it checked still holds when it writes.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from contextlib import contextmanager
from typing import NamedTuple

from network_plugin import app_network, docker_engine, host_network, networks, properties, records
from network_plugin.apps import list_apps, verify_app
from network_plugin.error_handler import PluginError, describe
from network_plugin.file_lock import AppLock, host_lock
from network_plugin.network_options import OVERLAY
from network_plugin.output import clip, detail_unless_quiet, info, listed, warn
from network_plugin.paths import GLOBAL_APP, app_root
from network_plugin.validation import APP_NAME_ERROR, is_app_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO, TextIO

    from network_plugin.network_options import CreateOptions

DOCUMENT_VERSION = 1
DOCUMENT_KEYS = frozenset({"version", "networks", "global", "apps"})
# An export of a few thousand apps and networks is a few megabytes.
MAX_DOCUMENT_BYTES = 16 << 20
# How much of a refused document's reason (it may quote a value) one line shows.
MAX_REASON_LENGTH = 400
INVALID = "Invalid import document, nothing imported"
USAGE = "dokku network:import < file"
# Docker's IPAM keeps overlay networks (swarm scope) and the others (local) in two address
# spaces: a subnet is taken only within its own.
SWARM_SPACE, LOCAL_SPACE = "swarm", "local"


def export(app: str, allow_partial: bool) -> None:
    """Print the document: every recorded network, global properties and every app's
    properties; with `app`, that app's properties and the networks it names. Records or values
    that could not be read are left out with a warning each, and fail the export (after the
    document) unless `allow_partial`."""
    if app:
        verify_app(app)
        owners = [app]
        keys = properties.NETWORK_KEYS
        named = {name for _, name in app_network.with_own(app, properties.named_networks(app, keys), keys)}
    else:
        owners = [GLOBAL_APP, *list_apps()]
        named = {
            name
            for owner in owners
            for key in properties.NETWORK_KEYS
            for name in properties.networks(properties.get(owner, key))
            if name not in properties.DOCKER_NETWORKS
        }
    recorded, unreadable = records.recorded()
    unrecorded = sorted(named - set(recorded) - set(unreadable))
    if len(unrecorded) == 1:
        name = clip(unrecorded[0])
        warn(f"Network {name} has no record (network:create did not make it): it is not exported")
    elif unrecorded:
        warn(
            f"{len(unrecorded)} networks have no record (network:create did not make them), they are"
            f" not exported: {listed(unrecorded)}"
        )
    exported = set(recorded) if not app else named & set(recorded)
    skipped = [name for name in unreadable if not app or name in named]
    values = {owner: _stored_values(owner, skipped) for owner in owners}
    document = {
        "version": DOCUMENT_VERSION,
        "networks": [records.spec(name, recorded[name]) for name in sorted(exported)],
        "global": values.pop(GLOBAL_APP, {}),
        "apps": {owner: found for owner, found in values.items() if found},
    }
    print(json.dumps(document, indent=2, sort_keys=True))
    if skipped and not allow_partial:
        raise PluginError(
            f"The export is incomplete: {len(skipped)} unreadable record(s) or value(s) left out (above);"
            " --allow-partial accepts that"
        )


def _stored_values(owner: str, skipped: list[str]) -> dict[str, str]:
    """The owner's properties that are set; a stored value import would refuse is a warning
    (and goes to `skipped`)."""
    keys = properties.GLOBAL_KEYS if owner == GLOBAL_APP else properties.APP_KEYS
    found = {}
    for key in sorted(keys):
        value = properties.get(owner, key)
        if not value:
            continue
        try:
            found[key] = properties.owned_value(owner, key, value)
        except PluginError as error:
            warn(f"Not exporting {key} of {owner}: {clip(error.message, MAX_REASON_LENGTH)}")
            skipped.append(f"{owner} {key}")
    return found


def read_document(stdin: TextIO | None) -> bytes:
    """The document on standard input, at most MAX_DOCUMENT_BYTES (never more is read)."""
    if stdin is None:  # `network:import <&-`
        raise PluginError(f"{INVALID}: no document on standard input ({USAGE})")
    if stdin.isatty():
        raise PluginError(f"network:import reads a network:export document on stdin: {USAGE}")
    stream: BinaryIO = stdin.buffer
    data = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise PluginError(f"{INVALID}: larger than {MAX_DOCUMENT_BYTES >> 20} MiB")
    return data


def import_document(data: bytes) -> None:
    """Check all of `data`, then make the missing networks, then write the properties."""
    with _refusal():
        specs, owners = _parse(data)
        # Checked before the lock too, as network:set does: bad input leaves no lock file.
        _verify_imported_attach_lists(owners)
    if specs:
        # Refused before any network is made, since none of them could be recorded.
        records.verify_folder_reachable()
    present = _engine_networks(specs)
    missing = []
    with host_lock():
        with _refusal():
            _verify_imported_attach_lists(owners)
        _import_networks(specs, present)
        for owner, values in owners.items():
            if values and not _exists(owner):
                missing.append(owner)
            elif values:
                _import_properties(owner, values)
    if len(missing) == 1:
        warn(f"App {clip(missing[0])} does not exist: its network properties are not imported")
    elif missing:
        count = len(missing)
        warn(f"{count} apps do not exist, their network properties are not imported: {listed(missing)}")


@contextmanager
def _refusal() -> Iterator[None]:
    """A PluginError of the checks becomes the one line of a refused document."""
    try:
        yield
    except PluginError as error:
        raise PluginError(f"{INVALID}: {clip(error.message, MAX_REASON_LENGTH)}") from None


def _exists(owner: str) -> bool:
    return owner == GLOBAL_APP or os.path.isdir(app_root(owner))


def _parse(data: bytes) -> tuple[list[tuple[str, CreateOptions]], dict[str, dict[str, str]]]:
    """(network specs, owner -> property values) of a document, every name and value checked."""
    try:
        document = records.parse_json(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise PluginError("not UTF-8 text") from None
    except ValueError as error:
        raise PluginError(f"not JSON ({error})") from None
    if not isinstance(document, dict):
        raise PluginError("not a JSON object")
    version = document.get("version")
    if type(version) is not int or version != DOCUMENT_VERSION:
        raise PluginError(f"version {json.dumps(version)}, this plugin reads version {DOCUMENT_VERSION}")
    unknown = sorted(set(document) - DOCUMENT_KEYS)
    if unknown:
        raise PluginError(f"unknown field {unknown[0]!r}")
    listed = document.get("networks", [])
    if not isinstance(listed, list):
        raise PluginError("networks must be a list")
    specs = [records.parse_spec(spec) for spec in listed]
    counts = Counter(name for name, _ in specs)
    twice = [name for name, count in counts.items() if count > 1]
    if twice:
        raise PluginError(f"network {min(twice)} is listed twice")
    apps = document.get("apps", {})
    if not isinstance(apps, dict):
        raise PluginError("apps must be an object")
    owners = {GLOBAL_APP: _values(GLOBAL_APP, document.get("global", {}))}
    for app in sorted(apps):
        if not is_app_name(app):
            raise PluginError(f"app {json.dumps(app)}: {APP_NAME_ERROR}")
        owners[app] = _values(app, apps[app])
    return specs, owners


def _values(owner: str, values: object) -> dict[str, str]:
    """An owner's properties as they would be stored, each checked as `network:set` checks it."""
    if not isinstance(values, dict):
        raise PluginError(f"{owner}: properties must be an object")
    checked = {}
    for key, value in sorted(values.items()):
        try:
            properties.verify_key(key, owner)
            if not isinstance(value, str):
                raise PluginError(f"the value of {key} must be a string")
            checked[key] = properties.owned_value(owner, key, value)
        except PluginError as error:
            raise PluginError(f"{clip(owner)}: {error.message}") from None
    return checked


def _verify_imported_attach_lists(owners: dict[str, dict[str, str]]) -> None:
    """The attach-list rule of network:set on the computed lists after the import: of
    `--global`, of every app the document names, and, for a global list it gives, of every app
    that takes it (network:set --global's check)."""

    def stored(owner: str, key: str) -> str:
        given = owners.get(owner, {})
        return given[key] if key in given else properties.get(owner, key)

    try:
        properties.verify_attach_pair(*(stored(GLOBAL_APP, key) for key in properties.ATTACH_KEYS))
    except PluginError as error:
        raise PluginError(f"{GLOBAL_APP}: {error.message}") from None
    apps = {owner for owner in owners if owner != GLOBAL_APP and _exists(owner)}
    given = [key for key in properties.ATTACH_KEYS if key in owners[GLOBAL_APP]]
    if given:
        apps.update(app for app in list_apps() if any(not stored(app, key) for key in given))
    properties.verify_apps_attach_pairs(sorted(apps), stored)


def _engine_networks(specs: list[tuple[str, CreateOptions]]) -> dict[str, dict]:
    """The engine's networks by name (one listing, none for a document without networks), once
    the networks to make are found possible: their subnets overlap neither each other nor an
    existing network's, nor take an interface, route or address of this host (host_network:
    else the document is refused), and an overlay network has a swarm manager to make it. An
    engine out of reach is its own line, not the document's fault."""
    if not specs:
        return {}
    listed_networks = docker_engine.api().networks()
    present = {network["Name"]: network for network in listed_networks}
    made = [(name, options) for name, options in specs if name not in present]
    overlap = _first_overlap(
        [(SWARM_SPACE if options.driver == OVERLAY else LOCAL_SPACE, name, pool.subnet)
         for name, options in made for pool in options.pools],
        [(SWARM_SPACE if network.get("Scope") == "swarm" else LOCAL_SPACE, network["Name"], entry["Subnet"])
         for network in listed_networks
         for entry in (network.get("IPAM") or {}).get("Config") or []
         if entry.get("Subnet")],
    )  # fmt: skip
    if overlap:
        raise PluginError(f"{INVALID}: {overlap}")
    host_network.verify_made(made, f"{INVALID}: ")
    if any(options.driver == OVERLAY for _, options in made):
        networks.verify_swarm_manager()
    return present


class _Block(NamedTuple):
    """A subnet as `_first_overlap` sorts them: by address space, then first address."""

    space: tuple[str, int]  # (address space, IP version)
    start: int
    end: int
    new: bool  # to be made by this import (else on the engine)
    network: str
    subnet: str


def _first_overlap(made: list[tuple[str, str, str]], present: list[tuple[str, str, str]]) -> str:
    """How a subnet of `made` overlaps another of `made` or one of `present` (each entry: address
    space, network, subnet); '' when none does.

    One pass over the subnets sorted by first address: two CIDR blocks either nest or lie
    apart, so a block overlaps an earlier one exactly when it starts before the furthest end
    seen so far (of any block for a new one, of a new block for an existing one)."""
    import ipaddress

    blocks = []
    for new, entries in ((True, made), (False, present)):
        for space, name, subnet in entries:
            try:
                network = ipaddress.ip_network(subnet, strict=False)
            except ValueError:
                continue  # the engine's own business
            start, end = int(network.network_address), int(network.broadcast_address)
            blocks.append(_Block((space, network.version), start, end, new, name, str(network)))
    furthest: dict[tuple[str, int], _Block] = {}
    furthest_new: dict[tuple[str, int], _Block] = {}
    for block in sorted(blocks):
        rival = (furthest if block.new else furthest_new).get(block.space)
        if rival is not None and block.start <= rival.end:
            first, second = (block, rival) if block.new else (rival, block)
            return (
                f"subnet {first.subnet} of network {first.network} overlaps subnet {second.subnet}"
                f" of network {second.network}{'' if second.new else ' on the engine'}"
            )
        for reach in (furthest, furthest_new) if block.new else (furthest,):
            if block.space not in reach or block.end > reach[block.space].end:
                reach[block.space] = block
    return ""


def _import_networks(specs: list[tuple[str, CreateOptions]], present: dict[str, dict]) -> None:
    """One line per network: created, there already, or there with other options (drift). When
    the engine still refuses one, the line says which this import made: a second one finishes."""
    created: list[str] = []
    for name, options in specs:
        network = present.get(name)
        if network is not None:
            drift = records.differences(options, network)
            if drift:
                warn(f"Network {name} exists with other options, left alone: {clip('; '.join(drift), 300)}")
                continue
            records.write(name, options)  # nothing written when it is recorded so already
            detail_unless_quiet(f"Network {name} exists")
            continue
        try:
            made = networks.make(name, options)
        except Exception as error:  # noqa: BLE001 - whatever stopped it, say what was made before
            raise PluginError(_stopped(name, describe(error), created)) from None
        if not made:
            raise PluginError(_stopped(name, "a network of that name was created meanwhile", created))
        records.write(name, options)
        info(f"Creating network {name}")
        created.append(name)


def _stopped(name: str, why: str, created: list[str]) -> str:
    made = f"this import created {listed(created)} before it" if created else "this import created no network"
    return f"Network {name} was not created ({clip(why, 300)}): {made} and set no property; import again"


def _import_properties(owner: str, values: dict[str, str]) -> None:
    """One line per owner: what was set, or unchanged. Compared before the owner's lock (an
    unchanged owner gets no lock file), then again under it."""
    if not _changed(owner, values):
        detail_unless_quiet(f"Network properties of {owner} unchanged")
        return
    with AppLock(owner):
        changed = _changed(owner, values)
        for key in changed:
            properties.store(owner, key, values[key])
    if changed:
        shown = ", ".join(f"{key}={clip(values[key])}" for key in changed)
        info(f"Set network properties of {owner}: {shown}")
    else:
        detail_unless_quiet(f"Network properties of {owner} unchanged")


def _changed(owner: str, values: dict[str, str]) -> list[str]:
    return [
        key
        for key, value in values.items()
        if (properties.is_stored(owner, key) if not value else properties.get(owner, key) != value)
    ]
