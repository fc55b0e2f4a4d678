"""The watcher's view of the engine's networks, and the warm triggers' questions it answers
without an engine call (docs/reference.md: Triggers answered warm)."""

from __future__ import annotations

import marshal
import socket
import threading

import pytest

from network_plugin import agent, warm
from network_plugin.engine_events import EngineEvents
from network_plugin.network_view import NetworkView
from tests.fake_engine import FakeEngine


def network(name: str, network_id: str, scope: str = "local") -> dict:
    return {"Name": name, "Id": network_id, "Scope": scope}


def network_event(action: str, name: str, network_id: str, scope: str = "local") -> dict:
    return {
        "Type": "network",
        "Action": action,
        "scope": scope,
        "Actor": {"ID": network_id, "Attributes": {"name": name, "type": "bridge"}},
    }


def listed(*networks: dict) -> NetworkView:
    view = NetworkView()
    view.listed(networks)
    return view


def test_a_view_knows_nothing_before_its_listing():
    assert NetworkView().ids([]) is None
    assert NetworkView().ids(["app-net"]) is None


def test_a_listed_view_answers_only_when_it_knows_every_name():
    view = listed(network("app-net", "n1"), network("other", "n2"))

    assert view.ids(["app-net", "other"]) == {"app-net": "n1", "other": "n2"}
    assert view.ids(["app-net", "missing"]) is None  # the engine is asked: it may be new


def test_networks_of_the_swarms_scope_are_always_asked_of_the_engine():
    view = listed(network("overlay-net", "o1", scope="swarm"))
    view.apply(network_event("create", "made-on-a-manager", "o2", scope="swarm"))

    assert view.ids(["overlay-net"]) is None
    assert view.ids(["made-on-a-manager"]) is None


def test_create_and_destroy_events_keep_the_view():
    view = listed(network("app-net", "n1"))

    view.apply(network_event("destroy", "app-net", "n1"))
    assert view.ids(["app-net"]) is None
    view.apply(network_event("create", "app-net", "n3"))
    assert view.ids(["app-net"]) == {"app-net": "n3"}


def test_the_destroy_of_an_older_network_of_that_name_leaves_the_newer_one():
    """Events come in order, but a listing may already hold the network made after one removed."""
    view = listed(network("app-net", "new"))

    view.apply(network_event("destroy", "app-net", "old"))

    assert view.ids(["app-net"]) == {"app-net": "new"}


def test_a_lost_stream_makes_every_question_go_to_the_engine_until_the_next_listing():
    view = listed(network("app-net", "n1"))

    view.lost()
    view.apply(network_event("create", "app-net", "n1"))

    assert view.ids(["app-net"]) is None
    view.listed([network("app-net", "n1")])
    assert view.ids(["app-net"]) == {"app-net": "n1"}


def test_the_events_thread_lists_the_networks_after_each_connect_and_follows_their_events():
    engine = FakeEngine([])
    view = NetworkView()
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
        lambda app: None,
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
        return served, warm.WarmEngine(trigger_end, served.version)

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


@pytest.mark.parametrize("args", [(), ("app-net",), ([1],), (["a"], ["b"])])
def test_a_malformed_question_of_known_networks_is_refused_and_the_agent_goes_on(args):
    served = agent.Agent(listed(network("app-net", "n1")))
    request = (warm.PROTOCOL, served.version, warm.KNOWN_NETWORK_IDS, args, {})

    assert served.answer(marshal.dumps(request)) == (warm.REFUSED, "a malformed request")
    good = (warm.PROTOCOL, served.version, warm.KNOWN_NETWORK_IDS, (["app-net"],), {})
    assert served.answer(marshal.dumps(good)) == (warm.OK, {"app-net": "n1"})
