"""The watcher's view of the engine's networks, and the warm triggers' questions it answers
without an engine call (docs/reference.md: Triggers answered warm)."""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from network_plugin import agent, warm
from network_plugin import warm_protocol as protocol
from network_plugin.engine_events import LATE, STALLED, EngineEvents, parse_event, update_view
from network_plugin.network_view import BEHIND_SECONDS, NetworkView
from tests.fake_engine import FakeClock, FakeEngine
from tests.host import DokkuHost
from tests.polling import wait_for
from tests.test_warm_triggers import warm_counts
from tests.watcher import IN_SYNC, RunningWatcher


def network(name: str, network_id: str, scope: str = "local") -> dict:
    return {"Name": name, "Id": network_id, "Scope": scope}


def network_event(action: str, name: str, network_id: str, scope: str = "local") -> dict:
    return {
        "Type": "network",
        "Action": action,
        "scope": scope,
        "Actor": {"ID": network_id, "Attributes": {"name": name, "type": "bridge"}},
    }


def listed(*networks: dict, clock: FakeClock | None = None) -> NetworkView:
    """A view listed once, its heartbeat on `clock` (which stands still unless moved)."""
    view = NetworkView(clock or FakeClock())
    view.listed(networks, view.losses())
    return view


def apply_events(view: NetworkView, *events: dict) -> None:
    """The events as the events thread gives them to the view."""
    for event in events:
        update_view(view, parse_event(event))


def test_a_view_knows_nothing_before_its_listing():
    assert NetworkView(FakeClock()).ids([]) is None
    assert NetworkView(FakeClock()).ids(["app-net"]) is None


def test_a_listed_view_answers_only_when_it_knows_every_name():
    view = listed(network("app-net", "n1"), network("other", "n2"))

    assert view.ids(["app-net", "other"]) == {"app-net": "n1", "other": "n2"}
    assert view.ids(["app-net", "missing"]) is None  # the engine is asked: it may be new


def test_networks_of_the_swarms_scope_are_always_asked_of_the_engine():
    view = listed(network("overlay-net", "o1", scope="swarm"))
    apply_events(view, network_event("create", "made-on-a-manager", "o2", scope="swarm"))

    assert view.ids(["overlay-net"]) is None
    assert view.ids(["made-on-a-manager"]) is None


def test_create_and_destroy_events_keep_the_view():
    view = listed(network("app-net", "n1"))

    apply_events(view, network_event("destroy", "app-net", "n1"))
    assert view.ids(["app-net"]) is None
    apply_events(view, network_event("create", "app-net", "n3"))
    assert view.ids(["app-net"]) == {"app-net": "n3"}


def test_the_destroy_of_an_older_network_of_that_name_leaves_the_newer_one():
    """Events come in order, but a listing may already hold the network made after one removed."""
    view = listed(network("app-net", "new"))

    apply_events(view, network_event("destroy", "app-net", "old"))

    assert view.ids(["app-net"]) == {"app-net": "new"}


def test_a_lost_stream_makes_every_question_go_to_the_engine_until_the_next_listing():
    view = listed(network("app-net", "n1"))

    view.lost()
    apply_events(view, network_event("create", "app-net", "n1"))

    assert view.ids(["app-net"]) is None
    view.listed([network("app-net", "n1")], view.losses())
    assert view.ids(["app-net"]) == {"app-net": "n1"}


def test_a_view_answers_only_while_its_heartbeat_is_recent_and_a_gap_loses_it_until_the_next_listing():
    clock = FakeClock()
    view = listed(network("app-net", "n1"), clock=clock)

    clock.now += BEHIND_SECONDS
    assert view.ids(["app-net"]) == {"app-net": "n1"}
    clock.now += 0.1  # the heartbeat is late: the whole watcher may be stalled
    assert view.ids(["app-net"]) is None
    assert view.beat() == pytest.approx(BEHIND_SECONDS + 0.1)
    assert view.ids(["app-net"]) is None  # beating again, but events may be lost meanwhile
    view.listed([network("app-net", "n1")], view.losses())
    assert view.ids(["app-net"]) == {"app-net": "n1"}
    clock.now += BEHIND_SECONDS
    assert view.beat() == pytest.approx(BEHIND_SECONDS)  # no longer than the bound: no gap
    assert view.ids(["app-net"]) == {"app-net": "n1"}


def test_a_listing_asked_before_a_stall_leaves_the_view_lost():
    clock = FakeClock()
    view = NetworkView(clock)
    losses = view.losses()  # then the listing is asked; the watcher stalls before it is kept
    clock.now += 2.0
    view.beat()

    view.listed([network("app-net", "n1")], losses)

    assert view.ids(["app-net"]) is None


