"""Engine triggers answered warm by the running `network:watch` (docs/reference.md: Triggers
answered warm): the same stdout, stderr, exit code, files and engine state as without it, and
every failure of the warm path a silent fall back to the cold one.

Each comparison runs the trigger once with no watcher (cold), sets the host back, then once
with the watcher running; the watcher's count of the engine calls it made for triggers
(`network:watch --status`) shows the warm path was taken.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from network_plugin import properties, warm
from network_plugin import warm_protocol as protocol
from network_plugin.watch import POOL_SIZES
from tests.docker_fixtures import DockerResources
from tests.host import DokkuHost
from tests.polling import WAIT_SECONDS, wait_for
from tests.test_hostile_links import DOKKU_USER, plant_link
from tests.watcher import RunningWatcher

# Named for this process: the watchers of these tests follow the shared engine, where tests of
# other xdist workers start containers of apps named alike, which would make them rebuild this
# test's app between its cold and warm runs (seen as a missing "Updated" line).
APP = f"warm-app-{os.getpid()}"
WARM_FOLDER = "var-lib-dokku/data/network/watch"
STATUS = re.compile(
    r"warm by the watcher \(pid \d+\) on \S+: (\d+) connections, (\d+) engine calls,"
    r" (\d+) answers from its view of the networks and (\d+) writes so far$"
)


def warm_counts(dokku: DokkuHost) -> tuple[int, int, int, int]:
    """(connections, engine calls, answers from its view of the networks, writes) of the running
    watcher for triggers, by `network:watch --status` (its own connection counted)."""
    result = dokku.command("watch", "--status")
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    found = STATUS.search(result.stdout.strip())
    assert found, result.stdout
    return int(found.group(1)), int(found.group(2)), int(found.group(3)), int(found.group(4))


def warm_calls(dokku: DokkuHost) -> int:
    """What the watcher answered for triggers: engine calls, answers from its view, writes."""
    _, calls, known, writes = warm_counts(dokku)
    return calls + known + writes


def frame(message: object) -> bytes:
    """A message as the watcher and the triggers frame it (bytes: as they are)."""
    return protocol.frame(message if isinstance(message, bytes) else protocol.encode(message))


def outcome(result: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return result.returncode, result.stdout, result.stderr


def networks_of(resources: DockerResources, container_id: str) -> dict[str, list[str]]:
    """network -> aliases, as `docker inspect` shows them."""
    attrs = resources.client.api.inspect_container(container_id)
    return {
        name: sorted(endpoint.get("Aliases") or [])
        for name, endpoint in attrs["NetworkSettings"]["Networks"].items()
    }


def changes(dokku: DokkuHost, run: Callable[[], subprocess.CompletedProcess[str]]) -> tuple:
    """What `run` printed and exited with, and the host's files it changed (path -> before, after)."""
    before = files(dokku)
    result = run()
    after = files(dokku)
    changed = {path: (before.get(path), after.get(path)) for path in before.keys() | after.keys()}
    return outcome(result), {path: states for path, states in changed.items() if states[0] != states[1]}


def files(dokku: DokkuHost) -> dict[str, tuple[int, int, bytes | None]]:
    """The host's Dokku folders (not the watcher's socket folder, its log, the proxy's recorder)."""
    return {
        path: state
        for path, state in dokku.snapshot().items()
        if path.startswith(("home-dokku", "var-lib-dokku")) and not path.startswith(WARM_FOLDER)
    }


def same_warm_and_cold(
    dokku: DokkuHost,
    watcher: Callable[[], RunningWatcher],
    run: Callable[[], subprocess.CompletedProcess[str]],
    *,
    reset: Callable[[], object],
    engine_state: Callable[[], object] = lambda: None,
    prepare: Callable[[], object] = lambda: None,
) -> tuple[tuple[int, str, str], RunningWatcher]:
    """Run the trigger cold, `reset`, then warm (each right after `prepare`); both print, exit,
    write and leave the engine alike, and the watcher made engine calls for the warm run.
    The outcome, and the watcher."""
    prepare()
    cold, cold_files = changes(dokku, run)
    cold_engine = engine_state()
    reset()
    running = watcher()
    before = warm_calls(dokku)
    prepare()
    warm, warm_files = changes(dokku, run)
    assert warm == cold
    assert warm_files == cold_files
    assert engine_state() == cold_engine
    assert warm_calls(dokku) > before
    return cold, running


