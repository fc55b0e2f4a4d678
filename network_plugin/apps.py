"""Dokku apps as seen on disk: names, roots, the scheduler that runs them."""

from __future__ import annotations

import os

from network_plugin.error_handler import PluginError
from network_plugin.files import read_first_line
from network_plugin.paths import GLOBAL_APP, app_root, dokku_root, scheduler_file
from network_plugin.validation import is_app_name, verify_app_name

APP_MISSING_EXIT = 20
DEFAULT_SCHEDULER = "docker-local"


def verify_app(app: str) -> str:
    """Check `app` is a valid name of an existing app; return its root."""
    verify_app_name(app)
    root = app_root(app)
    if not os.path.isdir(root):
        raise PluginError(f"App {app} does not exist", APP_MISSING_EXIT)
    return root


def list_apps() -> list[str]:
    """Every app under DOKKU_ROOT, in name order (folders with a valid app name)."""
    try:
        entries = os.scandir(dokku_root())
    except FileNotFoundError:
        return []
    with entries:
        return sorted(entry.name for entry in entries if is_app_name(entry.name) and entry.is_dir())


def scheduler(app: str) -> str:
    return (
        read_first_line(scheduler_file(app))
        or read_first_line(scheduler_file(GLOBAL_APP))
        or DEFAULT_SCHEDULER
    )


def proxy_is_enabled(app: str) -> bool:
    """Ask Dokku's proxy plugin through plugn; without plugn (no Dokku here) assume it is."""
    import shutil
    import subprocess  # only `install` asks: readers must not pay for these imports

    plugn = shutil.which("plugn")
    if plugn is None:
        return True
    answer = subprocess.run(
        [plugn, "trigger", "proxy-is-enabled", app], capture_output=True, text=True, check=False
    )
    return answer.stdout.strip() != "false"