def test_the_events_thread_lists_the_networks_after_each_connect_and_follows_their_events():
    engine = FakeEngine([])
    view = NetworkView(FakeClock())
    seen: list[tuple[str, object, object]] = []  # (network created, what the view said of two names)

    def synced(apps, states):
        seen.append(("sync", view.ids(["app-net"]), None))

    def created(name: str) -> None:
        seen.append((name, view.ids(["app-net"]), view.ids([name])))
        if len(seen) == 2:
            engine.streams[-1].put(
                network_event("destroy", "app-net", "n1"), network_event("create", "app-net-2", "n6")
            )
        else:
            engine.streams[-1].end()

    events = EngineEvents(
        threading.Event(),
        synced,
        lambda app, returning, network_of: None,
        created,
        connect=engine.connect,
        listing=engine.listing,
        pause=lambda seconds: True,  # stop at the first pause
        view=view,
        list_networks=lambda: [network("app-net", "n1")],
    )
    thread = threading.Thread(target=events.run)
    thread.start()
    engine.stream().put(network_event("create", "app-net-1", "n5"))
    thread.join(timeout=30)

    assert seen == [
        ("sync", None, None),  # not current before its listing
        ("app-net-1", {"app-net": "n1"}, {"app-net-1": "n5"}),
        ("app-net-2", None, {"app-net-2": "n6"}),
    ]
    assert view.ids(["app-net-2"]) is None  # the stream ended: not current


@pytest.fixture
def answering():
    """An `Agent` serving `view` on a socket pair: the warm stand-in asks it as a trigger does."""

    def serve(view: NetworkView | None) -> tuple[agent.Agent, warm.WarmEngine]:
        served = agent.Agent(view)
        trigger_end, agent_end = socket.socketpair()
        threading.Thread(target=served._serve, args=(agent_end,), daemon=True).start()
        served.slots.acquire()
        return served, warm.WarmEngine(trigger_end, served.version, cold=lambda: None)

    return serve


def test_the_agent_answers_known_networks_from_the_view_without_an_engine_call(answering):
    served, engine = answering(listed(network("app-net", "n1")))

    assert engine.known_network_ids(["app-net"]) == {"app-net": "n1"}
    assert engine.known_network_ids(["app-net", "new-net"]) is None
    assert (served.known, served.calls) == (1, 0)
    assert engine.fallback is None  # still asking the watcher


def test_an_agent_without_a_view_answers_that_the_engine_is_to_be_asked(answering):
    served, engine = answering(None)

    assert engine.known_network_ids(["app-net"]) is None
    assert served.known == 0


@pytest.mark.parametrize("args", [[], ["app-net"], [[1]], [["a"], ["b"]], [None]])
def test_a_malformed_question_of_known_networks_is_refused_and_the_agent_goes_on(args):
    served = agent.Agent(listed(network("app-net", "n1")))
    request = [protocol.PROTOCOL, served.version, protocol.KNOWN_NETWORK_IDS, args, {}]

    assert served.answer(protocol.encode(request)) == (protocol.REFUSED, "a malformed request")
    good = [protocol.PROTOCOL, served.version, protocol.KNOWN_NETWORK_IDS, [["app-net"]], {}]
    assert served.answer(protocol.encode(good)) == (protocol.OK, {"app-net": "n1"})


def test_after_a_stall_the_agent_says_a_network_destroyed_meanwhile_is_missing(answering):
    """The engine dropped the destroy event (the watcher was stopped): the view never reads it."""
    engine = FakeEngine([])
    clock = FakeClock()
    view = NetworkView(clock)
    listings = [[network("app-net", "n1")], [network("other-net", "n2")]]
    pauses: list[float] = []
    stopping = threading.Event()
    events = EngineEvents(
        stopping,
        lambda apps, states: None,
        lambda app, returning, network_of: None,
        lambda name: None,
        connect=engine.connect,
        listing=engine.listing,
        pause=pauses.append,
        view=view,
        list_networks=lambda: listings.pop(0),
    )
    thread = threading.Thread(target=events.run)
    thread.start()
    _, asking = answering(view)
    try:
        wait_for(lambda: asking.known_network_ids(["app-net"]) == {"app-net": "n1"}, "the first listing")

        clock.now += 3.0  # stopped for 3 s; its threads resume, and a trigger asks first
        assert asking.known_network_ids(["app-net"]) is None
        events.beat()  # then the heartbeat comes: the stream is read no longer, all is listed again
        wait_for(lambda: asking.known_network_ids(["other-net"]) == {"other-net": "n2"}, "the second listing")

        assert asking.known_network_ids(["app-net"]) is None  # missing: the trigger asks the engine
        assert (len(engine.streams), engine.streams[0].closed, pauses) == (2, True, [])
    finally:
        stopping.set()
        events.close()
        thread.join(30)


# --- on the real engine, through a running watcher --------------------------------------------


