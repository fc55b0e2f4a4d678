"""Reading, atomically writing and removing the plugin's small files, never through a link
that is not root's.

A write goes to a temp file in the same folder, is fsynced, then renamed over
the target: a reader sees the old content or the new one, never a torn file.
Callers hold the app's lock (see `file_lock`) while writing.

The Dokku user owns the folders these files live in, and root runs the plugin too (`install`,
as `plugin:install` of any plugin runs it): a folder on the way replaced by a link must never
make root read, write or remove what the link points to. So every path is walked one folder at
a time from `/` (`_walk`), and each file is opened, renamed or unlinked relative to its folder's
descriptor: what a path shows later does not matter.
"""

from __future__ import annotations

import errno
import os
import stat

from network_plugin.error_handler import PluginError

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Callable

FILE_MODE = 0o600
DIR_MODE = 0o755
_DIGITS = frozenset("0123456789")
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Never blocking: a FIFO planted as `IP.web.1` must never hang a trigger, a device never feed it forever.
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
# As many links as the kernel follows in one path: a loop of links ends.
MAX_LINKS = 40
NAME_MAX = 255  # bytes of one name in a folder, on every filesystem Linux runs Dokku on


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


def _is_link(folder: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            return False  # nothing can be there
        raise


def _trusted_target(folder: int, name: str, shown: str) -> str:
    """The target of the link `name` in `folder`, when root owns it (or, for a process not
    run as root, the user it runs as): the operator's own link, such as a folder moved to
    another disk. Any other owner (the Dokku user, whose folders these are) is refused. The
    owner and the target are read from the one link opened (O_PATH), never from a swapped one."""
    link = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    try:
        status = os.fstat(link)
        if not stat.S_ISLNK(status.st_mode):
            raise OSError(errno.EAGAIN, "Changed while it was opened", shown)
        user = os.geteuid()
        if status.st_uid not in (0, user):
            owners = "root" if user == 0 else f"root or uid {user}"
            raise PluginError(
                f"Refusing to follow {shown}: a link owned by uid {status.st_uid}, not by {owners}"
            )
        return os.readlink("", dir_fd=link)
    finally:
        os.close(link)


def _make_folder(folder: int, name: str) -> int:
    """Create folder `name` in `folder` (0755, the Dokku user's) unless it is there; its descriptor."""
    try:
        os.mkdir(name, DIR_MODE, dir_fd=folder)
    except FileExistsError:
        return os.open(name, FOLDER_FLAGS, dir_fd=folder)
    child = os.open(name, FOLDER_FLAGS, dir_fd=folder)
    try:
        os.fchmod(child, DIR_MODE)  # mkdir's mode is filtered by the caller's umask
        owner = dokku_owner()
        if owner:
            os.fchown(child, *owner)
    except BaseException:
        os.close(child)
        raise
    return child


def _walk(
    path: str, *, create: bool = False, follow_last: bool = True, folder_last: bool = False
) -> tuple[int, str, str]:
    """(descriptor of the folder holding the last entry of `path`, that entry's name, its path).

    Every folder from `/` down is opened from the one before it without following a link
    (openat, O_NOFOLLOW): a folder swapped for a link while we walk is never entered. A link on
    the way is followed only when `_trusted_target` allows it, by walking its target the same
    way. The last entry is left to the caller, which opens, renames or unlinks it relative to
    the folder's descriptor (never following it); with `follow_last` a trusted link there is
    resolved first and any other refused; with `folder_last` it is a folder, opened too (then
    the name is ''). `create` makes missing folders. The caller closes the descriptor.
    """
    absolute = path.startswith("/")
    pending = _parts(path)[::-1]  # a stack: the next entry last
    folder = os.open("/" if absolute else ".", FOLDER_FLAGS)
    shown = "/" if absolute else ""
    links = 0
    try:
        while pending:
            name = pending.pop()
            entry = os.path.join(shown, name)
            if pending or folder_last:
                try:
                    child = _open_named(name, FOLDER_FLAGS, folder)
                except FileNotFoundError:
                    if not create:
                        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), entry) from None
                    child = _make_folder(folder, name)
                except NotADirectoryError:
                    if not _is_link(folder, name):
                        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), entry) from None
                    child = -1
                if child >= 0:
                    # Swapped before the close: the descriptor closed on a failure is always ours
                    # (the watcher's threads reuse numbers as soon as they are free).
                    folder, child = child, folder
                    shown = entry
                    os.close(child)
                    continue
            elif not follow_last or not _is_link(folder, name):
                return folder, name, entry
            links += 1
            if links > MAX_LINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), entry)
            target = _trusted_target(folder, name, entry)
            if target.startswith("/"):
                folder, child = os.open("/", FOLDER_FLAGS), folder
                shown = "/"
                os.close(child)
            pending.extend(reversed(_parts(target)))
        return folder, "", shown
    except BaseException:
        os.close(folder)
        raise


def open_folder(path: str, create: bool = False) -> int:
    """A descriptor of the folder `path`, walked as `_walk` does (FileNotFoundError when it is
    not there and not `create`d); the caller closes it."""
    return _walk(path, create=create, folder_last=True)[0]


def ensure_dir(path: str) -> str:
    """Create `path` (and missing parents) as 0755 folders owned by the Dokku user."""
    os.close(open_folder(path, create=True))
    return path


