"""Running containers put back on the networks their app names, for `network:watch`
(docs/reference.md: Networks that come back).

A network removed and created again (a restore, `docker network prune`, a compose project)
is a new network: the containers that were on the old one are on neither. When the engine
says a network was created, each app naming it gets one job: its running deployed
containers join it with their aliases, the way `core-post-deploy` attaches them. A
reconcile, which lists every container anyway, also finds those missing from a network of
their app's attach lists, for a job of the same kind.
"""

from __future__ import annotations

from network_plugin import app_network, attach, docker_engine, properties
from network_plugin.apps import list_apps
from network_plugin.docker_engine import ContainerState
from network_plugin.error_handler import PluginError, describe
from network_plugin.network_config import deployed_containers, states_of
from network_plugin.output import info, warn


def apps_naming(network: str) -> list[str]:
    """Every app whose computed initial-network or attach lists name `network`.

    An app whose properties cannot be read is one warning; the others go on.
    """
    return [app for app in list_apps() if network in _named(app, properties.NETWORK_KEYS)]


def _named(app: str, keys: tuple[str, ...]) -> list[str]:
    """The networks the app's computed `keys` name; none, in one warning, when unreadable."""
    try:
        return [name for _, name in app_network.with_own(app, properties.named_networks(app, keys), keys)]
    except (OSError, PluginError) as error:
        warn(f"Unable to read the network properties of {app}: {describe(error)}")
        return []


def reattach(app: str, names: list[str]) -> bool:
    """Attach the app's running deployed containers to each of `names` that exists, in one line;
    True when one of them is the app's initial network (its IP files may change)."""
    found = docker_engine.networks_by_name(names)
    present = [name for name in names if name in found]
    if not present:
        return False  # gone again: its next create brings it here again
    running = attach.running_deployed(app)
    inspected: dict[str, dict] = {}  # one inspect per container, whatever the number of networks
    connected = sum(attach.attach_running(running, found[name], app, inspected) for name in present)
    plural = "s" if len(present) > 1 else ""
    info(f"Attached {connected} container(s) of {app} to network{plural} {', '.join(present)} again")
    return app_network.creation_network(app) in present


def missing(app: str, states: dict[str, ContainerState]) -> list[str]:
    """The networks of the app's attach lists that one of its running deployed containers lacks,
    by the reconcile's listing `states`: no engine call when none lacks one."""
    names = _named(app, properties.ATTACH_KEYS)
    if not names:
        return []
    found = states_of([container_id for _, _, container_id in deployed_containers(app)], states)
    running = [state for state in found.values() if state.running and state.network_mode != "host"]
    return [name for name in names if any(name not in state.networks for state in running)]
