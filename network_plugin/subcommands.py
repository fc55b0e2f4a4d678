"""`dokku network:*` commands, one function each, parsed with typer.

Dokku calls `$PLUGIN/subcommands/<cmd> network:<cmd> <args...>`; its global
`--quiet`/`--force` arrive as DOKKU_QUIET_OUTPUT / DOKKU_APPS_FORCE_DELETE.
Usage errors and failures are reported as ` !     ` lines, never as typer boxes.

Unlike every other module, this one has no `from __future__ import annotations`:
typer reads its parameters from the annotations, and the typer releases for
Python 3.9 cannot read them as strings (they take every argument for an option).
So the annotations here are evaluated, and written as Python 3.9 evaluates them:
`Optional[list[str]]`, not `list[str] | None`.
"""

from typing import Annotated, Optional

import typer

try:  # typer 0.27+ parses the command line itself; the releases for Python 3.9 use click
    from typer import TyperException as UsageError
except ImportError:
    from click import ClickException as UsageError

from network_plugin import app_network, properties
from network_plugin.apps import list_apps, verify_app
from network_plugin.error_handler import PluginError
from network_plugin.output import info, section, warn
from network_plugin.paths import GLOBAL_APP
from network_plugin.report import report
from network_plugin.validation import verify_app_name, verify_format

# Arguments such as `--global` or `--network-tld` are data here, not options.
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
NO_APPS_MESSAGE = "You haven't deployed any applications yet"

cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

# A repeatable argument or option (evaluated at run time: see the module's docstring).
Repeated = Optional[list[str]]
FormatOption = Annotated[str, typer.Option("--format", help="stdout or json")]


@cli.command("network:set", context_settings=PASS_THROUGH)
def set_property(
    app: Annotated[str, typer.Argument(help="app name, or --global")] = "",
    key: Annotated[str, typer.Argument(help="property")] = "",
    values: Annotated[Repeated, typer.Argument(help="value(s); none unsets")] = None,
) -> None:
    """Set or clear a network property for an app."""
    if app != GLOBAL_APP:
        verify_app(app)
    properties.verify_key(key, app)
    value = properties.set_value(app, key, values or [])
    section(f"Setting {key} to {value}" if value else f"Unsetting {key}")
    if key in properties.NETWORK_KEYS and value:
        warn_about_missing_networks(app, key, value)
    if key == properties.APP_NETWORK and app != GLOBAL_APP:
        status = app_network.status(app)
        if status.startswith("not used"):
            warn(f"app-network of {app}: {status}")
        elif status not in ("off", "in use"):
            info(f"app-network of {app}: {status}")


def warn_about_missing_networks(owner: str, key: str, value: str) -> None:
    """Stored as Dokku allows, but said: a network that neither exists nor comes back (no record)
    stops the next deploy of the apps it reaches. An engine out of reach checks nothing."""
    from network_plugin import docker_engine, records
    from network_plugin.validation import DOCKER_NETWORKS

    names = [name for name in properties.networks(value) if name not in DOCKER_NETWORKS]
    try:
        found = docker_engine.networks_by_name(names)
    except (PluginError, OSError):  # OSError: the SDK's connection errors
        return
    for name in names:
        if name not in found and not records.is_recorded(name):
            whose = "every app's" if owner == GLOBAL_APP else f"{owner}'s"
            warn(
                f"Network {name} does not exist: {whose} next deploy stops on it"
                f" until it does (dokku network:create {name})"
            )


@cli.command("network:report", context_settings=PASS_THROUGH)
def report_command(
    args: Annotated[Repeated, typer.Argument(help="[<app>|--global] [<flag>]")] = None,
    output_format: FormatOption = "stdout",
) -> None:
    """Displays a network report for one or more apps."""
    verify_format(output_format, "stdout")
    names = [arg for arg in args or [] if arg == GLOBAL_APP or not arg.startswith("--")]
    flags = [arg for arg in args or [] if arg != GLOBAL_APP and arg.startswith("--")]
    if len(flags) > 1:
        raise PluginError("network:report command allows only a single flag")
    if len(names) > 1:
        raise PluginError(f"Too many arguments: {' '.join(names)}")
    info_flag = flags[0] if flags else ""
    if names:
        if names[0] != GLOBAL_APP:
            verify_app(names[0])
        report(names[0], output_format, info_flag)
        return
    apps = list_apps()
    if not apps:
        warn(NO_APPS_MESSAGE)
    for app in apps:
        verify_app_name(app)
        report(app, output_format, info_flag)


NetworkArgument = Annotated[str, typer.Argument(help="network name")]
TextFormatOption = Annotated[str, typer.Option("--format", help="text or json")]


