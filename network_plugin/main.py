"""Entry point of every executable: dispatch on the program's own name.

`$PLUGIN/<trigger>` links to `triggers/<trigger>`; `$PLUGIN/commands` and
`$PLUGIN/subcommands/<cmd>` reach the command line. Only the module of the
trigger being run is imported.
"""

from __future__ import annotations

import os
import sys

from network_plugin.error_handler import run

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

# trigger name -> ("module:function", whether it may ask the running `network:watch` for its
# engine calls or, for a writer, to make its write: network_plugin.warm). Not here, on
# purpose (plugn skips a plugin without the executable, which costs a deploy nothing):
# `post-create` (a new app gets no bind-all-interfaces of its own, so a global value reaches
# it), `post-deploy` (it follows `core-post-deploy` in the same deploy, which attached),
# `network-clear-config` (nginx calls it on every ps:restore and rebuilds only when
# network-config-exists says true: removing IP/PORT files there left apps without upstream
# until the next deploy).
TRIGGERS = {
    "install": ("triggers:install", False),
    "update": ("triggers:update", False),
    "uninstall": ("triggers:uninstall", False),
    "post-delete": ("triggers:post_delete", False),
    "post-app-clone-setup": ("triggers:post_app_clone_setup", True),
    "post-app-rename-setup": ("triggers:post_app_rename_setup", True),
    "docker-args-process-build": ("triggers:docker_args_process_build", True),
    "docker-args-process-deploy": ("triggers:docker_args_process_deploy", True),
    "docker-args-process-run": ("triggers:docker_args_process_run", True),
    "network-config-exists": ("triggers:network_config_exists", False),
    "network-get-listeners": ("triggers:network_get_listeners", False),
    "network-get-property": ("triggers:network_get_property", False),
    "network-get-static-listeners": ("triggers:network_get_static_listeners", False),
    "network-write-ipaddr": ("triggers:network_write_ipaddr", True),
    "network-write-port": ("triggers:network_write_port", True),
    "report": ("triggers:report", False),
    "post-container-create": ("docker_triggers:post_container_create", True),
    "core-post-deploy": ("docker_triggers:core_post_deploy", True),
    "network-build-config": ("docker_triggers:network_build_config", True),
    "network-get-ipaddr": ("docker_triggers:network_get_ipaddr", True),
}
COMMANDS_PROGRAM = "commands"
COMMANDS_TARGET = "commands:main"


def target_for(program_path: str) -> tuple[str, bool] | None:
    """The program's entry: its target, and whether it may ask the watcher."""
    program = os.path.basename(program_path)
    in_subcommands = os.path.basename(os.path.dirname(program_path)) == "subcommands"
    if program == COMMANDS_PROGRAM or in_subcommands:
        return COMMANDS_TARGET, False
    return TRIGGERS.get(program)


def main(argv: list[str]) -> int:
    entry = target_for(argv[0] if argv else "")
    if entry is None:
        return 0  # plugn only runs triggers we link; any other name is not ours to handle
    target, asks_watcher = entry
    if asks_watcher:
        from network_plugin import warm

        warm.ask_watcher_first()
    return run(function_of(target), argv[1:])


def function_of(target: str) -> Callable[[list[str]], int]:
    """The function a `module:function` target names, its module imported only now."""
    module_name, function_name = target.split(":")
    module = __import__(f"network_plugin.{module_name}", fromlist=[function_name])
    return getattr(module, function_name)


def leave(exit_code: int) -> NoReturn:
    """End a trigger with `exit_code` without the interpreter's teardown: freeing every module
    it loaded costs ~1.3 ms, a tenth of a warm engine trigger, in a process about to end.

    Every file it wrote is closed by the code that wrote it (and synced, then renamed), no
    thread runs, and its output is flushed here; a flush that fails (a reader gone) leaves the
    exit to the interpreter, which reports it as it always did.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(exit_code)
    os._exit(exit_code)
