"""`$PLUGIN/commands` and `$PLUGIN/subcommands/<cmd>`: help, and hand-off to the CLI.

Dokku asks every plugin's `commands` about commands it cannot place, so the
answer for anything that is not ours (DOKKU_NOT_IMPLEMENTED_EXIT) stays cheap:
typer is imported only for our own `network:*` commands.
"""

from __future__ import annotations

import os

USAGE_HEADER = """Usage: dokku network[:COMMAND]

Manage network settings for an app

Additional commands:"""

HELP_SUMMARY = "Manage network settings for an app"

# (usage, description) of every subcommand, in help order.
SUBCOMMAND_HELP = (
    (
        "network:create <network> [<option>...]",
        "Creates an attachable docker network"
        " (--driver --subnet --gateway --ip-range --internal --ipv6 --opt --label)",
    ),
    ("network:destroy <network> [--force]", "Destroys a docker network"),
    ("network:exists <network>", "Checks if a docker network exists"),
    (
        "network:export [--app <app>] [--allow-partial]",
        "Prints the recorded networks and network properties as JSON, for network:import",
    ),
    ("network:import", "Creates the networks and sets the properties of a network:export document on stdin"),
    ("network:info <network> [--format text|json]", "Outputs information about a docker network"),
    ("network:list [--format text|json] [--dokku-managed]", "Lists all docker networks"),
    ("network:rebuild <app>", "Rebuilds network settings for an app"),
    ("network:rebuildall", "Rebuild network settings for all apps"),
    (
        "network:report [<app>|--global] [--format stdout|json] [<flag>]",
        "Displays a network report for one or more apps",
    ),
    ("network:set <app>|--global <property> [<value>...]", "Set or clear a network property for an app"),
    (
        "network:watch [--status]",
        "Keeps IP files and proxies in sync with the engine and answers the engine triggers, until stopped",
    ),
)
SUBCOMMANDS = tuple(usage.split(" ", 1)[0].split(":", 1)[1] for usage, _ in SUBCOMMAND_HELP)


def usage() -> str:
    width = max(len(command) for command, _ in SUBCOMMAND_HELP)
    lines = [f"    {command.ljust(width)}  {text}" for command, text in SUBCOMMAND_HELP]
    return "\n".join([USAGE_HEADER, *lines])


def not_implemented_exit() -> int:
    try:
        return int(os.environ.get("DOKKU_NOT_IMPLEMENTED_EXIT") or 10)
    except ValueError:
        return 10


def main(args: list[str]) -> int:
    command = args[0] if args else ""
    if command in ("network", "network:help"):
        print(usage())
        return 0
    if command == "help":
        if "--all" in args[1:]:
            # `dokku help --all` parses `<usage>, <description>` lines and lays them out itself.
            print("\n".join(f"    {command}, {text}" for command, text in SUBCOMMAND_HELP))
        else:
            print(f"\n    network, {HELP_SUMMARY}")
        return 0
    if command.startswith("network:") and command[len("network:") :] in SUBCOMMANDS:
        from network_plugin.subcommands import run

        return run(args)
    return not_implemented_exit()
