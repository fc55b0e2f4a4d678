"""A Docker engine of a test's own, in its own network namespace, that the test may stop and start.

The shared engine on /var/run/docker.sock serves every other test and developer: a test
that needs the engine to go away and come back starts this one instead. Everything it
has (data root, exec root, pid file, socket, log) lives in `/tmp/dntw-<pid>` and its
namespace is `dntw-<pid>`, named for the test process: the teardown removes both whatever
happened, and a later run removes what a run that died left behind.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import docker

from tests.docker_fixtures import OWNER, build_test_image
from tests.namespaced_engine import (
    connect,
    dead_runs,
    missing_tools,
    remove_run_folder,
    run_folder,
    start_dockerd,
)
from tests.polling import terminate

PREFIX = "dntw"
STOP_SECONDS = 30.0


class PrivateEngine:
    def __init__(self, flags: tuple[str, ...] = (), pid: str = OWNER) -> None:
        self.flags = flags  # more of dockerd's flags (a TLS listener, say)
        self.namespace = f"{PREFIX}-{pid}"
        # Short: Unix socket paths (108 bytes) of the engine and of its containerd live under it.
        self.root = run_folder(PREFIX, pid)
        self.url = f"unix://{self.root / 'docker.sock'}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> docker.DockerClient:
        """Start dockerd (again) and wait until it answers; a client of it (on its Unix socket)."""
        # Its own namespace: no firewall rules needed, none left behind.
        self.process = start_dockerd(self.namespace, self.root, "--iptables=false", *self.flags)
        return connect(self.process, self.root)

    def stop(self) -> None:
        """SIGTERM, as an engine upgrade or `systemctl stop docker` does; its containers stop too."""
        if self.process is None:
            return
        terminate(self.process, STOP_SECONDS)
        self.process = None


def remove_engine(pid: str) -> None:
    """Remove everything the engine of run `pid` made: processes, mounts, files, namespace."""
    root = run_folder(PREFIX, pid)
    remove_run_folder(root, [root])
    subprocess.run(["ip", "netns", "delete", f"{PREFIX}-{pid}"], check=False, capture_output=True)


def remove_dead_runs() -> None:
    for pid in dead_runs(PREFIX):
        remove_engine(pid)


@contextmanager
def private_engine(*flags: str) -> Iterator[tuple[PrivateEngine, docker.DockerClient]]:
    """A started private engine (with more dockerd `flags`) and the test image built; removed
    afterwards, whatever happens."""
    remove_dead_runs()
    engine = PrivateEngine(flags)
    remove_engine(OWNER)  # an earlier test of this run that could not finish its teardown
    engine.root.mkdir(parents=True)
    try:
        subprocess.run(["ip", "netns", "add", engine.namespace], check=True)
        subprocess.run(["ip", "-n", engine.namespace, "link", "set", "lo", "up"], check=True)
        client = engine.start()
        build_test_image(client)
        yield engine, client
    finally:
        engine.stop()
        remove_engine(OWNER)


def can_run_private_engine() -> str:
    """'' when this machine can start a private engine, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    missing = missing_tools()
    return f"missing {', '.join(missing)}" if missing else ""
