"""Networks an app names, made again before Dokku creates the app's containers
(docs/reference.md: Networks that come back).

The `docker-args-process-*` triggers call this right before each `docker container create`
of an app that names a network; an app naming none never gets here (no engine call, no
docker import). A missing network that has a record is recreated with its recorded
options; one without a record stops the container's creation with a line saying how to
make it.
"""

from __future__ import annotations

from network_plugin import docker_engine, properties
from network_plugin.error_handler import PluginError
from network_plugin.file_lock import host_lock
from network_plugin.output import info


def ensure_networks(app: str, named: list[tuple[str, str]]) -> None:
    """Make every missing network of `named` (`properties.stored_networks` of `app`) that has a record."""
    missing = _missing(sorted({name for _, name in named}))
    if not missing:
        return
    # Only now: records and network options cost a deploy's every container ~20 ms of imports.
    from network_plugin import host_network, networks, records
    from network_plugin.network_options import OVERLAY

    # A worker's engine lists an overlay network only while one of its containers uses it, yet
    # connects containers to it by name: it may well exist, and only a manager can make one.
    worker = docker_engine.is_swarm_worker()
    own = next((name for key, name in named if key == properties.APP_NETWORK), "")
    recorded = {}
    unrecorded = []
    for name in missing:
        options = records.read(name) if records.can_record(name) else None
        if options is None:
            if not worker and name != own:
                unrecorded.append(name)
        elif not (worker and options.driver == OVERLAY):
            recorded[name] = options
    new_own = own in missing and own not in recorded
    if recorded or new_own:
        # Containers deployed side by side find the same network missing: one makes it while
        # the others wait, then find it (the engine would refuse them its subnet before it
        # lists it).
        with host_lock():
            made = _missing(sorted(recorded))
            # A record may come from another host, or from before this host's network changed.
            host_network.verify_made(
                [(name, recorded[name]) for name in made], f"Not recreating the networks of {app}: "
            )
            for name in made:
                info(f"Recreating network {name}")
                networks.make(name, recorded[name])  # False: network:create made it meanwhile
            if new_own and _missing([own]):
                from network_plugin.subnet_pool import make_app_network

                make_app_network(app, own)
    if unrecorded:
        name = unrecorded[0]
        key = next(key for key, named_network in named if named_network == name)
        raise PluginError(
            f"Network {name} (the {key} of {app}) does not exist and has no record to recreate it"
            f" from: make it with `dokku network:create {name}` and its options, or import a"
            " backup with `dokku network:import`"
        )


def _missing(names: list[str]) -> list[str]:
    present = docker_engine.network_ids(names)
    return [name for name in names if name not in present]