@cli.command("network:create")
def create_command(
    network: NetworkArgument = "",
    *,
    driver: Annotated[str, typer.Option("--driver", help="bridge, overlay, macvlan or ipvlan")] = "bridge",
    subnet: Annotated[Repeated, typer.Option("--subnet", help="subnet in CIDR notation")] = None,
    gateway: Annotated[Repeated, typer.Option("--gateway", help="gateway of a subnet")] = None,
    ip_range: Annotated[
        Repeated, typer.Option("--ip-range", help="part of a subnet to allocate from")
    ] = None,
    internal: Annotated[bool, typer.Option("--internal", help="no access to the outside")] = False,
    ipv6: Annotated[bool, typer.Option("--ipv6", help="enable IPv6")] = False,
    opt: Annotated[Repeated, typer.Option("--opt", help="driver option KEY=VALUE")] = None,
    label: Annotated[Repeated, typer.Option("--label", help="label KEY=VALUE")] = None,
) -> None:
    """Creates an attachable docker network."""
    from network_plugin import network_options, networks
    from network_plugin.validation import verify_network_name

    verify_network_name(network)
    options = network_options.parse(
        network,
        driver=driver,
        subnets=subnet or [],
        gateways=gateway or [],
        ip_ranges=ip_range or [],
        internal=internal,
        ipv6=ipv6,
        opts=opt or [],
        labels=label or [],
    )
    networks.create(network, options)


@cli.command("network:destroy")
def destroy_command(
    network: NetworkArgument = "",
    force: Annotated[bool, typer.Option("--force", help="skip the confirmation")] = False,
) -> None:
    """Destroys a docker network."""
    from network_plugin import networks

    networks.destroy(network, force)


@cli.command("network:exists")
def exists_command(network: NetworkArgument = "") -> None:
    """Checks if a docker network exists."""
    from network_plugin import networks

    networks.show_exists(network)


@cli.command("network:info")
def info_command(network: NetworkArgument = "", output_format: TextFormatOption = "text") -> None:
    """Outputs information about a docker network."""
    from network_plugin import networks

    networks.show_info(network, output_format)


@cli.command("network:list")
def list_command(
    output_format: TextFormatOption = "text",
    dokku_managed: Annotated[bool, typer.Option("--dokku-managed", help="only Dokku's networks")] = False,
) -> None:
    """Lists all docker networks."""
    from network_plugin import networks

    networks.show_list(output_format, dokku_managed)


@cli.command("network:export")
def export_command(
    app: Annotated[str, typer.Option("--app", help="only this app and the networks it names")] = "",
    allow_partial: Annotated[
        bool, typer.Option("--allow-partial", help="exit 0 when unreadable records or values are left out")
    ] = False,
) -> None:
    """Prints the recorded networks and the network properties as one JSON document."""
    from network_plugin.transfer import export

    export(app, allow_partial)


@cli.command("network:import")
def import_command() -> None:
    """Creates the networks and sets the properties of a network:export document on stdin."""
    import sys

    from network_plugin.transfer import import_document, read_document

    import_document(read_document(sys.stdin))


@cli.command("network:rebuild")
def rebuild_command(app: Annotated[str, typer.Argument(help="app name")] = "") -> int:
    """Rebuilds network settings for an app; exit status = containers that failed."""
    verify_app(app)
    from network_plugin.network_config import rebuild

    return rebuild([app])


@cli.command("network:rebuildall")
def rebuildall_command() -> int:
    """Rebuild network settings for all apps; exit status = containers that failed."""
    apps = list_apps()
    if not apps:
        warn(NO_APPS_MESSAGE)
        return 0
    from network_plugin.network_config import rebuild

    return rebuild(apps)


@cli.command("network:watch")
def watch_command(
    status: Annotated[
        bool, typer.Option("--status", help="say whether the engine triggers are answered warm, and exit")
    ] = False,
) -> int:
    """Keeps IP files and proxies in sync with the engine, until stopped."""
    if status:
        from network_plugin.agent import status as warm_status
        from network_plugin.output import detail

        warm, line = warm_status()
        detail(line)
        return 0 if warm else 1
    from network_plugin.watch import watch

    return watch()


def run(args: list[str]) -> int:
    """Run `network:<cmd> <args...>`; errors propagate to the caller's error handler."""
    try:
        result = cli(args=args, prog_name="dokku", standalone_mode=False)
    except UsageError as error:  # usage errors: bad option, missing argument
        raise PluginError(error.format_message()) from error
    except typer.Abort as error:  # e.g. end of input at a prompt
        raise PluginError("Aborted") from error
    return result if isinstance(result, int) else 0
