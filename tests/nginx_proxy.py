"""A real nginx (Debian's package) in front of test apps, as Dokku's nginx-vhosts puts it there.

nginx runs as a process of its own, with its prefix, pid, temp and log paths in a folder of the
test, listening on a Unix socket there (xdist workers run side by side; no port to pick). For an
engine test it runs in the engine's network namespace when the engine has one of its own
(NETWORK_TEST_ENGINE_NETNS, which `tools/sid-engine run` sets): only from there are the
containers' addresses reached; the other tests' listeners are servers on this one's loopback.
Each app is one `server` chosen by its `Host` header, proxying to an upstream rendered from the
installed plugin's `network-get-listeners <app> web`, one `server <ip>:<port>;` per listener, as
nginx-vhosts renders it. A refresh re-renders one app and reloads nginx (SIGHUP to its master), and returns
only once the new configuration is live: its generation answers and no worker of the old one
still takes connections.

`network:watch` runs `refresh_command` as its proxy refresh, with the app as last argument:

    python3 -m tests.nginx_proxy <rig folder> <app>

Without nginx the tests that use it skip, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host import REPO_ROOT, DokkuHost
from tests.polling import terminate, wait_for
from tests.watcher import DIE_WITH_PARENT

# Debian's nginx lives in /usr/sbin, which is not on every user's PATH.
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ENGINE_NETNS = os.environ.get("NETWORK_TEST_ENGINE_NETNS", "")
SOCKET = "nginx.sock"
# The server answering when no app's name matches: it tells which configuration is live.
CONTROL_HOST = "nginx-proxy.invalid"
GENERATION_PATH = "/generation"
STATE = "rig.json"
REQUEST_SECONDS = 10.0
RELOAD_SECONDS = 30.0
STOP_SECONDS = 30.0

MAIN_CONFIG = """daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path {folder}/temp/body;
    proxy_temp_path {folder}/temp/proxy;
    fastcgi_temp_path {folder}/temp/fastcgi;
    uwsgi_temp_path {folder}/temp/uwsgi;
    scgi_temp_path {folder}/temp/scgi;
    include {folder}/apps/*.conf;
    server {{
        listen unix:{socket} default_server;
        server_name {control};
        include {folder}/generation.conf;
        location / {{
            return 404;
        }}
    }}
}}
"""
GENERATION_CONFIG = 'location = {path} {{\n    return 200 "{generation}\\n";\n}}\n'
# nginx-vhosts' upstream and server, without what the tests do not need (TLS, logs, headers).
APP_CONFIG = """upstream {app}-web {{
{servers}}}
server {{
    listen unix:{socket};
    server_name {app};
    location / {{
        proxy_pass http://{app}-web;
    }}
}}
"""
# No listener: nginx refuses an upstream without servers, and nginx-vhosts has nothing to route to.
NO_LISTENER_CONFIG = """server {{
    listen unix:{socket};
    server_name {app};
    return 502;
}}
"""


class RefreshError(Exception):
    """A refresh that could not render or reload: its one line for the user."""


def write_file(path: Path, text: str) -> None:
    """Atomic: nginx reading its folder never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class UnixConnection(http.client.HTTPConnection):
    """HTTP over the Unix socket at `path`."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def get(listening: str, host: str, path: str = "/", timeout: float = REQUEST_SECONDS) -> tuple[int, str]:
    """One request on a connection of its own to nginx's socket `listening`: (status, body)."""
    connection = UnixConnection(listening, timeout)
    try:
        connection.request("GET", path, headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def live_generation(listening: str) -> int | None:
    try:
        status, body = get(listening, CONTROL_HOST, GENERATION_PATH)
    except (OSError, http.client.HTTPException):
        return None
    return int(body) if status == 200 else None


def listeners(plugin_dir: str, app: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [os.path.join(plugin_dir, "network-get-listeners"), app, "web"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RefreshError(
            f"network-get-listeners {app} web exited with {done.returncode}: {done.stderr.strip()}"
        )
    return done.stdout.split()


def render_app(app: str, listening: str, found: list[str]) -> str:
    if not found:
        return NO_LISTENER_CONFIG.format(app=app, socket=listening)
    servers = "".join(f"    server {listener};\n" for listener in found)
    return APP_CONFIG.format(app=app, servers=servers, socket=listening)


def workers(master: int) -> dict[int, str]:
    """The master's children and their titles (`nginx: worker process [is shutting down]`)."""
    try:
        pids = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return {}
    titles = {}
    for pid in pids:
        try:
            titles[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            pass  # ended meanwhile
    return titles


def reload(folder: Path, listening: str, generation: int) -> None:
    """SIGHUP to the master; back once `generation` answers and the old workers stopped accepting
    (a worker sets its title to `... is shutting down` as it closes its listening sockets)."""
    try:
        master = int((folder / "nginx.pid").read_text())
    except (OSError, ValueError) as error:
        raise RefreshError(f"nginx is not running in {folder}: {error}") from None
    old = set(workers(master))
    os.kill(master, signal.SIGHUP)

    def live() -> bool:
        accepting_old = [
            pid for pid, title in workers(master).items() if pid in old and "shutting down" not in title
        ]
        return live_generation(listening) == generation and not accepting_old

    try:
        wait_for(live, f"generation {generation} of {folder}", RELOAD_SECONDS)
    except AssertionError:
        log = (folder / "error.log").read_text(errors="replace").strip().splitlines()
        raise RefreshError(
            f"nginx did not load its new configuration: {log[-1] if log else 'no log'}"
        ) from None


def refresh(folder: Path, app: str, env: dict[str, str]) -> None:
    """Render `app`'s server from its listeners and reload nginx (one refresh at a time)."""
    state = json.loads((folder / STATE).read_text())
    listening = state["socket"]
    with (folder / "refresh.lock").open("w") as lock:
        # The watcher refreshes apps side by side: one render and reload at a time, each reading
        # the listeners under the lock (a later refresh never renders an older answer).
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = listeners(state["plugin"], app, env)
        generation = int((folder / "generation").read_text()) + 1
        write_file(folder / "apps" / f"{app}.conf", render_app(app, listening, found))
        write_file(
            folder / "generation.conf", GENERATION_CONFIG.format(path=GENERATION_PATH, generation=generation)
        )
        write_file(folder / "generation", f"{generation}\n")
        reload(folder, listening, generation)


class NginxProxy:
    """nginx started in `folder` for the apps of `dokku`; `stop()` ends it."""

    def __init__(self, dokku: DokkuHost, folder: Path, netns: str = "") -> None:
        self.dokku = dokku
        self.folder = folder
        self.netns = netns  # the network namespace it runs in ('': this process's)
        self.process: subprocess.Popen[bytes] | None = None
        self.socket = str(folder / SOCKET)
        # The command network:watch runs with the app appended: this module, from the repository.
        script = folder / "refresh"
        script.parent.mkdir(parents=True, exist_ok=True)
        module = f"{shlex.quote(sys.executable)} -m tests.nginx_proxy {shlex.quote(str(folder))}"
        write_file(script, f'#!/bin/sh\ncd {shlex.quote(str(REPO_ROOT))} && exec {module} "$@"\n')
        script.chmod(0o755)
        self.refresh_command = str(script)

    def start(self) -> NginxProxy:
        (self.folder / "apps").mkdir(exist_ok=True)
        (self.folder / "temp").mkdir(exist_ok=True)
        write_file(self.folder / "generation", "0\n")
        write_file(
            self.folder / "generation.conf", GENERATION_CONFIG.format(path=GENERATION_PATH, generation=0)
        )
        write_file(
            self.folder / STATE, json.dumps({"socket": self.socket, "plugin": str(self.dokku.plugin_dir)})
        )
        config = MAIN_CONFIG.format(folder=self.folder, socket=self.socket, control=CONTROL_HOST)
        write_file(self.folder / "nginx.conf", config)
        error_log = self.folder / "error.log"
        self.process = subprocess.Popen(
            [
                *DIE_WITH_PARENT,
                *(["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []),
                NGINX,
                *("-p", f"{self.folder}/", "-c", "nginx.conf", "-e", str(error_log)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(
            lambda: self.process.poll() is not None or live_generation(self.socket) == 0, "nginx to answer"
        )
        if self.process.poll() is not None:
            log = error_log.read_text(errors="replace") if error_log.exists() else ""
            raise AssertionError(f"nginx exited with {self.process.returncode}: {log.strip()}")
        return self

    def refresh(self, app: str) -> None:
        refresh(self.folder, app, self.dokku.env)

    def get(self, app: str, timeout: float = REQUEST_SECONDS) -> tuple[int, str]:
        return get(self.socket, app, timeout=timeout)

    def stop(self) -> None:
        """SIGTERM (nginx's fast shutdown: the master ends its workers), SIGKILL if it hangs."""
        if self.process is not None:
            terminate(self.process, STOP_SECONDS)
            self.process = None


def missing_nginx() -> str:
    """'' when Debian's nginx can run here, else why not."""
    return "" if os.access(NGINX, os.X_OK) else f"nginx is not installed ({NGINX}): `apt-get install nginx`"


@pytest.fixture
def nginx_proxy(dokku: DokkuHost, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NginxProxy]:
    """A started nginx for the test's apps, beside the engine's containers in an engine test;
    stopped and its folder removed afterwards, whatever happened."""
    reason = missing_nginx()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs the nginx tests to run: {reason}")
        pytest.skip(reason)
    proxy = NginxProxy(
        dokku, tmp_path / "nginx", ENGINE_NETNS if request.node.get_closest_marker("engine") else ""
    )
    try:
        yield proxy.start()
    finally:
        proxy.stop()
        shutil.rmtree(proxy.folder, ignore_errors=True)


def main(args: list[str]) -> int:
    """The refresh network:watch runs: `<folder> <app>`."""
    if len(args) != 2:
        print(" !     usage: python3 -m tests.nginx_proxy <folder> <app>", file=sys.stderr)
        return 2
    try:
        refresh(Path(args[0]), args[1], dict(os.environ))
    except (RefreshError, OSError, ValueError, KeyError) as error:
        print(f" !     Unable to refresh nginx for {args[1]}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
