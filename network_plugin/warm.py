"""The triggers' side of the warm path: engine calls asked of the running `network:watch`
(docs/reference.md: Triggers answered warm).

A trigger runs its own code; only its engine client differs. `docker_engine.api()` gives an
engine trigger a `WarmEngine` while the watcher's socket answers: each SDK call it makes (of
`CALLS`) goes to the watcher, whose client, imported and connected already, makes it and
sends back the result or the engine's error answer (raised here as the `EngineAPIError` the
SDK's client raises on the cold path). Anything else (no socket, a refusal, another version,
a frozen or dead watcher, a cut or malformed answer) makes the call, and the trigger's later
ones, with the SDK's own client: the same code then runs as it does without a watcher. A
call made twice that way (its answer was cut) is one the code already makes safely twice: a
read, a connect ("already exists"), a network made again (409).

This module is imported by every engine trigger: it imports only built-in modules and
`_socket` (~0.2 ms; `socket` and `json` would cost ~13 ms). The frames: a 4-byte length,
then `marshal` data; the watcher acknowledges a request (one byte) before it calls the
engine, so a frozen watcher is told from a slow engine within `ACK_SECONDS`.
"""

from __future__ import annotations

import _socket
import marshal
import os
import time

from network_plugin import docker_engine
from network_plugin.error_handler import EngineAPIError, PluginError
from network_plugin.files import open_folder
from network_plugin.paths import warm_root

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import Any

PROTOCOL = 1
SOCKET_NAME = "triggers.sock"
# Its modification time is the moment until which triggers do not ask the watcher.
BREAKER_NAME = "skip-until"
ACK = b"\x06"
# A frozen watcher costs one trigger this wait, then every trigger skips it for BREAKER_SECONDS.
ACK_SECONDS = 0.2
BREAKER_SECONDS = 10.0
# Once acknowledged, the engine's own time: the SDK's client waits up to 60 s per call.
ANSWER_SECONDS = 65.0
MAX_REQUEST = 64 * 1024
# The SDK calls the triggers' code makes: nothing else is asked of the watcher.
CALLS = frozenset(
    (
        "containers",
        "inspect_container",
        "networks",
        "inspect_network",
        "info",
        "connect_container_to_network",
        "disconnect_container_from_network",
        "create_network",
    )
)
# The engine a client reaches: a trigger and a watcher reaching two engines are two versions.
ENGINE_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
OK = "ok"
API_ERROR = "api"
MISMATCH = "mismatch"
REFUSED = "error"
STATUS = "status"
# Not an SDK call: the ids of networks known to exist, from the watcher's view (else None).
KNOWN_NETWORK_IDS = "known_network_ids"


def socket_path() -> str:
    return os.path.join(warm_root(), SOCKET_NAME)


def breaker_path() -> str:
    return os.path.join(warm_root(), BREAKER_NAME)


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


def retry_time() -> float:
    """When a trigger found the watcher frozen: the moment to ask it again, while still ahead; else 0."""
    try:
        until = os.stat(breaker_path()).st_mtime
    except OSError:
        return 0.0
    return until if until > time.time() else 0.0


def trip_breaker() -> None:
    """Triggers skip the watcher for BREAKER_SECONDS: its stamp is renamed into place, with
    the moment to ask again as its modification time. A folder it cannot write leaves it be."""
    path = breaker_path()
    temp = f"{path}.{os.getpid()}.tmp"
    until = time.time() + BREAKER_SECONDS
    try:
        descriptor = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.utime(temp, (until, until))
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass


def connect(timeout: float = ACK_SECONDS) -> Any:
    """A connection to the watcher's socket, or None (no watcher, or one frozen: then the breaker trips)."""
    try:
        # Walked as every folder of the plugin (as root, a link root does not own is refused:
        # then no watcher is asked), and through the folder's descriptor: a socket's path is
        # limited to 107 bytes, a folder's not.
        folder = open_folder(warm_root())
    except (OSError, PluginError):
        return None
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
    finally:
        os.close(folder)
    return connection


def engine() -> WarmEngine | None:
    """The stand-in for the SDK's client while the watcher may be asked, else None."""
    if retry_time():
        return None
    connection = connect()
    return None if connection is None else WarmEngine(connection, version())


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


def ask(connection: Any, request: object) -> tuple:
    """Send `request`, return the watcher's answer (a tuple); Unanswered or OSError when there is none.

    A missing acknowledgement within ACK_SECONDS trips the breaker.
    """
    frame = marshal.dumps(request)
    if len(frame) > MAX_REQUEST:
        raise Unanswered("the request is too large")
    connection.settimeout(ACK_SECONDS)
    try:
        connection.sendall(len(frame).to_bytes(4, "big") + frame)
        acknowledged = _receive(connection, 1) == ACK
    except _socket.timeout:
        trip_breaker()
        raise
    if not acknowledged:
        raise Unanswered("no acknowledgement")
    connection.settimeout(ANSWER_SECONDS)
    size = int.from_bytes(_receive(connection, 4), "big")
    try:
        answer = marshal.loads(_receive(connection, size))
    except (EOFError, ValueError, TypeError):
        raise Unanswered("a malformed answer") from None
    if not isinstance(answer, tuple) or not answer:
        raise Unanswered("a malformed answer")
    return answer


class WarmEngine:
    """The SDK client's calls of `CALLS`, made by the watcher; the first that fails is made,
    like every later one, by the SDK's own client."""

    def __init__(self, connection: Any, version: str) -> None:
        self.connection = connection
        self.version = version
        self.fallback: Any = None  # the SDK's client, once a call failed

    def __getattr__(self, name: str) -> Any:
        if name not in CALLS:
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, args, kwargs)

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        if self.fallback is None:  # else a caller holding this stand-in: no new client per call
            answer = self._ask(name, args, kwargs)
            if answer[:1] == (OK,) and len(answer) == 2:
                return answer[1]
            if answer[:1] == (API_ERROR,) and len(answer) == 3:
                raise EngineAPIError(answer[1], answer[2])
            self._fall_back()
        return getattr(self.fallback, name)(*args, **kwargs)

    def known_network_ids(self, names: list[str]) -> dict[str, str] | None:
        """The id of each of `names` while the watcher's view of the networks is current and
        knows them all; None when the engine is to be asked."""
        if self.fallback is None:
            answer = self._ask(KNOWN_NETWORK_IDS, (list(names),), {})
            if answer[:1] == (OK,) and len(answer) == 2 and isinstance(answer[1], (dict, type(None))):
                return answer[1]
            self._fall_back()
        return None

    def _ask(self, name: str, args: tuple, kwargs: dict) -> tuple:
        """The watcher's answer, or () when there is none."""
        try:
            return ask(self.connection, (PROTOCOL, self.version, name, args, kwargs))
        except (Unanswered, OSError, ValueError):  # ValueError: an argument marshal cannot send
            return ()

    def _fall_back(self) -> None:
        """This call and every later one are made by the SDK's own client."""
        self.connection.close()
        self.fallback = docker_engine.cold()
