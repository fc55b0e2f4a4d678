"""What a frame between an engine trigger and the watcher may hold (network_plugin.warm_protocol):
hostile requests refused by a real `Agent` before any engine call, within the acknowledgement's
bound and without memory growing; hostile answers never used; the breaker's stamp never made
through a folder swapped for a link; the client's fallback for a call the watcher does not serve.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest.mock import call

import pytest

from network_plugin import agent, docker_engine, warm
from network_plugin import warm_protocol as protocol
from tests.polling import WAIT_SECONDS
from tests.test_hostile_links import plant_link

REPO = Path(__file__).resolve().parent.parent


def shared_lists(depth: int) -> object:
    """Nested lists each holding the one below twice: marshal sends each once, by reference."""
    nested: list = []
    for _ in range(depth):
        nested = [nested, nested]
    return nested


# A real Agent in a process of its own, its address space capped: what a request makes it build
# fails there (MemoryError) rather than on the host. It prints the answer's frame (hex, or
# "closed"), the seconds from the request to the answer, and the growth of its peak RSS (KiB).
# The request is the expression given, of `version` (the agent's) and `shared_lists`.
SERVE_ONE = """
import marshal, os, resource, socket, sys, threading, time
sys.path[0] = sys.argv[1]
from network_plugin import agent
from tests.test_warm_protocol import shared_lists
served = agent.Agent()
version = served.version
request = eval(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
with open("/proc/self/statm") as statm:
    size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
resource.setrlimit(resource.RLIMIT_AS, (size + 1024 * 1024 * 1024, hard))
trigger_end, agent_end = socket.socketpair()
served.slots.acquire()
threading.Thread(target=served._serve, args=(agent_end,), daemon=True).start()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
trigger_end.settimeout(20)
started = time.monotonic()
trigger_end.sendall(len(request).to_bytes(4, "big") + request)
try:
    assert trigger_end.recv(1, socket.MSG_WAITALL) == b"\\x06"
    size = int.from_bytes(trigger_end.recv(4, socket.MSG_WAITALL), "big")
    answer = trigger_end.recv(size, socket.MSG_WAITALL).hex() if size else "closed"
except (OSError, AssertionError):
    answer = "closed"
elapsed = time.monotonic() - started
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(answer, elapsed, grown)
"""


def served_once(request: str) -> tuple[bytes | None, float, int]:
    result = subprocess.run(
        [sys.executable, "-c", SERVE_ONE, str(REPO), request],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answer, elapsed, grown = result.stdout.split()
    return (None if answer == "closed" else bytes.fromhex(answer)), float(elapsed), int(grown)


@pytest.mark.parametrize(
    "request_data",
    [
        'b"(\\xff\\xff\\xff\\x7f"',  # marshal's tuple of 2**31-1 items: 16 GiB pre-allocated
        # A few hundred bytes, ~100 MB once rendered (in the SDK's error for a ref not a string).
        'marshal.dumps((1, version, "inspect_container", (shared_lists(24),), {}))',
        'b"[" * 60_000',
        """b'[2,"v","inspect_container",["a"],{}]' + b" " * 60_000""",
    ],
    ids=["tuple-bomb", "shared-lists", "too-deep", "trailing-data"],
)
def test_a_hostile_request_is_refused_within_the_acknowledgements_bound_and_memory_stays(request_data: str):
    answer, elapsed, grown = served_once(request_data)

    assert answer is not None, "the agent closed the connection (it failed to answer)"
    assert protocol.decode(answer) == [protocol.REFUSED, "a malformed request"]
    assert elapsed < warm.ACK_SECONDS
    assert grown < 20 * 1024  # KiB


@pytest.fixture
def engine_calls(mocker):
    """The watcher's engine client, recording the calls it is asked to make."""
    client = mocker.Mock()
    client.inspect_network.return_value = {"Id": "n1"}
    mocker.patch.object(docker_engine, "api", return_value=client)
    return client


def answered(served: agent.Agent, name: object, args: object, kwargs: object) -> tuple:
    return served.answer(protocol.encode([protocol.PROTOCOL, served.version, name, args, kwargs]))


MALFORMED = (protocol.REFUSED, "a malformed request")


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        (["inspect_container"], [], {}),  # unhashable: `name in CALLS` raised TypeError
        ({"a": 1}, [], {}),
        (1, [], {}),
        ("remove_network", ["bridge"], {}),
        ("inspect_network", ["../../images/json"], {}),
        ("inspect_network", [".."], {}),
        ("inspect_container", ["abc/../../../info"], {}),
        ("inspect_container", ["."], {}),
        ("inspect_container", ["a" * 256], {}),
        ("inspect_container", [""], {}),
        ("inspect_container", [["abc"]], {}),
        ("inspect_container", [], {}),
        ("inspect_container", ["abc", "def"], {}),
        ("inspect_container", ["abc"], {"size": True}),  # not a keyword the triggers pass
        ("containers", [], {"all": "yes"}),
        ("containers", [], {"filters": {"id": [1]}}),
        ("networks", [], {"names": "bridge"}),
        ("connect_container_to_network", ["abc", "net"], {"aliases": [["a"]]}),
        ("connect_container_to_network", ["abc", "../net"], {}),
        ("disconnect_container_from_network", ["abc", "net"], {"force": 1}),
        ("create_network", ["net"], {"ipam": {"Driver": "default"}}),
        ("create_network", ["net"], {"labels": {"a": 1}}),
        ("info", ["x"], {}),
    ],
)
def test_a_request_not_of_an_allowed_calls_shape_is_refused_without_an_engine_call(
    engine_calls, name: object, args: object, kwargs: object
):
    served = agent.Agent()

    assert answered(served, name, args, kwargs) == MALFORMED
    assert engine_calls.mock_calls == []
    assert served.calls == 0
    assert answered(served, "inspect_network", ["n1"], {}) == (protocol.OK, {"Id": "n1"})  # it goes on


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("containers", [], {"all": True, "filters": {"id": ["0123abc"], "label": "com.dokku.app-name"}}),
        ("inspect_container", ["0123456789ab"], {}),
        ("networks", [], {"names": ["app-net.1_x"]}),
        ("inspect_network", ["n1"], {}),
        ("info", [], {}),
        ("connect_container_to_network", ["abc", "net"], {"aliases": ["app.web", "host.app.web"]}),
        ("connect_container_to_network", ["abc", "net"], {"aliases": None}),
        ("disconnect_container_from_network", ["abc", "n1"], {"force": True}),
        (
            "create_network",
            ["app-net"],
            {
                **{"driver": "bridge", "options": None, "ipam": None, "check_duplicate": True},
                **{"internal": False, "labels": {"com.dokku.network-name": "app-net"}},
                **{"enable_ipv6": False, "attachable": True},
            },
        ),
    ],
)
def test_every_call_the_triggers_make_is_made(engine_calls, name: str, args: list, kwargs: dict):
    served = agent.Agent()

    answered(served, name, args, kwargs)

    assert engine_calls.mock_calls == [getattr(call, name)(*args, **kwargs)]
    assert served.calls == 1


