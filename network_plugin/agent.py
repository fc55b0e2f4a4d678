"""The watcher's side of the warm path: it makes the engine triggers' SDK calls with its own
client (docs/reference.md: Triggers answered warm; the triggers' side is `network_plugin.warm`).

`network:watch` starts it before anything else. The socket lives in a folder of its own under
`$DOKKU_LIB_ROOT/data/network/` (0700, the Dokku user's whoever made it: `watch_folder`;
opened without following a link), is made under a temporary name, given mode 0600 and renamed
into place: whatever held its name (a stale socket, a link, a file, a FIFO) is replaced, never
followed. Only peers of the
watcher's own uid or root are answered (SO_PEERCRED). Each connection is served on a thread
of its own (at most MAX_CONNECTIONS at a time; beyond, a connection is closed and that trigger
runs cold), which never waits on the watcher's jobs or locks: it only calls the engine.
An SDK call's answer is always the engine's own, asked at that moment; only "which of these
networks exist" may come from the watcher's view, and only while that view is current.
A request is checked whole before anything is called (`network_plugin.warm_protocol`): its
shape, the call's name, the engine refs and keyword arguments it passes; anything else is
refused.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import threading
import time

from network_plugin import docker_engine
from network_plugin.error_handler import EngineAPIError, PluginError, describe
from network_plugin.network_view import NetworkView
from network_plugin.output import info, warn
from network_plugin.paths import warm_root
from network_plugin.warm import ANSWER_SECONDS, SOCKET_NAME, remove_breaker, version
from network_plugin.warm_protocol import (
    ACK,
    API_ERROR,
    KNOWN_NETWORK_IDS,
    MAX_ANSWER,
    MAX_REQUEST,
    MISMATCH,
    OK,
    PROTOCOL,
    REFUSED,
    STATUS,
    WRITES,
    Malformed,
    check_call,
    decode,
    frame,
    request_of,
)
from network_plugin.watch_folder import fault, open_watch_folder

SOCKET_MODE = 0o600
MAX_CONNECTIONS = 64
# A trigger holds its connection for its own life, seconds at most.
IDLE_SECONDS = 120.0
PEER_CREDENTIALS = struct.Struct("3i")  # pid, uid, gid
# A write asked of the watcher waits for the app's lock this long at most, well within the
# trigger's wait for the answer; then the trigger waits for the lock itself.
WRITE_LOCK_SECONDS = ANSWER_SECONDS / 2


class Agent:
    """Serve the triggers until `stop()`. `connections` counts the connections of allowed peers,
    `calls` the engine calls answered, `known` the questions `view` (the watcher's view of the
    networks) answered without one."""

    def __init__(self, view: NetworkView | None = None) -> None:
        self.version = version()
        self.view = view
        self.calls = 0
        self.known = 0
        self.writes = 0
        self.connections = 0
        self.listener: socket.socket | None = None
        self.inode = 0
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.guard = threading.Lock()  # the counts

    def start(self) -> bool:
        """Listen on the socket; False (and one line: the triggers run cold) when it cannot."""
        folder = warm_root()
        try:
            self.listener = self._listen(folder)
        except (OSError, PluginError) as error:  # PluginError: a link on the way root does not own
            warn(f"Not answering the engine triggers (they run without the watcher): {describe(error)}")
            return False
        remove_breaker()
        threading.Thread(target=self._accept, name="triggers", daemon=True).start()
        info(f"Answering the engine triggers on {os.path.join(folder, SOCKET_NAME)}")
        return True

    def stop(self) -> None:
        """Stop answering and remove the socket (when it is still ours): triggers run cold."""
        listener, self.listener = self.listener, None
        if listener is None:
            return
        path = os.path.join(warm_root(), SOCKET_NAME)
        try:
            if os.stat(path, follow_symlinks=False).st_ino == self.inode:
                os.unlink(path)
        except OSError:
            pass
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        listener.close()

    def _listen(self, folder: str) -> socket.socket:
        # Walked from / as every folder of the plugin (a link root does not own is refused), and
        # the socket's own folder is never a link; as root, it is the Dokku user's all the same.
        descriptor = open_watch_folder()
        try:
            temp = f".{SOCKET_NAME}.{os.getpid()}.tmp"
            _remove(temp, descriptor)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                # Through the folder's descriptor: the path can no longer lead anywhere else.
                listener.bind(f"/proc/self/fd/{descriptor}/{temp}")
                os.chmod(temp, SOCKET_MODE, dir_fd=descriptor)
                listener.listen(MAX_CONNECTIONS)
                self._replace(folder, temp, descriptor)
            except BaseException:
                listener.close()
                _remove(temp, descriptor)
                raise
            self.inode = os.stat(SOCKET_NAME, dir_fd=descriptor, follow_symlinks=False).st_ino
        finally:
            os.close(descriptor)
        return listener

    def _replace(self, folder: str, temp: str, descriptor: int) -> None:
        """Rename the new socket over whatever holds its name; one line when that was no socket."""
        try:
            found = os.stat(SOCKET_NAME, dir_fd=descriptor, follow_symlinks=False).st_mode
        except FileNotFoundError:
            found = stat.S_IFSOCK
        os.rename(temp, SOCKET_NAME, src_dir_fd=descriptor, dst_dir_fd=descriptor)
        if not stat.S_ISSOCK(found):
            warn(f"Replaced {os.path.join(folder, SOCKET_NAME)}, which was not a socket")

    def _accept(self) -> None:
        listener = self.listener
        while listener is not None and self.listener is listener:
            try:
                connection, _ = listener.accept()
            except OSError:
                continue  # stopped: the loop ends; else a peer that went away at once
            # Checked and counted here, in the order of the connections: `status` counts itself last.
            if not self._allowed(connection) or not self.slots.acquire(blocking=False):
                connection.close()  # that trigger runs cold
                continue
            threading.Thread(target=self._serve, args=(connection,), name="trigger", daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            connection.settimeout(IDLE_SECONDS)
            while self._answer_one(connection):
                pass
        except OSError:
            pass  # the trigger went away
        except Exception as error:  # noqa: BLE001 - one request never ends the watcher's answering
            warn(f"Unable to answer a trigger: {describe(error)}")
        finally:
            connection.close()
            self.slots.release()

    def _allowed(self, connection: socket.socket) -> bool:
        try:
            credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEER_CREDENTIALS.size)
        except OSError:
            return False  # gone already
        pid, uid, _ = PEER_CREDENTIALS.unpack(credentials)
        own = os.geteuid()
        if uid in (own, 0):
            with self.guard:
                self.connections += 1
            return True
        warn(
            f"Refused a connection to the triggers' socket from uid {uid} (pid {pid}):"
            f" only uid {own} and root may ask"
        )
        return False

    def _answer_one(self, connection: socket.socket) -> bool:
        """Acknowledge a request once its length came, then read and answer it; False once the
        trigger is done."""
        header = _receive(connection, 4)
        if header is None:
            return False
        connection.sendall(ACK)  # before any engine call: the trigger waits for it ACK_SECONDS only
        size = int.from_bytes(header, "big")
        if size > MAX_REQUEST:
            _send(connection, (REFUSED, f"a request is at most {MAX_REQUEST} bytes"))
            return False  # what follows is the rest of it: nothing to read a request from
        request = _receive(connection, size)
        if request is None:
            return False
        _send(connection, self.answer(request))
        return True

    def answer(self, request: bytes) -> tuple:
        """The answer to one request's data: the call's result, the engine's error, or a refusal.
        Nothing is called before the whole request is checked."""
        try:
            protocol, version, name, args, kwargs = request_of(decode(request))
        except Malformed:
            return (REFUSED, "a malformed request")
        if name == STATUS:
            counts = {
                "connections": self.connections,
                "calls": self.calls,
                "known": self.known,
                "writes": self.writes,
            }
            return (STATUS, {"pid": os.getpid(), "version": self.version, **counts})
        if protocol != PROTOCOL or version != self.version:
            return (MISMATCH, self.version)
        try:
            check_call(name, args, kwargs)
        except Malformed:
            return (REFUSED, "a malformed request")
        if name == KNOWN_NETWORK_IDS:
            return self._known_network_ids(args[0])
        return self._write(name, args) if name in WRITES else self._call(name, args, kwargs)

    def _call(self, name: str, args: list, kwargs: dict) -> tuple:
        """The SDK's call, made by the watcher's client: its result, or the engine's error."""
        try:
            result = getattr(docker_engine.api(), name)(*args, **kwargs)
        except EngineAPIError as error:
            answer: tuple = (API_ERROR, error.status_code, error.explanation)
        except Exception as error:  # noqa: BLE001 - the trigger makes the call itself
            answer = (REFUSED, describe(error))
        else:
            answer = (OK, result)
        with self.guard:
            self.calls += 1
        return answer

    def _write(self, trigger: str, args: list[str]) -> tuple:
        """Run the writer trigger's own function, as its process would (it prints nothing when it
        succeeds), its lock waits kept under the trigger's wait for this answer: a trigger that gave
        up on it never has its write made late, after its own. Any failure: the trigger writes
        itself and says why."""
        from network_plugin.file_lock import WaitingAtMost
        from network_plugin.main import TRIGGERS, function_of

        with self.guard:
            self.writes += 1  # asked for, made or not
        try:
            with WaitingAtMost(WRITE_LOCK_SECONDS):
                status = function_of(TRIGGERS[trigger][0])(args)
        except Exception as error:  # noqa: BLE001 - the trigger writes itself, and its own error says why
            return (REFUSED, describe(error))
        return (OK, status)

    def _known_network_ids(self, names: list[str]) -> tuple:
        """The view's answer (None: ask the engine)."""
        ids = self.view.ids(names) if self.view is not None else None
        if ids is not None:
            with self.guard:
                self.known += 1
        return (OK, ids)