def trigger(dokku: DokkuHost, name: str, *args: str, stdin: str | None = None):
    return lambda: dokku.trigger(name, *args, stdin=stdin)


# --- each engine trigger, warm and cold ------------------------------------------------------


@pytest.mark.usefixtures("test_image")
def test_network_get_ipaddr_warm_and_cold(dokku: DokkuHost, docker_resources: DockerResources, watcher):
    root = dokku.create_app(APP)
    container = docker_resources.app_container(APP, app_root=root)
    ip = docker_resources.client.api.inspect_container(container.id)["NetworkSettings"]["IPAddress"]

    answer, _ = same_warm_and_cold(
        dokku, watcher, trigger(dokku, "network-get-ipaddr", APP, "web", container.id), reset=lambda: None
    )

    assert answer == (0, f"{ip}\n", "")


@pytest.mark.usefixtures("test_image")
def test_network_get_ipaddr_of_a_removed_container_fails_alike(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    dokku.create_app(APP)
    container = docker_resources.app_container(APP)
    container.remove(force=True)

    answer, _ = same_warm_and_cold(
        dokku, watcher, trigger(dokku, "network-get-ipaddr", APP, "web", container.id), reset=lambda: None
    )

    assert answer == (1, "", f" !     Container {container.id[:12]} does not exist\n")


def attaching(dokku: DokkuHost, resources: DockerResources, key: str, *, start: bool):
    """An app naming a network in `key`, with a container (named by CONTAINER.web.1)."""
    root = dokku.create_app(APP)
    network = resources.network()
    container = resources.app_container(APP, app_root=root, start=start)
    result = dokku.command("set", APP, key, network.name)
    assert result.returncode == 0, result
    return network, container


@pytest.mark.parametrize("removed", ["", "network", "container"])
@pytest.mark.usefixtures("test_image")
def test_post_container_create_warm_and_cold(
    dokku: DokkuHost, docker_resources: DockerResources, watcher, removed: str
):
    """Attached with its aliases; a missing network; a container the engine answers 404 for
    (its error crosses the socket as the SDK's client raises it)."""
    network, container = attaching(dokku, docker_resources, properties.ATTACH_POST_CREATE, start=False)
    if removed == "network":
        network.remove()
    if removed == "container":
        container.remove(force=True)

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "post-container-create", "app", container.id, APP, "deploy", "web"),
        reset=lambda: None if removed else network.disconnect(container.id, force=True),
        engine_state=lambda: None if removed == "container" else networks_of(docker_resources, container.id),
    )

    if removed == "network":
        assert answer == (1, "", f" !     Network {network.name} does not exist\n")
        return
    if removed == "container":
        assert answer == (1, "", f" !     Container {container.id[:12]} does not exist\n")
        return
    assert answer == (0, "", "")
    hostname = docker_resources.client.api.inspect_container(container.id)["Config"]["Hostname"]
    assert {f"{APP}.web", f"{hostname}.{APP}.web"} <= set(
        networks_of(docker_resources, container.id)[network.name]
    )


@pytest.mark.usefixtures("test_image")
def test_post_container_create_connects_a_linked_service_warm_and_cold(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    """Every call of a link's connect is served warm: had one been made cold, the trigger would
    have imported the SDK."""
    dokku.create_app(APP)
    network = docker_resources.network()
    assert dokku.command("set", APP, properties.INITIAL_NETWORK, network.name).returncode == 0
    service = docker_resources.service()
    container_id = docker_resources.created_by_scheduler(APP, network.name, [f"{service.name}:db"])
    args = ("app", container_id, APP, "deploy", "web")

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "post-container-create", *args),
        reset=lambda: network.disconnect(service.id, force=True),
        engine_state=lambda: networks_of(docker_resources, service.id),
    )

    assert answer == (0, "", "")
    assert "db" in networks_of(docker_resources, service.id)[network.name]
    network.disconnect(service.id, force=True)
    assert imported(dokku, "post-container-create", *args) & WARM_NEVER == set()
    assert "db" in networks_of(docker_resources, service.id)[network.name]


@pytest.mark.usefixtures("test_image")
def test_core_post_deploy_warm_and_cold(dokku: DokkuHost, docker_resources: DockerResources, watcher):
    network, container = attaching(dokku, docker_resources, properties.ATTACH_POST_DEPLOY, start=True)

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "core-post-deploy", APP),
        reset=lambda: network.disconnect(container.id, force=True),
        engine_state=lambda: networks_of(docker_resources, container.id),
    )

    assert answer == (0, f"-----> Associating app with network {network.name}\n", "")
    assert network.name in networks_of(docker_resources, container.id)