def test_an_answer_too_large_for_the_trigger_is_refused_by_the_watcher_and_made_cold(engine_calls, mocker):
    engine_calls.containers.return_value = [{"Id": "x" * protocol.MAX_ANSWER}]
    served = agent.Agent()
    trigger_end, agent_end = socket.socketpair()
    served.slots.acquire()
    threading.Thread(target=served._serve, args=(agent_end,), daemon=True).start()
    cold = mocker.Mock()
    cold.containers.return_value = [{"Id": "cold"}]
    engine = warm.WarmEngine(trigger_end, served.version, cold=lambda: cold)

    assert engine.containers(all=True) == [{"Id": "cold"}]
    assert engine_calls.mock_calls == [call.containers(all=True)]  # the watcher asked, then refused


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("inspect_container", ["ok", {"Id": "abc"}]),
        ("containers", ["ok", [{"Id": "abc"}]]),
        ("connect_container_to_network", ["ok", None]),
        ("inspect_container", ["api", 404, "No such container: abc"]),
        ("inspect_container", ["mismatch", "another version"]),
        (protocol.KNOWN_NETWORK_IDS, ["ok", {"app-net": "n1"}]),
        (protocol.KNOWN_NETWORK_IDS, ["ok", None]),
        (protocol.STATUS, ["status", {"pid": 1}]),
    ],
)
def test_an_answer_of_the_calls_shape_is_taken(name: str, answer: list):
    assert protocol.answer_of(name, answer) == tuple(answer)


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("inspect_container", ["ok", "a string"]),
        ("inspect_container", ["ok", None]),
        ("containers", ["ok", {}]),
        ("connect_container_to_network", ["ok", {}]),
        ("inspect_container", ["api", "404", "text"]),
        ("inspect_container", ["api", True, "text"]),
        ("inspect_container", ["mismatch", 2]),
        ("inspect_container", ["ok"]),
        ("inspect_container", ["ok", {}, "more"]),
        ("inspect_container", []),
        ("inspect_container", {"ok": 1}),
        (protocol.KNOWN_NETWORK_IDS, ["ok", {"app-net": 1}]),
        ("inspect_container", [["ok"], {}]),
    ],
)
def test_an_answer_not_of_the_calls_shape_is_malformed(name: str, answer: object):
    with pytest.raises(protocol.Malformed):
        protocol.answer_of(name, answer)


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000, b"NaN", b"[Infinity]", b"1" + b"0" * 30, b'"\x01"', b"\xff", b"", b"[1,]", b"[1] [2]"],
)
def test_what_is_not_one_bounded_json_value_is_malformed(data: bytes):
    with pytest.raises(protocol.Malformed):
        protocol.decode(data)