def _receive(connection: socket.socket, size: int) -> bytes | None:
    """`size` bytes, or None when the trigger closed the connection before."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _send(connection: socket.socket, answer: tuple) -> None:
    try:
        data = json.dumps(answer, separators=(",", ":"), allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as error:  # a result JSON cannot carry: the trigger makes the call itself
        data = json.dumps((REFUSED, str(error))).encode("ascii")
    if len(data) > MAX_ANSWER:
        data = json.dumps((REFUSED, f"an answer is at most {MAX_ANSWER} bytes")).encode("ascii")
    connection.sendall(frame(data))


def _remove(name: str, descriptor: int) -> None:
    try:
        os.unlink(name, dir_fd=descriptor)
    except FileNotFoundError:
        pass


def status() -> tuple[bool, str]:
    """`network:watch --status`: (answered warm?, the line saying so)."""
    from network_plugin.warm import ask, connect, retry_time, socket_path

    path = socket_path()
    until = retry_time()
    if until:
        moment = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(until))
        return False, f"Triggers run cold until {moment}: the watcher did not answer in time on {path}"
    connection = connect()
    if connection is None:
        cause = fault()  # a folder the service cannot enter: it never listens
        return False, f"Triggers run cold: no watcher answers on {path}" + (f": {cause}" if cause else "")
    try:
        answer = ask(connection, [PROTOCOL, version(), STATUS, [], {}])
    except Exception as error:  # noqa: BLE001 - whatever failed, the triggers run cold
        return False, f"Triggers run cold: the watcher on {path} did not answer ({error})"
    finally:
        connection.close()
    if answer[:1] != (STATUS,):
        return False, f"Triggers run cold: the watcher on {path} did not answer"
    watcher = answer[1]
    if watcher.get("version") != version():
        return False, (
            f"Triggers run cold: the watcher (pid {watcher.get('pid')}) runs another version of the"
            " plugin or its environment, or reaches another engine: restart it"
        )
    return True, (
        f"Triggers are answered warm by the watcher (pid {watcher.get('pid')}) on {path}:"
        f" {watcher.get('connections')} connections, {watcher.get('calls')} engine calls,"
        f" {watcher.get('known')} answers from its view of the networks and"
        f" {watcher.get('writes')} writes so far"
    )
