"""Refreshing an app's proxy once its IP files changed (docs/reference.md: Proxy refresh).

The proxy (nginx, caddy, haproxy, traefik) routes to the addresses in the IP
files only after it rebuilt its configuration, so a rewritten IP file without a
refresh still sends traffic to the old address. Never called from the
`network-build-config` trigger: the proxy's own build calls that trigger.
"""

from __future__ import annotations

import os

from network_plugin.error_handler import describe
from network_plugin.output import info, warn

COMMAND_VARIABLE = "DOKKU_NETWORK_PROXY_REFRESH"
DEFAULT_COMMAND = ("dokku", "--quiet", "proxy:build-config")
# A proxy build takes seconds; one that hangs must not hold the app's next refresh forever.
TIMEOUT_SECONDS = 300


def refresh_command(app: str) -> list[str]:
    """DOKKU_NETWORK_PROXY_REFRESH split as a shell splits words (else Dokku's command), then the app."""
    import shlex

    configured = os.environ.get(COMMAND_VARIABLE, "")
    words = shlex.split(configured) if configured.strip() else list(DEFAULT_COMMAND)
    return [*words, app]


def refresh(app: str) -> bool:
    """Run the refresh command for `app`; a failure is one warning line, never an exception."""
    import subprocess

    try:
        command = refresh_command(app)
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except ValueError as error:  # shlex: unbalanced quotes
        warn(f"Unable to refresh the proxy of {app}: {COMMAND_VARIABLE} cannot be split: {error}")
        return False
    except subprocess.TimeoutExpired:
        warn(f"Unable to refresh the proxy of {app}: no answer within {TIMEOUT_SECONDS} s")
        return False
    except OSError as error:
        warn(f"Unable to refresh the proxy of {app}: {describe(error)}")
        return False
    if done.returncode != 0:
        last_lines = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
        reason = f": {last_lines[0].strip()}" if last_lines else ""
        warn(f"Unable to refresh the proxy of {app}: {command[0]} exited with {done.returncode}{reason}")
        return False
    info(f"Refreshed the proxy of {app}")
    return True
