"""Two Docker hosts on one machine, joined in a Docker Swarm, for the multi-host tests
(README: More than one host).

Each host is a network namespace with its own `dockerd` (own data root, exec root, socket and
bridge range); one veth pair joins the two namespaces directly (a bridge in the root
namespace would meet Docker's FORWARD DROP policy). The first engine inits a swarm, the
second joins it as a worker. Nothing but Debian's packages: iproute2 (`ip`), util-linux
(`nsenter`), docker.io (`dockerd`). `nsenter --net`, not `ip netns exec`: the latter remounts
/sys, hiding the cgroup mounts dockerd needs.

Names carry the pid of the run (`dnt2h<pid>`), so a run never touches another's rig, and
each run first removes what runs that died left behind. Teardown removes engines,
namespaces, the veth pair, mounts and data roots, whether the tests passed or not.
Needs root; without it (or without the tools) the tests skip, except under CI=true.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.docker_fixtures import OWNER, RESOURCE_LABEL, build_test_image, sweep
from tests.namespaced_engine import (
    connect,
    dead_runs,
    missing_tools,
    mounts_under,
    processes_using,
    remove_run_folder,
    run_folder,
    start_dockerd,
    wait_for,
)

PREFIX = "dnt2h"
UNDERLAY = "192.168.231"  # the "LAN" between the two hosts: .1 manager, .2 worker
WAIT_SECONDS = 60


@dataclass
class Engine:
    """One host's Docker engine, in its own network namespace."""

    role: str  # "manager" or "worker"
    netns: str
    address: str
    root: Path
    process: subprocess.Popen

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, timeout=60)


@dataclass
class TwoHosts:
    manager: Engine
    worker: Engine
    manager_client: docker.DockerClient
    worker_client: docker.DockerClient
    setup_seconds: float


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


def _run_dir(pid: str) -> Path:
    return run_folder(PREFIX, pid)


def remove_rig(pid: str) -> None:
    """Remove everything the run `pid` made: processes, mounts, data, namespaces (and so the veth)."""
    run_dir = _run_dir(pid)
    remove_run_folder(run_dir, [run_dir / "worker", run_dir / "manager"])
    for name in _namespaces_of(pid):
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
    # A run that died before moving the veth into the namespaces left it in the root namespace.
    subprocess.run(["ip", "link", "delete", f"{PREFIX}{pid}m"], check=False, capture_output=True)


def _namespaces_of(pid: str) -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return [
        name
        for name in names
        if name.startswith(f"{PREFIX}{pid}") and name[len(PREFIX + pid) :] in ("m", "w")
    ]


def leftovers(pid: str) -> list[str]:
    """What of the run `pid` still exists (empty once `remove_rig` did its work)."""
    run_dir = _run_dir(pid)
    found = [f"process {process}" for process in processes_using(run_dir)]
    found += [f"mount {point}" for point in mounts_under(run_dir)]
    found += [f"namespace {name}" for name in _namespaces_of(pid)]
    if run_dir.exists():
        found.append(f"folder {run_dir}")
    return found


def sweep_dead_runs() -> None:
    """Remove the rigs of runs that died (killed, crashed) before their teardown."""
    for pid in dead_runs(PREFIX):
        remove_rig(pid)


def _start_engine(role: str, index: int, netns: str, run_dir: Path) -> Engine:
    root = run_dir / role
    process = start_dockerd(netns, root, "--bip", f"172.31.{index}.1/24")
    return Engine(role, netns, f"{UNDERLAY}.{index}", root, process)


