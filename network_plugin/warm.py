"""The triggers' side of the warm path: engine calls and writes asked of the running
`network:watch` (docs/reference.md: Triggers answered warm).

A trigger runs its own code; only its engine client differs. `docker_engine.api()` gives an
engine trigger a `WarmEngine` while the watcher's socket answers: each SDK call it makes (of
`CALLS`) goes to the watcher, whose client, imported and connected already, makes it and
sends back the result or the engine's error answer (raised here as the `EngineAPIError` the
SDK's client raises on the cold path). Anything else (no socket, a refusal, another version,
a frozen or dead watcher, a cut or malformed answer) makes the call, and the trigger's later
ones, with the SDK's own client: the same code then runs as it does without a watcher. A
call made twice that way (its answer was cut) is one the code already makes safely twice: a
read, a connect ("already exists"), a network made again (409).

A writer (`written_by_watcher`) asks the watcher to run it, once it checked its arguments: the
watcher, which imported `filelock` at its start, runs the trigger's own function under the
same lock, so the trigger never imports it. Anything but a success makes the trigger write
itself; a write made twice that way writes the same value twice.

This module is imported by every engine trigger: it imports only built-in modules and
`_socket` (~0.2 ms; `socket` and `json` would cost ~13 ms). What a frame holds is
`network_plugin.warm_protocol`'s; the watcher acknowledges a request (one byte) before it
calls the engine, so a frozen watcher is told from a slow engine within `ACK_SECONDS`.
The breaker's stamp is made, read and removed through its folder's descriptor, walked as
every folder of the plugin: a folder swapped for a link meanwhile is never written through.
"""

from __future__ import annotations

import _socket
import os
import time

from network_plugin import warm_protocol as protocol
from network_plugin.error_handler import EngineAPIError, PluginError
from network_plugin.files import WRITE_FLAGS, open_folder
from network_plugin.paths import warm_root

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

SOCKET_NAME = "triggers.sock"
# Its modification time is the moment until which triggers do not ask the watcher.
BREAKER_NAME = "skip-until"
# A frozen watcher costs one trigger this wait, then every trigger skips it for BREAKER_SECONDS.
ACK_SECONDS = 0.2
BREAKER_SECONDS = 10.0
# Once acknowledged, the engine's own time: the SDK's client waits up to 60 s per call.
ANSWER_SECONDS = 65.0
# The engine a client reaches: a trigger and a watcher reaching two engines are two versions.
ENGINE_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
# A trigger whose entry in `main.TRIGGERS` says so asks the running watcher first; commands,
# and the watcher itself (which makes the writes it is asked for), never do.
_asks_watcher = False


def ask_watcher_first() -> None:
    """This process is a trigger that may ask the running watcher (engine calls, writes)."""
    global _asks_watcher  # noqa: PLW0603 - one choice per process
    _asks_watcher = True


def asks_watcher() -> bool:
    return _asks_watcher


def socket_path() -> str:
    return os.path.join(warm_root(), SOCKET_NAME)


def code_version(package: str) -> str:
    """The plugin's code as its files stand: their number, sizes and modification times, summed
    (one folder listing, ~0.1 ms: cheap enough for every trigger, unlike a hash)."""
    count = size = changed = 0
    with os.scandir(package) as entries:
        for entry in entries:
            if entry.name.endswith(".py"):
                status = entry.stat()
                count += 1
                size += status.st_size
                changed += status.st_mtime_ns
    return f"{count}.{size}.{changed}"


def version() -> str:
    """The code's version, the environment's id (the name `.venv` links to) and the engine's address."""
    package = os.path.dirname(os.path.abspath(__file__))
    try:
        environment = os.readlink(os.path.join(os.path.dirname(package), ".venv"))
    except OSError:
        environment = ""
    engine = "|".join(os.environ.get(name, "") for name in ENGINE_VARIABLES)
    return f"{code_version(package)} {environment.rpartition('/')[2]} {engine}"


def in_warm_folder(action: Callable[[int], Any], otherwise: Any = None) -> Any:
    """`action` of a descriptor of the socket's folder, walked as every folder of the plugin and
    closed after; `otherwise` when it cannot be opened (as root, a link root does not own is
    refused: then no watcher is asked, and no stamp is read or written through it)."""
    try:
        folder = open_folder(warm_root())
    except (OSError, PluginError):
        return otherwise
    try:
        return action(folder)
    finally:
        os.close(folder)


def retry_time_in(folder: int) -> float:
    """When a trigger found the watcher frozen: the moment to ask it again, while still ahead;
    else 0. A moment more than BREAKER_SECONDS ahead was stamped by a clock set back since (at
    boot): stale, it is ignored."""
    try:
        until = os.stat(BREAKER_NAME, dir_fd=folder, follow_symlinks=False).st_mtime
    except OSError:
        return 0.0
    now = time.time()
    return until if now < until <= now + BREAKER_SECONDS else 0.0


def retry_time() -> float:
    return in_warm_folder(retry_time_in, 0.0)


def _stamp_breaker(folder: int) -> None:
    temp = f".{BREAKER_NAME}.{os.getpid()}.tmp"
    until = time.time() + BREAKER_SECONDS
    try:
        descriptor = os.open(temp, WRITE_FLAGS, 0o600, dir_fd=folder)
        try:
            os.utime(descriptor, (until, until))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temp, BREAKER_NAME, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        try:
            os.unlink(temp, dir_fd=folder)
        except OSError:
            pass


def trip_breaker() -> None:
    """Triggers skip the watcher for BREAKER_SECONDS: its stamp is renamed into place, with
    the moment to ask again as its modification time. A folder it cannot reach or write leaves
    it be."""
    in_warm_folder(_stamp_breaker)