def remove_ip_files(root: Path) -> None:
    for path in root.glob("IP.*"):
        path.unlink()


@pytest.mark.usefixtures("test_image")
def test_network_build_config_warm_and_cold(dokku: DokkuHost, docker_resources: DockerResources, watcher):
    root = dokku.create_app(APP)
    for index in (1, 2):
        docker_resources.app_container(APP, "web", index, app_root=root)

    assert dokku.command("rebuild", APP).returncode == 0  # the app's lock, as after its deploy

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "network-build-config", APP),
        reset=lambda: None,
        prepare=lambda: remove_ip_files(root),  # the watcher's first reconcile writes them too
    )

    assert answer[0] == 0
    assert answer[1].startswith(f"-----> Ensuring network configuration is in sync for {APP}\n")
    assert sorted(path.name for path in root.glob("IP.*")) == ["IP.web.1", "IP.web.2"]
    # The rebuild writes under the app's lock, which it holds: it never asks the watcher to write
    # (the watcher would wait for that very lock until it gave up).
    assert warm_counts(dokku)[3] == 0


@pytest.mark.parametrize(
    ("name", "args", "key"),
    [
        ("docker-args-process-deploy", ("dockerfile", "latest", "web"), properties.ATTACH_POST_DEPLOY),
        ("docker-args-process-build", ("herokuish",), properties.INITIAL_NETWORK),
        ("docker-args-process-run", ("dockerfile", "latest"), properties.ATTACH_POST_CREATE),
    ],
)
def test_docker_args_recreate_a_recorded_network_warm_and_cold(  # noqa: PLR0917 - fixtures
    dokku: DokkuHost, docker_client, network_name: str, watcher, name: str, args: tuple[str, ...], key: str
):
    dokku.create_app(APP)
    created = dokku.command("create", network_name)
    assert created.returncode == 0, created
    assert dokku.command("set", APP, key, network_name).returncode == 0

    def remove() -> None:
        docker_client.networks.get(network_name).remove()

    def network() -> tuple[str, dict, bool]:
        attrs = docker_client.api.inspect_network(network_name)
        return attrs["Driver"], attrs["Labels"], attrs["Attachable"]

    remove()
    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, name, APP, *args, stdin="--label x"),
        reset=remove,
        engine_state=network,
    )

    network_arg = f" --network={network_name} " if key == properties.INITIAL_NETWORK else ""
    assert answer == (0, f"{network_arg}--label x", f"-----> Recreating network {network_name}\n")