def known_to_the_watcher(dokku: DokkuHost, names: list[str]) -> dict[str, str] | None:
    """What the running watcher's view answers a trigger asking for `names`, asked as one does."""
    command = [str(dokku.plugin_dir / ".venv" / "bin" / "python3"), "-E", "-s", "-S", "-c", ASK_VIEW]
    result = subprocess.run(
        [*command, str(dokku.plugin_dir), *names], env=dokku.env, capture_output=True, text=True, check=True
    )
    return ast.literal_eval(result.stdout)


ASK_VIEW = """
import sys
sys.path[0] = sys.argv[1]
from network_plugin import warm
engine = warm.engine(lambda: None)
assert engine is not None, "no watcher answers"
print(repr(engine.known_network_ids(sys.argv[2:])))
"""


def watched_app_naming(dokku: DokkuHost, app: str, network_name: str, watcher) -> RunningWatcher:
    """`app`, its attach-post-deploy naming `network_name` (made), and the watcher started."""
    dokku.create_app(app)
    assert dokku.command("create", network_name).returncode == 0
    assert dokku.command("set", app, "attach-post-deploy", network_name).returncode == 0
    return watcher()


def test_docker_args_of_existing_networks_make_no_engine_call_and_a_removed_one_is_made_again(
    dokku: DokkuHost, docker_client, network_name: str, watcher
):
    app = f"view-app-{os.getpid()}"
    running = watched_app_naming(dokku, app, network_name, watcher)
    network_id = docker_client.networks.get(network_name).id
    deploy_args = ("docker-args-process-deploy", app, "dockerfile", "latest", "web")

    _, calls, known, _ = warm_counts(dokku)
    answered = dokku.trigger(*deploy_args, stdin="--label x")

    assert (answered.returncode, answered.stdout, answered.stderr) == (0, "--label x", "")
    assert warm_counts(dokku)[1:3] == (calls, known + 1)  # the view answered, the engine was not asked

    docker_client.networks.get(network_name).remove()
    # The engine's destroy event reaches the view: from then on the network is missing.
    wait_for(lambda: known_to_the_watcher(dokku, [network_name]) is None, "the view to drop the network")
    recreated = dokku.trigger(*deploy_args, stdin="--label x")

    assert (recreated.returncode, recreated.stdout) == (0, "--label x")
    assert recreated.stderr == f"-----> Recreating network {network_name}\n"
    made_again = docker_client.networks.get(network_name).id
    assert made_again != network_id
    # ... and its create event puts it back, with its new id.
    wait_for(
        lambda: known_to_the_watcher(dokku, [network_name]) == {network_name: made_again},
        "the view to know the network made again",
    )
    assert running.process.poll() is None


def _said(template: str) -> str:
    return re.escape(template).replace(re.escape("{:.1f}"), r"\d+\.\d")


# Which of the two says it first: the heartbeat, or the events thread reading the stream's
# events (when it read others before the stall).
FELL_BEHIND = re.compile(rf" !     (?:{_said(STALLED)}|{_said(LATE)}); listing everything again")


def test_a_network_destroyed_while_the_watcher_was_stopped_is_made_again_by_a_warm_deploy(
    dokku: DokkuHost, docker_client, network_name: str, watcher
):
    """Stopped (SIGSTOP: as swapped out, or starved), the watcher reads no event, and the engine
    would drop them past its buffer: back, it trusts nothing it knew before and lists again."""
    app = f"stall-app-{os.getpid()}"
    running = watched_app_naming(dokku, app, network_name, watcher)
    network_id = docker_client.networks.get(network_name).id
    wait_for(
        lambda: known_to_the_watcher(dokku, [network_name]) == {network_name: network_id},
        "the view to know the network",
    )
    _, calls, known, _ = warm_counts(dokku)

    running.process.send_signal(signal.SIGSTOP)
    try:
        docker_client.networks.get(network_name).remove()
        time.sleep(2 * BEHIND_SECONDS)  # waits for nothing: the stall itself, over the bound
    finally:
        running.process.send_signal(signal.SIGCONT)
    recreated = dokku.trigger(
        "docker-args-process-deploy", app, "dockerfile", "latest", "web", stdin="--label x"
    )

    assert (recreated.returncode, recreated.stdout) == (0, "--label x")
    assert recreated.stderr == f"-----> Recreating network {network_name}\n"
    assert docker_client.networks.get(network_name).id != network_id
    _, calls_after, known_after, _ = warm_counts(dokku)
    assert calls_after > calls and known_after == known  # the engine asked, through the watcher
    wait_for(lambda: any(FELL_BEHIND.fullmatch(line) for line in running.lines()), "the line saying why")
    running.wait_for_line(IN_SYNC, count=2)  # every app reconciled again
    assert running.process.poll() is None
