"""The one place where failures become a ` !     ` line and an exit code."""

from __future__ import annotations

import os
import sys

from network_plugin.output import warn

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")


ENGINE_UNREACHABLE = "Unable to reach the Docker engine"
# Where the SDK looks for the engine when DOCKER_HOST names none.
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


class PluginError(Exception):
    """A failure the user should read: its message is printed as is."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class EngineUnreachable(PluginError):
    """No client of the Docker engine could be made (no socket, no permission, bad DOCKER_HOST)."""

    def __init__(self, reason: BaseException) -> None:
        super().__init__(unreachable(reason))


class EngineAPIError(PluginError):
    """The engine answered a call with an error (the SDK's APIError, made light: a trigger
    answered warm never imports the SDK, yet must catch, and print, what the cold path would)."""

    def __init__(self, status_code: int | None, explanation: str) -> None:
        super().__init__(f"Docker engine error: {explanation}")
        self.status_code = status_code
        self.explanation = explanation


def run(action: Callable[[list[str]], int], args: list[str]) -> int:
    """Run `action(args)`; turn every exception into one stderr line and an exit code."""
    try:
        exit_code = action(args)
        sys.stdout.flush()
        return exit_code
    except PluginError as error:
        warn(error.message)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): silence the final flush at exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # noqa: BLE001 - no traceback may reach a user
        warn(describe(error))
        return 1


def engine_fault(error: Exception) -> str:
    """The line for a failure of the Docker engine or of the way to it; '' for any other error."""
    if isinstance(error, PluginError):
        return error.message if isinstance(error, (EngineUnreachable, EngineAPIError)) else ""
    module = type(error).__module__
    if module.startswith(("requests", "urllib3")):
        return unreachable(error)
    if module.startswith("docker"):
        return f"Docker engine error: {getattr(error, 'explanation', None) or error}"
    return ""


def unreachable(error: BaseException) -> str:
    """The line for an engine out of reach: the address tried and the plainest reason in the
    error's chain, never the HTTP library's internals (`('Connection aborted.', ...)`)."""
    docker_host = os.environ.get("DOCKER_HOST")
    where = f"{docker_host} (DOCKER_HOST)" if docker_host else f"{DEFAULT_DOCKER_HOST} (DOCKER_HOST unset)"
    return f"{ENGINE_UNREACHABLE} at {where}: {plainest_reason(error)}"


def plainest_reason(error: BaseException) -> str:
    """The first system error in an error's chain (`No such file or directory`, `Connection
    refused`, `Permission denied`), found through causes, contexts, arguments and urllib3's
    `reason`; else the error's own text."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        linked = [*current.args, current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return str(error)


def unless_engine_fault(action: Callable[[], T], then: str = "") -> T | None:
    """`action()`, or None once a fault of the engine (or of the way to it) is one warning, its
    line followed by `then`; any other error goes on up."""
    try:
        return action()
    except Exception as error:  # only engine faults are let through, as warnings
        message = engine_fault(error)
        if not message:
            raise
        warn(message + then)
        return None


def describe(error: Exception) -> str:
    """One line for an exception nobody translated; engine faults get Dokku's wording."""
    if isinstance(error, PluginError):
        return error.message
    # Checked before OSError: the SDK's and requests' errors derive from it.
    fault = engine_fault(error)
    if fault:
        return fault
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or error}{where}"
    return f"Unexpected error: {type(error).__name__}: {error}"
