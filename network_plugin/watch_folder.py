"""The folder of the watcher's socket (`paths.warm_root`): the Dokku user's alone (0700), since
the service that listens there runs as that user.

Root makes it too (a watcher started by hand as root), and gives it to the Dokku user as
`files._make_folder` gives every other folder of the plugin; one an older version's watcher left
root's is given back by the next watcher started as root, and by `install`. Otherwise the
service could not listen there (`Permission denied`) and every trigger would run cold for good:
`fault` says why in one line (the folder, its owner, what to run).
"""

from __future__ import annotations

import os

from network_plugin.error_handler import PluginError, describe
from network_plugin.files import FOLDER_FLAGS, dokku_owner, open_folder
from network_plugin.output import warn
from network_plugin.paths import warm_root

FOLDER_MODE = 0o700


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _wanted_uid(owner: tuple[int, int] | None) -> int:
    """The uid the folder must belong to: the Dokku user's (`owner`, as root when it exists),
    else our own."""
    return owner[0] if owner else os.geteuid()


def open_watch_folder(create: bool = True) -> int:
    """A descriptor of the folder (made with its missing parents when `create`), walked as every
    folder of the plugin and never a link itself; as root, one of root's is given to the Dokku
    user. PluginError (saying why) when it belongs to anyone else."""
    folder = warm_root()
    name = os.path.basename(folder)
    owner = dokku_owner()  # the user and group databases, read once
    parent = open_folder(os.path.dirname(folder), create=create)
    try:
        if create:
            try:
                os.mkdir(name, FOLDER_MODE, dir_fd=parent)
            except FileExistsError:
                pass
        try:
            descriptor = os.open(name, FOLDER_FLAGS, dir_fd=parent)
        except PermissionError:  # not ours to enter (0700): say whose it is
            reason = _owner_fault(os.stat(name, dir_fd=parent, follow_symlinks=False).st_uid, owner)
            if reason:
                raise PluginError(reason) from None
            raise
    finally:
        os.close(parent)
    try:
        uid = os.fstat(descriptor).st_uid
        if owner and uid == 0:
            os.fchown(descriptor, *owner)  # made just now, or left root's by a watcher run as root
            uid = owner[0]
        reason = _owner_fault(uid, owner)
        if reason:
            raise PluginError(reason)
        os.fchmod(descriptor, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def fault() -> str:
    """Why the folder is of no use to the watcher (the Dokku user's, as root): who owns it and
    what to run; "" when it is missing or as it should be."""
    folder = warm_root()
    try:
        parent = open_folder(os.path.dirname(folder))
    except (OSError, PluginError):
        return ""
    try:
        uid = os.stat(os.path.basename(folder), dir_fd=parent, follow_symlinks=False).st_uid
        return _owner_fault(uid, dokku_owner())
    except OSError:
        return ""
    finally:
        os.close(parent)


def _owner_fault(uid: int, owner: tuple[int, int] | None) -> str:
    """The line saying the folder belongs to `uid` and not to whom it should (`dokku_owner()`'s
    `owner`); "" when it should."""
    wanted = _wanted_uid(owner)
    if uid == wanted:
        return ""
    folder, user = warm_root(), _user_name(wanted)
    if uid == 0:
        return (
            f"{folder} belongs to root, not to {user} (a watcher run as root made it):"
            f" run `dokku plugin:install` as root, which gives it to {user}"
        )
    owner = _user_name(uid)
    return f"{folder} belongs to {owner}, not to {user}: remove it as root (the watcher makes it again)"


def give_to_dokku() -> None:
    """As root (`install`): the folder a watcher run as root left root's becomes the Dokku user's,
    so that the service listens there again. A folder not there yet is the watcher's to make."""
    if dokku_owner() is None:
        return
    try:
        os.close(open_watch_folder(create=False))
    except FileNotFoundError:
        pass
    except (OSError, PluginError) as error:
        warn(f"The watcher cannot answer the engine triggers: {describe(error)}")
