"""`dokku network:*` commands, one function each, parsed with typer.

Dokku calls `$PLUGIN/subcommands/<cmd> network:<cmd> <args...>`; its global
`--quiet`/`--force` arrive as DOKKU_QUIET_OUTPUT / DOKKU_APPS_FORCE_DELETE.
Usage errors and failures are reported as ` !     ` lines, never as typer boxes.
"""

from __future__ import annotations

from typing import Annotated

import typer

from network_plugin import properties
from network_plugin.apps import list_apps, verify_app
from network_plugin.error_handler import PluginError
from network_plugin.output import section, warn
from network_plugin.paths import GLOBAL_APP
from network_plugin.report import report, verify_format
from network_plugin.validation import verify_app_name

# Arguments such as `--global` or `--network-tld` are data here, not options.
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
NO_APPS_MESSAGE = "You haven't deployed any applications yet"

cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

FormatOption = Annotated[str, typer.Option("--format", help="stdout or json")]


@cli.command("network:set", context_settings=PASS_THROUGH)
def set_property(
    app: Annotated[str, typer.Argument(help="app name, or --global")] = "",
    key: Annotated[str, typer.Argument(help="property")] = "",
    values: Annotated[list[str] | None, typer.Argument(help="value(s); none unsets")] = None,
) -> None:
    """Set or clear a network property for an app."""
    if app != GLOBAL_APP:
        verify_app(app)
    properties.verify_key(key)
    if app == GLOBAL_APP and key not in properties.GLOBAL_KEYS:
        raise PluginError("Property cannot be specified globally")
    value = properties.validated_value(app, key, values or [])
    if value:
        section(f"Setting {key} to {value}")
        properties.write(app, key, value)
    else:
        section(f"Unsetting {key}")
        properties.delete(app, key)


@cli.command("network:report", context_settings=PASS_THROUGH)
def report_command(
    args: Annotated[list[str] | None, typer.Argument(help="[<app>|--global] [<flag>]")] = None,
    output_format: FormatOption = "stdout",
) -> None:
    """Displays a network report for one or more apps."""
    verify_format(output_format)
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


def run(args: list[str]) -> int:
    """Run `network:<cmd> <args...>`; errors propagate to the caller's error handler."""
    try:
        result = cli(args=args, prog_name="dokku", standalone_mode=False)
    except typer.TyperException as error:  # usage errors: bad option, missing argument
        raise PluginError(error.format_message()) from error
    except typer.Abort as error:  # e.g. end of input at a prompt
        raise PluginError("Aborted") from error
    return result if isinstance(result, int) else 0