def _remove_breaker_in(folder: int) -> None:
    try:
        os.unlink(BREAKER_NAME, dir_fd=folder)
    except FileNotFoundError:
        pass


def remove_breaker() -> None:
    """A watcher that answers again is asked again at once."""
    in_warm_folder(_remove_breaker_in)


def connect_in(folder: int, timeout: float = ACK_SECONDS) -> Any:
    """A connection to the watcher's socket in `folder`, or None (no watcher, or one frozen:
    then the breaker trips). Through the folder's descriptor: a socket's path is limited to
    107 bytes, a folder's not."""
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    connection.settimeout(timeout)
    try:
        connection.connect(f"/proc/self/fd/{folder}/{SOCKET_NAME}")
    except _socket.timeout:
        connection.close()
        trip_breaker()
        return None
    except OSError:
        connection.close()
        return None
    return connection


def connect(timeout: float = ACK_SECONDS) -> Any:
    """A connection to the watcher's socket, or None."""
    return in_warm_folder(lambda folder: connect_in(folder, timeout))


def _connect_unless_tripped(folder: int) -> Any:
    return None if retry_time_in(folder) else connect_in(folder)


def engine(cold: Callable[[], Any]) -> WarmEngine | None:
    """The stand-in for the SDK's client while the watcher may be asked, else None; `cold`
    makes the SDK's client it falls back to."""
    connection = in_warm_folder(_connect_unless_tripped)
    return None if connection is None else WarmEngine(connection, version(), cold)


def written_by_watcher(trigger: str, args: list[str]) -> bool:
    """Did the running watcher make the write of `trigger` (one of `warm_protocol.WRITES`) with
    `args`, by the trigger's own code under the same lock? False: the trigger makes it itself,
    with its own lock (no watcher, a refusal, an error of any kind: the same code then says why).
    A trigger holding a lock writes itself (a rebuild's IP files): the watcher would wait for it."""
    from network_plugin.file_lock import holds_a_lock

    if not _asks_watcher or holds_a_lock():
        return False
    connection = in_warm_folder(_connect_unless_tripped)
    if connection is None:
        return False
    try:
        answer = ask(connection, [protocol.PROTOCOL, version(), trigger, args, {}])
    except (Unanswered, OSError, ValueError):
        return False
    finally:
        connection.close()
    return answer == (protocol.OK, 0)


class Unanswered(Exception):
    """The watcher gave no usable answer: the call is made cold."""


def _receive(connection: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise Unanswered("the answer was cut")
        data += chunk
    return data


def ask(connection: Any, request: list) -> tuple:
    """Send `request` ([protocol, version, call, args, kwargs]), return the watcher's answer
    (a tuple of the call's shape: `warm_protocol.answer_of`); Unanswered or OSError when there
    is none. A missing acknowledgement within ACK_SECONDS trips the breaker."""
    data = protocol.encode(request)
    if len(data) > protocol.MAX_REQUEST:
        raise Unanswered("the request is too large")
    connection.settimeout(ACK_SECONDS)
    try:
        connection.sendall(protocol.frame(data))
        acknowledged = _receive(connection, 1) == protocol.ACK
    except _socket.timeout:
        trip_breaker()
        raise
    if not acknowledged:
        raise Unanswered("no acknowledgement")
    connection.settimeout(ANSWER_SECONDS)
    size = int.from_bytes(_receive(connection, 4), "big")
    if size > protocol.MAX_ANSWER:
        raise Unanswered("the answer is too large")
    try:
        return protocol.answer_of(request[2], protocol.decode(_receive(connection, size)))
    except protocol.Malformed:
        raise Unanswered("a malformed answer") from None


class WarmEngine:
    """The SDK client's calls the watcher serves (`warm_protocol.CALLS`), made by it; the first
    that fails, and any other call, is made, like every later one, by the SDK's own client."""

    def __init__(self, connection: Any, version: str, cold: Callable[[], Any]) -> None:
        self.connection = connection
        self.version = version
        self.cold = cold
        self.fallback: Any = None  # the SDK's client, once a call failed

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not an SDK call: copy's and pickle's probes, say
            raise AttributeError(name)
        if name not in protocol.CALLS:
            self._fall_back()
            return getattr(self.fallback, name)
        return lambda *args, **kwargs: self.call(name, args, kwargs)

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        if self.fallback is None:  # else a caller holding this stand-in: no new client per call
            answer = self._ask(name, args, kwargs)
            if answer[:1] == (protocol.OK,):
                return answer[1]
            if answer[:1] == (protocol.API_ERROR,):
                raise EngineAPIError(answer[1], answer[2])
            self._fall_back()
        return getattr(self.fallback, name)(*args, **kwargs)

    def known_network_ids(self, names: list[str]) -> dict[str, str] | None:
        """The id of each of `names` while the watcher's view of the networks is current and
        knows them all; None when the engine is to be asked."""
        if self.fallback is None:
            answer = self._ask(protocol.KNOWN_NETWORK_IDS, (list(names),), {})
            if answer[:1] == (protocol.OK,):
                return answer[1]
            self._fall_back()
        return None

    def _ask(self, name: str, args: tuple, kwargs: dict) -> tuple:
        """The watcher's answer, or () when there is none."""
        try:
            return ask(self.connection, [protocol.PROTOCOL, self.version, name, args, kwargs])
        except (Unanswered, OSError, ValueError):  # ValueError: an argument JSON cannot carry
            return ()

    def _fall_back(self) -> None:
        """This call and every later one are made by the SDK's own client."""
        if self.fallback is None:
            self.connection.close()
            self.fallback = self.cold()
