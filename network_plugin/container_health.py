"""Listeners left out while Docker finds their container unhealthy (docs/reference.md: Listeners
that follow container health).

Docker runs an image's `HEALTHCHECK` (or an app's `--health-cmd`) and marks a container
`unhealthy`; Dokku routes to it until the next deploy all the same. `network:watch` follows
the engine's `health_status` events and keeps, for each app with an unhealthy deploy
container, `<watch folder>/health/<app>`: the containers' full ids, one a line. By id, so an
entry never hides the container that replaced it (a deploy, a `ps:rebuild`). A listener is
left out while its `CONTAINER.<proc>.<n>` names one of them and another candidate of its
process type is not; all unhealthy, all are listed (an empty upstream loses every request).

Readers make no engine call and take no lock: they trust an app's file only while a watcher
holds the host's watcher lock (`watcher_lock`: the kernel drops it when the watcher dies) and
says its event stream is live (`following` in its folder: removed when the stream is lost,
made again once every app's file has been rewritten from a new listing). So nothing a stopped
or disconnected watcher wrote keeps a container out. Containers without a healthcheck, and
`starting` ones, count as healthy; no health of the plugin's own is computed.
"""

from __future__ import annotations

import os

from network_plugin import watcher_lock
from network_plugin.files import (
    ensure_dir,
    is_file,
    list_folder,
    read_first_line,
    read_value,
    remove_file,
    write_atomic,
)
from network_plugin.paths import app_root, container_file, warm_root
from network_plugin.validation import is_app_name

UNHEALTHY = "unhealthy"
FOLLOWING_NAME = "following"
HEALTH_FOLDER = "health"
_HEX = frozenset("0123456789abcdef")
CONTAINER_ID_LENGTH = 64


def health_root() -> str:
    return os.path.join(warm_root(), HEALTH_FOLDER)


def health_file(app: str) -> str:
    return os.path.join(health_root(), app)


def following_file() -> str:
    return os.path.join(warm_root(), FOLLOWING_NAME)


def is_container_id(value: str) -> bool:
    return len(value) == CONTAINER_ID_LENGTH and not set(value) - _HEX


def unhealthy(app: str) -> frozenset[str]:
    """Ids of the app's containers a running, following watcher finds unhealthy (empty: none, or
    no watcher to trust)."""
    ids = frozenset(word for word in read_value(health_file(app)).split() if is_container_id(word))
    if ids and is_file(following_file()) and watcher_lock.held():
        return ids
    return frozenset()


def left_out(app: str, process_type: str, indexes: list[str]) -> tuple[list[str], bool]:
    """(the container indexes of `indexes` whose listener is left out for health, in their order;
    whether every one is unhealthy, and so none is left out)."""
    ids = unhealthy(app)
    if not ids:
        return [], False
    sick = [
        index
        for index in indexes
        if read_first_line(container_file(app, "CONTAINER", process_type, index)) in ids
    ]
    if sick and len(sick) == len(indexes):
        return [], True
    return sick, False


def all_unhealthy_warning(app: str, process_type: str) -> str:
    return f"Every {process_type} container of {app} is unhealthy: all are listed, else none would be"


# --- the watcher's side ----------------------------------------------------------------------


def apps_with_files() -> list[str]:
    return [name for name in list_folder(health_root()) if is_app_name(name)]


def write(app: str, ids: frozenset[str]) -> bool:
    """Keep the app's file true to `ids` (none: no file); True when it changed. Under the app's
    lock, atomically; an app that is gone gets no file (and no lock of its own made for it)."""
    from network_plugin.file_lock import AppLock

    path = health_file(app)
    if not os.path.isdir(app_root(app)):
        return _remove(path)
    with AppLock(app):
        if not ids:
            return _remove(path)
        ensure_dir(health_root())
        return write_atomic(path, "".join(f"{container_id}\n" for container_id in sorted(ids)))


def _remove(path: str) -> bool:
    if not is_file(path):
        return False
    remove_file(path)
    return True


def set_following(following: bool) -> None:
    """Say (or stop saying) that the watcher's stream is live: the readers trust the files then."""
    if following:
        write_atomic(following_file(), "")
    else:
        remove_file(following_file())