def test_a_request_round_trips_and_what_json_cannot_carry_is_not_sent():
    message = [2, "v", "containers", (), {"all": True, "filters": {"label": "é=\n"}, "n": None, "i": -3}]

    assert protocol.decode(protocol.encode(message)) == [2, "v", "containers", [], message[4]]
    with pytest.raises(ValueError, match="cannot be sent"):
        protocol.encode([b"bytes"])
    with pytest.raises(ValueError, match="cannot be sent"):
        protocol.encode({1: "a"})


# --- the client's side: calls it does not serve, the breaker -----------------------------------


def test_a_call_the_watcher_does_not_serve_is_made_by_the_sdks_client(mocker):
    """`remove_network` through `docker_engine.api()` while a watcher runs: AttributeError before."""
    cold = mocker.Mock()
    trigger_end, _ = socket.socketpair()
    engine = warm.WarmEngine(trigger_end, "v", cold=lambda: cold)

    engine.remove_network("n1")

    cold.remove_network.assert_called_once_with("n1")
    assert engine.fallback is cold
    assert trigger_end.fileno() == -1  # the watcher is not asked again
    with pytest.raises(AttributeError):
        engine.__deepcopy__  # noqa: B018 - not an SDK call: never the SDK's client


@pytest.fixture
def warm_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOKKU_LIB_ROOT", str(tmp_path / "lib"))
    folder = tmp_path / "lib" / "data" / "network" / "watch"
    folder.mkdir(mode=0o700, parents=True)
    return folder


def test_a_stamp_more_than_the_breakers_time_ahead_is_stale(warm_folder: Path):
    """A clock set back at boot must not keep the warm path off for that long."""
    stamp = warm_folder / warm.BREAKER_NAME
    stamp.touch()
    ahead = time.time() + 3600
    os.utime(stamp, (ahead, ahead))

    assert warm.retry_time() == 0.0

    warm.trip_breaker()
    assert 0 < warm.retry_time() - time.time() <= warm.BREAKER_SECONDS
    assert sorted(path.name for path in warm_folder.iterdir()) == [warm.BREAKER_NAME]


def test_the_status_says_the_date_until_which_triggers_run_cold(warm_folder: Path):
    warm.trip_breaker()

    _, line = agent.status()

    moment = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(warm.retry_time()))
    assert line.startswith(f"Triggers run cold until {moment}: the watcher did not answer in time on ")


@pytest.mark.root
def test_the_breaker_is_never_made_through_a_folder_swapped_for_a_link_while_the_ack_is_withheld(
    warm_folder: Path, tmp_path: Path
):
    """A process of the Dokku user answering on the socket withholds the acknowledgement and swaps
    `watch/` for a link: root's trigger, tripping the breaker, creates nothing where it points."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    descriptor = os.open(warm_folder, os.O_PATH)
    try:
        listener.bind(f"/proc/self/fd/{descriptor}/{warm.SOCKET_NAME}")
    finally:
        os.close(descriptor)
    listener.listen(1)
    held: list[socket.socket] = []

    def withhold() -> None:
        connection, _ = listener.accept()
        held.append(connection)
        connection.recv(4, socket.MSG_WAITALL)
        warm_folder.rename(warm_folder.with_name("watch-moved"))
        plant_link(warm_folder, elsewhere)
        swapped.set()

    swapped = threading.Event()
    thread = threading.Thread(target=withhold, daemon=True)
    thread.start()
    connection = warm.connect()
    assert connection is not None
    try:
        with pytest.raises(socket.timeout):
            warm.ask(connection, [protocol.PROTOCOL, "v", "info", [], {}])
    finally:
        connection.close()
        thread.join(WAIT_SECONDS)
        listener.close()
        for accepted in held:
            accepted.close()

    assert swapped.is_set()
    assert list(elsewhere.iterdir()) == []
    assert warm.retry_time() == 0.0  # the link is refused: no stamp is read through it either
