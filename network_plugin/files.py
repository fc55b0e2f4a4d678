"""Reading and atomically writing the plugin's small files.

A write goes to a temp file in the same folder, is fsynced, then renamed over
the target: a reader sees the old content or the new one, never a torn file.
Callers hold the app's lock (see `file_lock`) while writing.
"""

from __future__ import annotations

import errno
import os
import stat

FILE_MODE = 0o600
DIR_MODE = 0o755
_DIGITS = frozenset("0123456789")


def _open_regular(path: str) -> int:
    """A read descriptor of the regular file at `path`, -1 when absent; OSError for anything
    else, opened without blocking: a FIFO planted as `IP.web.1` must never hang a trigger, a
    device never feed it forever."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return -1
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        raise OSError(errno.EINVAL, "Not a regular file", path)
    return descriptor


def read_value(path: str) -> str:
    """A property-style value: the file's content without surrounding whitespace, '' if absent."""
    descriptor = _open_regular(path)
    if descriptor < 0:
        return ""
    with open(descriptor, encoding="utf-8", errors="replace", newline="") as handle:
        return handle.read().strip()


def read_first_line(path: str) -> str:
    value = read_value(path)
    return value.split("\n", 1)[0].strip()


def dokku_owner() -> tuple[int, int] | None:
    """(uid, gid) files should belong to: the Dokku user, when we run as root and it exists."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd

    try:
        uid = pwd.getpwnam(os.environ.get("DOKKU_SYSTEM_USER") or "dokku").pw_uid
        gid = grp.getgrnam(os.environ.get("DOKKU_SYSTEM_GROUP") or "dokku").gr_gid
    except KeyError:
        return None
    return uid, gid


def ensure_dir(path: str) -> str:
    """Create `path` (and missing parents) as 0755 folders owned by the Dokku user."""
    if os.path.isdir(path):
        return path
    parent = os.path.dirname(path)
    if parent and parent != path:
        ensure_dir(parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return path
    os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the caller's umask
    owner = dokku_owner()
    if owner:
        os.chown(path, *owner)
    return path


def holds(path: str, content: str) -> bool:
    """Does the file at `path` hold exactly `content`?"""
    data = content.encode("utf-8")
    try:
        descriptor = _open_regular(path)
    except OSError:
        return False  # a folder, a FIFO: the write replaces it
    if descriptor < 0:
        return False
    with open(descriptor, "rb") as handle:
        return handle.read(len(data) + 1) == data


def write_atomic(path: str, content: str, mode: int = FILE_MODE, dokku_owned: bool = True) -> bool:
    """Replace `path` with `content` (mode 0600, the Dokku user's); False when it already held exactly that.

    `dokku_owned=False` leaves the file to whoever writes it (root, for a systemd unit).
    """
    if holds(path, content):
        return False
    data = content.encode("utf-8")
    directory, name = os.path.split(path)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temp, flags, mode)
    try:
        try:
            os.fchmod(descriptor, mode)
            owner = dokku_owner() if dokku_owned else None
            if owner:
                os.fchown(descriptor, *owner)
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temp, path)
    except BaseException:
        remove_file(temp)
        raise
    _remove_stale_temps(directory, name)
    fsync_dir(directory)
    return True


def _remove_stale_temps(directory: str, name: str) -> None:
    """Drop `.<name>.<pid>.tmp` files of writers killed before their rename.

    Every writer holds the app's lock, so no live process owns one of them.
    """
    prefix = f".{name}."
    for entry in os.listdir(directory or "."):
        pid = entry[len(prefix) : -len(".tmp")]
        if entry.startswith(prefix) and entry.endswith(".tmp") and pid and _DIGITS.issuperset(pid):
            remove_file(os.path.join(directory, entry))


def remove_tree(path: str) -> None:
    """`rm -rf` of one of our folders without shutil's import cost; never follows a link."""
    if not os.path.lexists(path):
        return  # also a name too long to exist on this filesystem
    if os.path.islink(path):
        remove_file(path)
        return
    for folder, folders, files in os.walk(path, topdown=False):
        for name in files:
            remove_file(os.path.join(folder, name))
        for name in folders:
            entry = os.path.join(folder, name)
            if os.path.islink(entry):
                remove_file(entry)
            else:
                os.rmdir(entry)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def remove_file(path: str) -> None:
    """Remove `path`; a file that is not there, or whose name is too long to exist, is removed already."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        if error.errno != errno.ENAMETOOLONG:
            raise


def replace_link(path: str, target: str) -> None:
    """Make `path` a link to `target` in one step: a new link renamed over whatever was there."""
    temp = f"{path}.{os.getpid()}.tmp"
    os.symlink(target, temp)
    os.replace(temp, path)


def fsync_dir(directory: str) -> None:
    descriptor = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
