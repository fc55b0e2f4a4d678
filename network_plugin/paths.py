"""Every path the plugin touches, derived from Dokku's environment variables."""

from __future__ import annotations

import os

PLUGIN_NAME = "network"
GLOBAL_APP = "--global"


def dokku_root() -> str:
    return os.environ.get("DOKKU_ROOT") or "/home/dokku"


def lib_root() -> str:
    return os.environ.get("DOKKU_LIB_ROOT") or "/var/lib/dokku"


def app_root(app: str) -> str:
    return os.path.join(dokku_root(), app)


def properties_root() -> str:
    return os.path.join(lib_root(), "config", PLUGIN_NAME)


def records_root() -> str:
    """Where the record of every network the plugin made is kept: a folder of Dokku's data
    tree, which Dokku's backup guide archives."""
    return os.path.join(lib_root(), "data", PLUGIN_NAME, "networks")


def property_dir(app: str) -> str:
    """Folder holding one file per property of `app` (or of `--global`)."""
    return os.path.join(properties_root(), app)


def docker_options_files(app: str, phase: str, process_type: str) -> list[str]:
    """The files of the app's docker options for `phase` (deploy, build, run), Dokku's
    docker-options plugin's property lists (for every process type, then `process_type`'s)
    and the file of the Dokku releases before them."""
    folder = os.path.join(lib_root(), "config", "docker-options", app)
    names = ["_default_", process_type] if process_type else ["_default_"]
    return [
        *(os.path.join(folder, f"{name}.{phase}") for name in names),
        os.path.join(app_root(app), f"DOCKER_OPTIONS_{phase.upper()}"),
    ]


def scheduler_file(app: str) -> str:
    return os.path.join(lib_root(), "config", "scheduler", app, "selected")


def container_file(app: str, kind: str, process_type: str, index: str) -> str:
    """`<app root>/<kind>.<proc>.<n>`, kind being CONTAINER, IP or PORT."""
    return os.path.join(app_root(app), f"{kind}.{process_type}.{index}")


def warm_root() -> str:
    """The folder of the socket on which `network:watch` answers the engine triggers: the
    service user's alone (0700)."""
    return os.path.join(lib_root(), "data", PLUGIN_NAME, "watch")