def list_folder(path: str) -> list[str]:
    """The names in the folder `path` ([] when it is not there)."""
    try:
        folder = open_folder(path)
    except FileNotFoundError:
        return []
    try:
        return os.listdir(folder)
    finally:
        os.close(folder)


def _open_named(name: str, flags: int, folder: int) -> int:
    """os.open of `name` in `folder`; a name too long to exist on this filesystem is not there."""
    try:
        return os.open(name, flags, dir_fd=folder)
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name) from None
        raise


def _open_regular_at(folder: int, name: str, shown: str) -> int:
    """A read descriptor of the regular file `name` in `folder`, -1 when absent; OSError for anything else."""
    try:
        descriptor = _open_named(name, READ_FLAGS, folder)
    except (FileNotFoundError, NotADirectoryError):
        return -1
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", shown)
        raise OSError(errno.EINVAL, "Not a regular file", shown)
    return descriptor


def _open_regular(path: str) -> int:
    """A read descriptor of the regular file at `path`, -1 when absent; OSError for anything else."""
    try:
        folder, name, shown = _walk(path)
    except (FileNotFoundError, NotADirectoryError):
        return -1
    try:
        return _open_regular_at(folder, name, shown)
    finally:
        os.close(folder)


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


def read_bytes(path: str, limit: int) -> bytes | None:
    """The content of the regular file at `path` (None when absent); ValueError beyond `limit` bytes."""
    descriptor = _open_regular(path)
    if descriptor < 0:
        return None
    try:
        data = os.read(descriptor, limit + 1)
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise ValueError("too large")
    return data


def is_file(path: str) -> bool:
    """Is there a regular file at `path`?"""
    try:
        folder, name, _ = _walk(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    finally:
        os.close(folder)


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


def _holds_at(folder: int, name: str, shown: str, data: bytes) -> bool:
    try:
        descriptor = _open_regular_at(folder, name, shown)
    except OSError:
        return False  # a folder, a FIFO: the write replaces it
    if descriptor < 0:
        return False
    with open(descriptor, "rb") as handle:
        return handle.read(len(data) + 1) == data


def holds(path: str, content: str) -> bool:
    """Does the file at `path` hold exactly `content`?"""
    try:
        folder, name, shown = _walk(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        return _holds_at(folder, name, shown, content.encode("utf-8"))
    finally:
        os.close(folder)


def write_atomic(path: str, content: str, mode: int = FILE_MODE, dokku_owned: bool = True) -> bool:
    """Replace `path` with `content` (mode 0600, the Dokku user's); False when it already held exactly that.

    Everything happens in the folder's descriptor (`_walk`): the temp file, the rename, the fsync.
    `dokku_owned=False` leaves the file to whoever writes it (root, for a systemd unit).
    """
    data = content.encode("utf-8")
    folder, name, shown = _walk(path)
    try:
        if _holds_at(folder, name, shown, data):
            return False
        temp = f".{name}.{os.getpid()}.tmp"
        descriptor = os.open(temp, WRITE_FLAGS, mode, dir_fd=folder)
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
            os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            _unlink_at(folder, temp)
            raise
        _remove_stale_temps(folder, name)
        os.fsync(folder)
    finally:
        os.close(folder)
    return True


def _remove_stale_temps(folder: int, name: str) -> None:
    """Drop `.<name>.<pid>.tmp` files of writers killed before their rename.

    Every writer holds the app's lock, so no live process owns one of them.
    """
    prefix = f".{name}."
    for entry in os.listdir(folder):
        pid = entry[len(prefix) : -len(".tmp")]
        if entry.startswith(prefix) and entry.endswith(".tmp") and pid and _DIGITS.issuperset(pid):
            _unlink_at(folder, entry)


def _unlink_at(folder: int, name: str) -> None:
    """Remove `name` from `folder`; one not there, or whose name is too long to exist, is removed already."""
    try:
        os.unlink(name, dir_fd=folder)
    except FileNotFoundError:
        pass
    except OSError as error:
        if error.errno != errno.ENAMETOOLONG:
            raise


def _remove_entry(folder: int, name: str) -> None:
    """`rm -rf` of `name` in `folder`: a link is removed, never what it points to."""
    try:
        _unlink_at(folder, name)
        return
    except IsADirectoryError:
        pass  # unlink(2) of a folder
    child = os.open(name, FOLDER_FLAGS, dir_fd=folder)
    try:
        for entry in os.listdir(child):
            _remove_entry(child, entry)
    finally:
        os.close(child)
    try:
        os.rmdir(name, dir_fd=folder)
    except FileNotFoundError:
        pass


def _remove(path: str, remover: Callable[[int, str], None]) -> None:
    """Apply `remover` to the last entry of `path` in its walked folder (none there: nothing to do)."""
    try:
        folder, name, _ = _walk(path, follow_last=False)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            return  # a name too long to exist on this filesystem
        raise
    try:
        remover(folder, name)
    finally:
        os.close(folder)


def remove_tree(path: str) -> None:
    """`rm -rf` of one of our folders without shutil's import cost; never follows a link in it."""
    _remove(path, _remove_entry)


def remove_file(path: str) -> None:
    """Remove `path` (a link there is removed, not followed); one that is not there is removed already."""
    _remove(path, _unlink_at)


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