@pytest.mark.usefixtures("test_image")
def test_docker_args_of_an_app_naming_a_network_that_exists_warm_and_cold(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    attaching(dokku, docker_resources, properties.ATTACH_POST_DEPLOY, start=False)

    answer, _ = same_warm_and_cold(
        dokku,
        watcher,
        trigger(dokku, "docker-args-process-deploy", APP, "dockerfile", "latest", "web", stdin="--label x"),
        reset=lambda: None,
    )

    assert answer == (0, "--label x", "")


# --- the warm path failing: the trigger runs cold, silently -----------------------------------


def socket_file(dokku: DokkuHost) -> Path:
    return dokku.lib_root / "data" / "network" / "watch" / warm.SOCKET_NAME


def attach_case(dokku: DokkuHost, resources: DockerResources):
    """post-container-create of a created container with one attach-post-create network: the
    command, the cold run's outcome, and a check that a run attached it (then undone)."""
    network, container = attaching(dokku, resources, properties.ATTACH_POST_CREATE, start=False)
    run = trigger(dokku, "post-container-create", "app", container.id, APP, "deploy", "web")

    def attached_then_detach() -> bool:
        attached = network.name in networks_of(resources, container.id)
        if attached:
            network.disconnect(container.id, force=True)
        return attached

    cold = outcome(run())
    assert cold == (0, "", "")
    assert attached_then_detach()
    return run, cold, attached_then_detach


class FakeWatcher:
    """A listener on the watcher's socket that takes one request, then answers with `reply`
    (b"" closes at once: a watcher killed before it acknowledged)."""

    def __init__(self, dokku: DokkuHost, reply: bytes) -> None:
        folder = socket_file(dokku).parent
        folder.mkdir(mode=0o700, parents=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        descriptor = os.open(folder, os.O_PATH)
        try:  # through the folder: the test's path may be longer than a socket's may be
            self.listener.bind(f"/proc/self/fd/{descriptor}/{warm.SOCKET_NAME}")
        finally:
            os.close(descriptor)
        self.listener.listen(1)
        self.reply = reply
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            size = int.from_bytes(connection.recv(4, socket.MSG_WAITALL), "big")
            self.requests.append(connection.recv(size, socket.MSG_WAITALL))
            try:
                connection.sendall(self.reply)
            except OSError:
                pass  # the trigger stopped reading (an answer over the cap) and went cold

    def close(self) -> None:
        self.thread.join(timeout=WAIT_SECONDS)
        self.listener.close()


@pytest.mark.parametrize(
    "reply",
    [
        b"",  # killed before acknowledging
        protocol.ACK,  # killed after acknowledging: the connect's outcome is unknown
        protocol.ACK + (100).to_bytes(4, "big") + b"\xe9\x02",  # killed in the middle of its answer
        protocol.ACK + (4).to_bytes(4, "big") + b"\xff\xff\xff\xff",  # a malformed answer
        protocol.ACK + frame((protocol.MISMATCH, "another version")),
        protocol.ACK + frame(["ok", {"Id": "x" * protocol.MAX_ANSWER}]),  # over the cap
        protocol.ACK + frame(b"[" * 100_000),  # nested beyond the recursion limit
        protocol.ACK + frame(b"(\xff\xff\xff\x7f"),  # marshal's tuple of 2**31-1 items
        protocol.ACK + frame(["ok", "not a container"]),  # not what inspect_container answers
        protocol.ACK + frame(["ok", {"Id": 1}, "more"]),
    ],
    ids=[
        *("killed-before-ack", "killed-after-ack", "answer-cut", "malformed-answer", "another-version"),
        *("over-the-cap", "too-deep", "tuple-bomb", "not-a-dict", "too-long"),
    ],
)
@pytest.mark.usefixtures("test_image")
def test_a_watcher_failing_mid_request_leaves_the_trigger_to_run_cold(
    dokku: DokkuHost, docker_resources: DockerResources, reply: bytes
):
    run, cold, attached_then_detach = attach_case(dokku, docker_resources)
    fake = FakeWatcher(dokku, reply)

    assert outcome(run()) == cold
    fake.close()

    assert fake.requests  # it was asked
    assert attached_then_detach()
    assert not (socket_file(dokku).parent / warm.BREAKER_NAME).exists()


@pytest.mark.usefixtures("test_image")
def test_a_killed_watcher_leaves_its_socket_and_triggers_run_cold(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    run, cold, attached_then_detach = attach_case(dokku, docker_resources)
    watcher().kill()  # SIGKILL: the socket stays, nobody listens

    assert socket_file(dokku).exists()
    assert outcome(run()) == cold
    assert attached_then_detach()


@pytest.mark.usefixtures("test_image")
def test_a_stopped_watcher_removes_its_socket(dokku: DokkuHost, docker_resources: DockerResources, watcher):
    run, cold, attached_then_detach = attach_case(dokku, docker_resources)
    assert watcher().stop() == 0

    assert not socket_file(dokku).exists()
    status = dokku.command("watch", "--status")
    assert outcome(status) == (
        1,
        f"       Triggers run cold: no watcher answers on {socket_file(dokku)}\n",
        "",
    )
    assert outcome(run()) == cold
    assert attached_then_detach()


@pytest.mark.usefixtures("test_image")
def test_a_frozen_watcher_costs_one_bounded_wait_then_triggers_skip_it_until_it_answers(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    run, cold, attached_then_detach = attach_case(dokku, docker_resources)
    running = watcher()
    connections, *_ = warm_counts(dokku)
    breaker = socket_file(dokku).parent / warm.BREAKER_NAME
    os.kill(running.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert outcome(run()) == cold
        assert time.monotonic() - started < WAIT_SECONDS  # bounded (generously: the wait is 0.2 s)
        assert attached_then_detach()
        assert breaker.stat().st_mtime > time.time()

        assert outcome(run()) == cold  # skipped: it never connects (counted below)
        assert attached_then_detach()
        status = dokku.command("watch", "--status")
        assert status.returncode == 1
        assert status.stdout.startswith("       Triggers run cold until ")
    finally:
        os.kill(running.process.pid, signal.SIGCONT)
    os.utime(breaker, (0, 0))  # the moment to ask again has come

    assert outcome(run()) == cold
    assert attached_then_detach()
    # The first run's connection (answered once it thawed), the last run's and the status's.
    assert warm_counts(dokku)[0] == connections + 3


def plant(path: Path, kind: str) -> None:
    if kind == "link":
        path.symlink_to("/nonexistent/dokku-network-test")
    elif kind == "file":
        path.write_text("")
    else:
        os.mkfifo(path)


@pytest.mark.parametrize("kind", ["link", "file", "fifo"])
@pytest.mark.usefixtures("test_image")
def test_a_socket_replaced_while_the_watcher_runs_leaves_the_triggers_to_run_cold(
    dokku: DokkuHost, docker_resources: DockerResources, watcher, kind: str
):
    run, cold, attached_then_detach = attach_case(dokku, docker_resources)
    running = watcher()
    socket_file(dokku).unlink()
    plant(socket_file(dokku), kind)

    assert outcome(run()) == cold
    assert attached_then_detach()
    assert running.stop() == 0
    assert os.path.lexists(socket_file(dokku))  # not its socket: left where it is
    assert not [line for line in running.lines() if line.startswith(" !     ")]


@pytest.mark.parametrize("kind", ["link", "file", "fifo"])
@pytest.mark.usefixtures("test_image")
def test_what_holds_the_socket_name_at_start_is_replaced_never_followed(
    dokku: DokkuHost, docker_resources: DockerResources, watcher, kind: str
):
    run, cold, attached_then_detach = attach_case(dokku, docker_resources)
    socket_file(dokku).parent.mkdir(mode=0o700, parents=True)
    plant(socket_file(dokku), kind)

    running = watcher()

    assert f" !     Replaced {socket_file(dokku)}, which was not a socket" in running.lines()
    assert stat.S_ISSOCK(socket_file(dokku).lstat().st_mode)
    assert stat.S_IMODE(socket_file(dokku).lstat().st_mode) == 0o600
    assert stat.S_IMODE(socket_file(dokku).parent.lstat().st_mode) == 0o700
    assert not Path("/nonexistent/dokku-network-test").exists()
    calls = warm_calls(dokku)
    assert outcome(run()) == cold
    assert attached_then_detach()
    assert warm_calls(dokku) > calls


@pytest.mark.usefixtures("test_image")
def test_a_socket_folder_that_is_a_link_is_refused_in_one_line_and_the_watcher_goes_on(
    dokku: DokkuHost, docker_resources: DockerResources, watcher, tmp_path: Path
):
    run, cold, attached_then_detach = attach_case(dokku, docker_resources)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    socket_file(dokku).parent.parent.mkdir(parents=True, exist_ok=True)
    socket_file(dokku).parent.symlink_to(elsewhere)

    running = watcher()

    refusals = [line for line in running.lines() if line.startswith(" !     ")]
    assert len(refusals) == 1
    assert refusals[0].startswith(" !     Not answering the engine triggers (they run without the watcher): ")
    assert list(elsewhere.iterdir()) == []
    assert outcome(run()) == cold
    assert attached_then_detach()


@pytest.mark.root
def test_a_folder_on_the_way_linked_by_the_dokku_user_is_refused_and_the_watcher_goes_on(
    dokku: DokkuHost, docker_resources: DockerResources, watcher, tmp_path: Path
):
    # data/network replaced by a link root does not own: the socket is never made through it.
    run, cold, attached_then_detach = attach_case(dokku, docker_resources)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = plant_link(dokku.lib_root / "data" / "network", elsewhere)

    running = watcher()

    refusals = [line for line in running.lines() if line.startswith(" !     ")]
    assert refusals == [
        " !     Not answering the engine triggers (they run without the watcher): "
        f"Refusing to follow {link}: a link owned by uid {DOKKU_USER}, not by root"
    ]
    assert list(elsewhere.iterdir()) == []
    assert outcome(run()) == cold
    assert attached_then_detach()


@pytest.mark.root
@pytest.mark.usefixtures("test_image")
def test_a_root_trigger_never_asks_a_watcher_through_a_link_the_dokku_user_planted_higher_up(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    """The socket's folder is walked from / by the trigger too: a socket reached through a link
    root does not own could be anyone's, and its answers would become IP files."""
    root = dokku.create_app(APP)
    container = docker_resources.app_container(APP, app_root=root)
    get_ipaddr = trigger(dokku, "network-get-ipaddr", APP, "web", container.id)
    cold = outcome(get_ipaddr())
    watcher()
    before = warm_calls(dokku)
    data = dokku.lib_root / "data"
    (data / "network").rename(data / "network-moved")
    plant_link(data / "network", data / "network-moved")
    try:
        answered = outcome(get_ipaddr())
    finally:
        (data / "network").unlink()
        (data / "network-moved").rename(data / "network")

    assert answered == cold
    assert warm_calls(dokku) == before  # run cold: the watcher was not asked
    assert outcome(get_ipaddr()) == cold
    assert warm_calls(dokku) == before + 1


# --- requests the watcher refuses, living on ------------------------------------------------


def exchange(data: bytes) -> object:
    """Send raw `data` on a connection of the test process (root), return the decoded answer."""
    connection = warm.connect()
    assert connection is not None
    try:
        connection.settimeout(WAIT_SECONDS)
        connection.sendall(data)
        assert connection.recv(1, socket.MSG_WAITALL) == protocol.ACK
        size = int.from_bytes(connection.recv(4, socket.MSG_WAITALL), "big")
        return tuple(protocol.decode(connection.recv(size, socket.MSG_WAITALL)))  # type: ignore[arg-type]
    finally:
        connection.close()


def agent_version() -> str:
    answer = exchange(frame((protocol.PROTOCOL, "", protocol.STATUS, (), {})))
    return answer[1]["version"]  # type: ignore[index]


OVERSIZED = (protocol.MAX_REQUEST + 1).to_bytes(4, "big")
MALFORMED = (protocol.REFUSED, "a malformed request")


@pytest.mark.parametrize(
    ("request_of", "answer_of"),
    [
        (lambda version: OVERSIZED, lambda version: (protocol.REFUSED, "a request is at most 65536 bytes")),
        (lambda version: frame("not a request"), lambda version: MALFORMED),
        (lambda version: (3).to_bytes(4, "big") + b"\xff\xfe\xfd", lambda version: MALFORMED),
        (
            lambda version: frame((protocol.PROTOCOL, "an older version", "containers", (), {})),
            lambda version: (protocol.MISMATCH, version),
        ),
        (
            lambda version: frame((protocol.PROTOCOL, version, "remove_network", ("bridge",), {})),
            lambda version: MALFORMED,
        ),
    ],
    ids=["over-64-KiB", "not-a-request", "not-json", "another-version", "not-an-allowed-call"],
)
def test_a_refused_request_is_answered_and_the_watcher_lives_on(
    dokku: DokkuHost, watcher, request_of: Callable[[str], bytes], answer_of: Callable[[str], tuple]
):
    running = watcher()
    version = agent_version()

    assert exchange(request_of(version)) == answer_of(version)

    assert exchange(frame((protocol.PROTOCOL, version, "networks", (), {"names": ["bridge"]})))[0] == "ok"
    assert running.process.poll() is None
    assert not [line for line in running.lines() if line.startswith(" !     ")]


@pytest.mark.usefixtures("test_image")
def test_an_update_with_the_old_watcher_still_running_runs_the_triggers_cold(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    run, cold, attached_then_detach = attach_case(dokku, docker_resources)
    watcher()
    connections, calls, known, writes = warm_counts(dokku)
    module = dokku.plugin_dir / "network_plugin" / "warm.py"
    before = module.stat()
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))  # new code
    try:
        status = dokku.command("watch", "--status")
        assert outcome(run()) == cold
    finally:
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert attached_then_detach()
    assert status.returncode == 1
    assert "runs another version of the plugin or its environment" in status.stdout
    # The status's and the trigger's connections, no engine call: each asked once, then ran cold.
    assert warm_counts(dokku) == (connections + 3, calls, known, writes)


PEER = """
import socket, sys
connection = socket.socket(socket.AF_UNIX)
connection.connect(sys.argv[1])
try:  # the watcher closes the connection at once: before the request is sent, or after
    connection.sendall(bytes.fromhex(sys.argv[2]))
    print("answered" if connection.recv(1) else "closed")
except (BrokenPipeError, ConnectionResetError):
    print("closed")
"""


@pytest.fixture
def stranger() -> Iterator[int]:
    """The uid of a throw-away user, removed afterwards."""
    name = f"dnt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/false", name], check=True)
    try:
        yield pwd.getpwnam(name).pw_uid
    finally:
        subprocess.run(["userdel", name], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a user and runs a process as it")
def test_a_peer_of_another_uid_is_refused_in_one_line(
    dokku: DokkuHost, watcher, stranger: int, monkeypatch: pytest.MonkeyPatch
):
    lib_root = Path(tempfile.mkdtemp(prefix="dnt-lib-"))  # reachable by the stranger, unlike tmp_path
    try:
        lib_root.chmod(0o755)
        monkeypatch.setenv("DOKKU_LIB_ROOT", str(lib_root))
        running = watcher({"DOKKU_LIB_ROOT": str(lib_root)})
        path = lib_root / "data" / "network" / "watch" / warm.SOCKET_NAME
        # Opened up by hand: the folder's mode alone keeps other users out; this tests the uid check.
        path.parent.chmod(0o711)
        path.chmod(0o666)
        status = frame((protocol.PROTOCOL, "", protocol.STATUS, (), {})).hex()

        peer = subprocess.run(
            ["/usr/bin/python3", "-c", PEER, str(path), status],
            preexec_fn=lambda: os.setuid(stranger),
            capture_output=True,
            text=True,
            check=False,
            timeout=WAIT_SECONDS,
        )

        assert (peer.returncode, peer.stdout) == (0, "closed\n"), peer.stderr
        refusal = re.compile(
            rf" !     Refused a connection to the triggers' socket from uid {stranger} \(pid \d+\):"
            " only uid 0 and root may ask"
        )
        refusals = [line for line in running.lines() if line.startswith(" !     ")]
        assert len(refusals) == 1
        assert refusal.fullmatch(refusals[0])
        assert agent_version()  # it lives on
    finally:
        shutil.rmtree(lib_root)


def test_answered_connections_leave_no_thread_or_descriptor_behind(dokku: DokkuHost, watcher):
    running = watcher()
    version = agent_version()
    task, descriptors = Path(f"/proc/{running.process.pid}/task"), Path(f"/proc/{running.process.pid}/fd")

    def counts() -> tuple[int, int]:
        return len(list(task.iterdir())), len(list(descriptors.iterdir()))

    def ask() -> None:
        answer = exchange(frame((protocol.PROTOCOL, version, "networks", (), {"names": ["bridge"]})))
        assert answer[0] == protocol.OK  # type: ignore[index]

    for _ in range(300):
        ask()
    threads, files = counts()
    for _ in range(300):
        ask()

    # A leak per connection would be 300 more. The watcher follows the shared engine, where other
    # tests' containers come and go meanwhile: its job pools may grow to their size, each job
    # thread with an engine connection (and the calls' own connection beside the event stream).
    jobs = sum(POOL_SIZES.values())
    wait_for(
        lambda: counts()[0] <= threads + jobs and counts()[1] <= files + jobs + 1,
        f"the threads and descriptors of 300 connections to go (before: {threads}, {files})",
    )


# --- what a trigger imports -------------------------------------------------------------------

# Each costs a trigger milliseconds (the SDK and requests ~85 ms; json and socket ~13 ms).
WARM_NEVER = {
    *("docker", "requests", "urllib3", "json", "socket", "threading", "dataclasses", "typing", "filelock"),
    "site",  # ~1.5 ms with a distribution's sitecustomize: triggers start with -S
}


def interpreter_command(trigger: Path) -> list[str]:
    """The interpreter and options of the trigger file install made (its `#!` line)."""
    first = trigger.read_text().splitlines()[0]
    assert first.startswith("#!/") and first.endswith(" -EsS"), first
    return first[2:].split()


def imported(dokku: DokkuHost, name: str, *args: str) -> set[str]:
    """The top-level packages of every module the trigger imported (`python -X importtime`),
    run as it runs itself."""
    entry = dokku.plugin_dir / name
    command = [*interpreter_command(entry), "-X", "importtime", str(entry), *args]
    result = subprocess.run(command, env=dokku.env, capture_output=True, text=True, check=False, input="")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.split("|")[2].strip().split(".")[0] for line in lines[1:]}


@pytest.mark.usefixtures("test_image")
def test_warm_engine_triggers_import_neither_the_sdk_nor_json_nor_socket(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    network, container = attaching(dokku, docker_resources, properties.ATTACH_POST_CREATE, start=True)
    watcher()
    calls = warm_calls(dokku)

    get_ipaddr = imported(dokku, "network-get-ipaddr", APP, "web", container.id)
    attached = imported(dokku, "post-container-create", "app", container.id, APP, "deploy", "web")

    assert warm_calls(dokku) >= calls + 2
    assert network.name in networks_of(docker_resources, container.id)
    assert get_ipaddr & WARM_NEVER == set()
    assert attached & WARM_NEVER == set()
    assert "_socket" in get_ipaddr


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("network-get-property", (APP, "tld")),
        ("network-get-listeners", (APP, "web")),
        ("network-config-exists", (APP,)),
    ],
)
def test_readers_import_no_thread_nor_socket_module(dokku: DokkuHost, name: str, args: tuple[str, ...]):
    dokku.create_app(APP)

    modules = imported(dokku, name, *args)

    assert modules & {"threading", "_socket", "functools", *WARM_NEVER} == set()


# --- the writers, made by the watcher --------------------------------------------------------

OLD_APP, NEW_APP = f"{APP}-old", f"{APP}-new"
WRITERS = {
    "write-ip": ("network-write-ipaddr", (APP, "web", "2", "10.0.0.9")),
    "write-port": ("network-write-port", (APP, "web", "2", "5001")),
    "remove-ip": ("network-write-ipaddr", (APP, "web", "1", "")),
    "clone": ("post-app-clone-setup", (OLD_APP, NEW_APP)),
    "rename": ("post-app-rename-setup", (OLD_APP, NEW_APP)),
}


def set_up_writes(dokku: DokkuHost) -> None:
    """The files every writer changes, as before its run (made again before each run)."""
    for app in (APP, OLD_APP, NEW_APP):
        shutil.rmtree(dokku.dokku_root / app, ignore_errors=True)
        shutil.rmtree(dokku.property_file(app, "tld").parent, ignore_errors=True)
    root = dokku.create_app(APP)
    (root / "IP.web.1").write_text("10.0.0.4")
    (root / "PORT.web.2").write_text("5000")
    dokku.create_app(OLD_APP)
    dokku.write_property(OLD_APP, "tld", "svc.local")
    (dokku.create_app(NEW_APP) / "IP.web.1").write_text("10.0.0.7")


@pytest.mark.parametrize("case", list(WRITERS))
def test_a_writer_is_made_by_the_watcher_with_the_same_output_and_files(dokku: DokkuHost, watcher, case: str):
    name, args = WRITERS[case]
    prepare = lambda: set_up_writes(dokku)  # noqa: E731 - one line, named for what it does

    shown, running = same_warm_and_cold(
        dokku, watcher, trigger(dokku, name, *args), reset=prepare, prepare=prepare
    )

    assert shown == (0, "", "")
    assert warm_counts(dokku)[3] == 1  # the write, made by the watcher
    assert running.process.poll() is None


def test_a_warm_writer_never_imports_filelock_and_a_cold_one_does(dokku: DokkuHost, watcher):
    set_up_writes(dokku)
    cold = imported(dokku, "network-write-ipaddr", APP, "web", "2", "10.0.0.9")
    watcher()

    warm_run = imported(dokku, "network-write-ipaddr", APP, "web", "2", "10.0.0.10")

    assert "filelock" in cold
    assert "filelock" not in warm_run
    assert (dokku.dokku_root / APP / "IP.web.2").read_text() == "10.0.0.10"


def test_a_value_a_writer_refuses_never_reaches_the_watcher(dokku: DokkuHost, watcher):
    set_up_writes(dokku)
    refused = trigger(dokku, "network-write-port", APP, "web", "2", "99999")
    cold = outcome(refused())
    watcher()

    assert (
        outcome(refused())
        == cold
        == (1, "", " !     Invalid port specified, must be between 1 and 65535: 99999\n")
    )
    assert warm_counts(dokku)[3] == 0


@pytest.mark.parametrize(
    "reply",
    [
        b"",
        protocol.ACK,
        protocol.ACK + frame((protocol.REFUSED, "Timed out after 32.5s waiting for the lock of the app")),
        protocol.ACK + frame((protocol.MISMATCH, "another version")),
        protocol.ACK + frame(["ok", "not a status"]),
    ],
    ids=["killed-before-ack", "killed-after-ack", "refused", "another-version", "malformed"],
)
def test_a_watcher_that_does_not_write_leaves_the_writer_to_write_alike(dokku: DokkuHost, reply: bytes):
    name, args = WRITERS["write-ip"]
    set_up_writes(dokku)
    cold = changes(dokku, trigger(dokku, name, *args))
    set_up_writes(dokku)
    fake = FakeWatcher(dokku, reply)

    assert changes(dokku, trigger(dokku, name, *args)) == cold
    fake.close()
    assert fake.requests  # it was asked