def start_rig(pid: str) -> TwoHosts:
    started = time.monotonic()
    run_dir = _run_dir(pid)
    run_dir.mkdir()
    namespaces = {role: f"{PREFIX}{pid}{role[0]}" for role in ("manager", "worker")}
    for name in namespaces.values():
        _run("ip", "netns", "add", name)
    # One veth pair, one end in each namespace: a direct link, no bridge in the root namespace.
    _run("ip", "link", "add", namespaces["manager"], "type", "veth", "peer", "name", namespaces["worker"])
    for index, name in enumerate(namespaces.values(), start=1):
        _run("ip", "link", "set", name, "netns", name)
        _run("ip", "-n", name, "addr", "add", f"{UNDERLAY}.{index}/24", "dev", name)
        _run("ip", "-n", name, "link", "set", name, "up")
        _run("ip", "-n", name, "link", "set", "lo", "up")
    manager = _start_engine("manager", 1, namespaces["manager"], run_dir)
    worker = _start_engine("worker", 2, namespaces["worker"], run_dir)
    manager_client, worker_client = (
        connect(manager.process, manager.root),
        connect(worker.process, worker.root),
    )
    manager_client.swarm.init(advertise_addr=manager.address, listen_addr=f"{manager.address}:2377")
    manager_client.swarm.reload()
    worker_client.swarm.join(
        remote_addrs=[f"{manager.address}:2377"],
        join_token=manager_client.swarm.attrs["JoinTokens"]["Worker"],
        advertise_addr=worker.address,
        listen_addr=f"{worker.address}:2377",
    )
    wait_for(
        lambda: [node.attrs["Status"]["State"] for node in manager_client.nodes.list()] == ["ready", "ready"],
        "the worker to join the swarm",
        WAIT_SECONDS,
    )
    for client in (manager_client, worker_client):
        build_test_image(client)  # no registry: each host builds its own
    return TwoHosts(manager, worker, manager_client, worker_client, time.monotonic() - started)


def unable_reason() -> str:
    """Why the two hosts cannot be built here ('' when they can)."""
    if os.geteuid() != 0:
        return "two Docker hosts on one machine need root (network namespaces, dockerd)"
    missing = missing_tools()
    if missing:
        return f"missing {', '.join(missing)}: install iproute2, util-linux and docker.io"
    return ""


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true needs the two-host tests to run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def two_hosts(request: pytest.FixtureRequest) -> Iterator[TwoHosts]:
    """A manager and a worker engine in one swarm, for the whole session; removed at its end."""
    reason = unable_reason()
    if reason:
        skip_or_fail(reason)
    sweep_dead_runs()
    try:
        rig = start_rig(OWNER)
    except BaseException:
        remove_rig(OWNER)
        raise
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"two Docker hosts in a swarm, up in {rig.setup_seconds:.1f} s")
    try:
        yield rig
    finally:
        for client in (rig.worker_client, rig.manager_client):
            client.close()
        remove_rig(OWNER)
    left = leftovers(OWNER)
    assert not left, f"the two-host rig left {left}"


@pytest.fixture
def swarm_resources(two_hosts: TwoHosts) -> Iterator[TwoHosts]:
    """The rig, with what a test made on either engine removed after it (workers first)."""
    yield two_hosts
    # A worker cannot remove swarm networks: its containers go, then the manager sweeps the rest,
    # once the worker has let go of the network (it does so asynchronously).
    for container in two_hosts.worker_client.containers.list(all=True, filters={"label": RESOURCE_LABEL}):
        if container.labels.get(RESOURCE_LABEL) == OWNER:
            container.remove(force=True)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            sweep(two_hosts.manager_client)
            return
        except docker.errors.APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main(argv: list[str]) -> int:
    """`tools/two-hosts [command...]`: the two hosts for one command (default: a shell)."""
    reason = unable_reason()
    if reason:
        print(f" !     {reason[0].upper()}{reason[1:]}", file=sys.stderr)
        return 1
    sweep_dead_runs()
    try:
        rig = start_rig(OWNER)
        print(f"-----> Two Docker hosts in a swarm, up in {rig.setup_seconds:.1f} s")
        hosts = {"MANAGER_DOCKER_HOST": rig.manager.docker_host, "WORKER_DOCKER_HOST": rig.worker.docker_host}
        for name, value in hosts.items():
            print(f"       {name}={value}")
        command = argv or [os.environ.get("SHELL") or "/bin/sh"]
        return subprocess.run(command, env=os.environ | hosts, check=False).returncode
    finally:
        started = time.monotonic()
        remove_rig(OWNER)
        print(f"-----> Removed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
