"""The checks of `tools/switch`, run by a staged copy of the plugin before it takes the place of
Dokku's (docs/reference.md: Switching from Dokku's plugin): they read, and change nothing.

The Docker engine answers (its version and API), Dokku's version, and every property stored
on the host read with this plugin's rules: a value Dokku's plugin took that this one refuses
would stop the next deploy, so each is named with its fix. A network record that cannot be
read is one too. Exit status 1 when any check failed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from network_plugin import properties, records
from network_plugin.apps import list_apps
from network_plugin.error_handler import PluginError, describe
from network_plugin.output import info, warn
from network_plugin.paths import GLOBAL_APP


def engine_version() -> str:
    """`Docker <version> (API <version>)`; PluginError when no engine answers."""
    from network_plugin import docker_engine

    version = docker_engine.api().version()
    return f"Docker {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"


def dokku_version() -> str:
    """What `dokku version` says, or why it cannot."""
    dokku = shutil.which("dokku")
    if dokku is None:
        return "not found on PATH (this host runs no Dokku?)"
    done = subprocess.run([dokku, "version"], capture_output=True, text=True, check=False)
    return (done.stdout.strip().splitlines() or [f"exit status {done.returncode}"])[-1]


def refused_properties() -> list[str]:
    """A line for each stored value the plugin would refuse, of `--global` and of every app."""
    return [line for owner in (GLOBAL_APP, *list_apps()) for line in properties.refused_values(owner)]


def main(argv: list[str]) -> int:
    failed = False
    try:
        info(f"The Docker engine answers: {engine_version()}")
    except (PluginError, OSError) as error:
        warn(describe(error))
        failed = True
    info(f"Dokku: {dokku_version()}")
    refused = refused_properties()
    for line in refused:
        warn(line)
    _, unreadable = records.recorded()  # a warning line each
    if refused or unreadable:
        return 1
    info("Every stored network property and record passes this plugin's rules")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
