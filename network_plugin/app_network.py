"""An app's network of its own (`app-network`; docs/reference.md: Apps on networks of their own).

On Dokku's default bridge every app shares one subnet: after a reboot or any stop/start, an
address one app's proxy config still names can be handed to another app's container, and
the proxy then serves one customer's responses to another's visitors (dokku/dokku#8313).
An address can only be reused by whoever shares its subnet: with `app-network` on, the app's
containers are created on `dokku-app-<app>`, a bridge network of the app alone, with a /24
of `app-network-pool` (subnet_pool.py).

What the app gets is read from files alone (properties, scheduler, docker options): the
readers that ask (docker-args-process-*, network-get-property, the IP lookup) stay cheap.
"""

from __future__ import annotations

from network_plugin import properties
from network_plugin.apps import DEFAULT_SCHEDULER, scheduler
from network_plugin.files import read_value
from network_plugin.paths import docker_options_files
from network_plugin.validation import APP_NETWORK_PREFIX, is_ip_address, verify_process_type

DEPLOY_PHASE = "deploy"
# The phases Dokku keeps docker options for.
PHASES = ("build", DEPLOY_PHASE, "run")
NETWORK_OPTIONS = ("--network", "--net")


def name_of(app: str) -> str:
    return APP_NETWORK_PREFIX + app


def is_on(app: str) -> bool:
    return properties.verified_computed(app, properties.APP_NETWORK) == "true"


def why_not_used(app: str, process_type: str = "", phase: str = DEPLOY_PHASE) -> str:
    """Why the app's containers are not put on its own network although `app-network` is on
    ('' when they are)."""
    initial = properties.verified_computed(app, properties.INITIAL_NETWORK)
    if initial:
        return f"its initial-network {initial} is used instead"
    if properties.get(app, properties.STATIC_WEB_LISTENER):
        return "its web process listens on its static-web-listener, not in containers the proxy reaches"
    selected = scheduler(app)
    if selected != DEFAULT_SCHEDULER:
        return f"its scheduler is {selected}: app networks are made for the containers of docker-local"
    option = docker_options_network(app, process_type, phase)
    if option:
        return f"its docker options give {option}"
    return ""


def own_network(app: str, process_type: str = "", phase: str = DEPLOY_PHASE) -> str:
    """`dokku-app-<app>` when the app's containers are created on it, else ''."""
    return name_of(app) if is_on(app) and not why_not_used(app, process_type, phase) else ""


def creation_network(app: str, process_type: str = "", phase: str = DEPLOY_PHASE) -> str:
    """The network the app's containers are created on, when not Docker's default: the computed
    `initial-network`, else the app's own network; '' for the default bridge."""
    return properties.verified_computed(app, properties.INITIAL_NETWORK) or own_network(
        app, process_type, phase
    )


def with_own(
    app: str,
    named: list[tuple[str, str]],
    keys: tuple[str, ...],
    process_type: str = "",
    phase: str = DEPLOY_PHASE,
) -> list[tuple[str, str]]:
    """`named` ((property, network) the app's `keys` name), and the app's own network when its
    containers are created on it (`initial-network` among `keys`)."""
    own = own_network(app, process_type, phase) if properties.INITIAL_NETWORK in keys else ""
    return [*named, (properties.APP_NETWORK, own)] if own else named


def docker_options_network(app: str, process_type: str, phase: str) -> str:
    """The `--network` the app's docker options give its containers in `phase` ('' when none):
    a container has one network mode, and `host` has no address of its own to isolate."""
    if phase not in PHASES:
        return ""
    if process_type:
        verify_process_type(process_type)  # it names a file
    for path in docker_options_files(app, phase, process_type):
        words = read_value(path).split()
        for index, word in enumerate(words):
            name, equals, value = word.partition("=")
            if name in NETWORK_OPTIONS:
                given = value if equals else (words[index + 1] if index + 1 < len(words) else "")
                return f"{name}={given}"
    return ""


def remove_unused(app: str) -> None:
    """`post-delete` (also the old name's, after a rename): remove the app's own network and
    its record once no container of the app uses it. Containers the plugin connected to it
    for their links (a database service) are disconnected first: they live on. Only a
    network this host recorded as the app's is touched (checked without the engine: most
    apps have none)."""
    from network_plugin import records

    name = name_of(app)
    if not records.can_record(name) or not records.is_recorded(name):
        return
    from network_plugin.error_handler import unless_engine_fault

    unless_engine_fault(
        lambda: _remove(app, name), f": network {name} stays; remove it with `dokku network:destroy {name}`"
    )


def _remove(app: str, name: str) -> None:
    from network_plugin import docker_engine, records
    from network_plugin.output import info, warn

    network = docker_engine.inspect_network(name)
    if network is None:
        records.remove(name)
        return
    if (network.get("Labels") or {}).get(docker_engine.APP_LABEL) != app:
        warn(f"Network {name} is not the app network of {app} (its labels say otherwise): left alone")
        return
    users = docker_engine.list_containers({"network": [network["Id"]]})
    own = sorted(user.name for user in users if user.app == app)
    if own:
        warn(
            f"Network {name} stays: containers of {app} still use it ({', '.join(own)});"
            f" remove it with `dokku network:destroy {name}` once they are gone"
        )
        return
    for user in users:
        docker_engine.api().disconnect_container_from_network(user.id, network["Id"], force=True)
    docker_engine.api().remove_network(network["Id"])
    records.remove(name)
    info(f"Removed network {name} of {app}")


def status(app: str) -> str:
    """What `app-network` does for the app now, for `network:report`: `off`, `in use`, why it is
    not used, or that it takes effect (or ends) at the next deploy. Read from the files alone:
    the app's IP files against the subnet recorded for its network."""
    on = properties.computed(app, properties.APP_NETWORK) == "true"
    why = why_not_used(app) if on else ""
    if why:
        return f"not used: {why}"
    inside = _addresses_inside_own_subnet(app)
    if on:
        if False in inside:
            return "takes effect at the next deploy or ps:rebuild (containers on another network until then)"
        return "in use"
    if True in inside:
        return f"off: the containers leave {name_of(app)} at the next deploy or ps:rebuild"
    return "off"


def _addresses_inside_own_subnet(app: str) -> set[bool]:
    """For each IP file of the app, whether its address lies in the recorded subnet of the app's
    own network (all outside when it has no record)."""
    from network_plugin import listeners, records

    addresses = listeners.ip_addresses(app)
    name = name_of(app)
    if not (records.can_record(name) and records.is_recorded(name)):
        return {False} if any(is_ip_address(address) for address in addresses) else set()
    import ipaddress  # only for an app whose network is recorded: milliseconds a reader saves

    options = records.read(name)
    subnets = [ipaddress.ip_network(pool.subnet) for pool in options.pools] if options else []
    found = set()
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue  # a host name (static listener): no container address
        found.add(any(ip in subnet for subnet in subnets))
    return found
