"""`network:watch` (docs/reference.md: network:watch): IP files healed and the proxy refreshed
as containers move.

The engine tests run the watcher as the service does and wait for what a user would see:
the IP files, the calls of the proxy command (a recorder script), the log lines.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from docker.models.containers import Container

from network_plugin import proxy, service
from network_plugin.engine_events import DeployContainers, EngineEvents, parse_event
from network_plugin.watch import IN_SYNC, STOP_WAIT_SECONDS, stop_on_signals
from network_plugin.watch_jobs import REBUILD, JobRunner
from network_plugin.watch_schedule import (
    MAX_DELAY_SECONDS,
    MIN_INTERVAL_SECONDS,
    PROXY_MAX_DELAY_SECONDS,
    QUIET_SECONDS,
    Debouncer,
    Schedule,
)
from tests.docker_fixtures import IMAGE, OWNER, RESOURCE_LABEL, DockerResources
from tests.fake_engine import FakeClock, FakeEngine, LoopUnderTest, container_event, deploy_labels, moved
from tests.host import DokkuHost
from tests.polling import wait_for
from tests.private_engine import can_run_private_engine, private_engine
from tests.watcher import RunningWatcher

FILLERS = 30


def ip_on(container, network: str = "bridge") -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def filler(client, network: str):
    """An unlabelled container: not Dokku's, so the watcher must not care about it."""
    return client.containers.run(
        IMAGE, ["sleep", "3600"], detach=True, network=network, labels={RESOURCE_LABEL: OWNER}
    )


def address_taken(client, network: str, ip: str) -> bool:
    attached = client.api.inspect_network(network)["Containers"] or {}
    return any(endpoint["IPv4Address"].partition("/")[0] == ip for endpoint in attached.values())


def move_address(container, network: str = "bridge") -> str:
    """Stop the container, let fillers take its address, start it again: its new address.

    The engine hands out the lowest free address. Containers of tests running beside this one
    (other xdist workers, other runs) may take the freed address first, and free it again before
    the container starts: then it is moved once more."""
    for _ in range(3):
        old = ip_on(container, network)
        container.stop(timeout=0)
        for _ in range(FILLERS):
            if address_taken(container.client, network, old):
                break
            filler(container.client, network)
        else:
            pytest.fail(f"no filler got {old}")
        container.start()
        new = ip_on(container, network)
        if new != old:
            return new
    pytest.fail(f"the container kept {old} through three moves")


def write_ip(root: Path, name: str, ip: str) -> None:
    (root / name).write_text(ip)


def marker_app(dokku: DokkuHost, docker_resources: DockerResources) -> Container:
    """A settled app whose restart, once handled, says the watcher has seen what came before."""
    root = dokku.create_app("marker-app")
    marker = docker_resources.app_container("marker-app", app_root=root)
    write_ip(root, "IP.web.1", ip_on(marker))
    return marker


def wait_until_handled(running: RunningWatcher, marker: Container) -> None:
    """Restart the marker and wait for its rebuild: the events before it were read first."""
    seen = running.rebuilds("marker-app")
    marker.restart(timeout=0)
    running.wait_for_line("-----> Ensuring network configuration is in sync for marker-app", count=seen + 1)


# --- without the engine ---------------------------------------------------------------------


def test_events_close_together_make_one_rebuild():
    debouncer = Debouncer(quiet=0.2, max_delay=1.0)
    for moment in (0.0, 0.1, 0.25):
        debouncer.add("app-a", moment)
    debouncer.add("app-b", 0.3)

    assert debouncer.take_due(0.4, set(), 4) == []
    assert debouncer.take_due(0.45, set(), 4) == ["app-a"]
    assert debouncer.take_due(0.45, set(), 4) == []
    assert debouncer.take_due(0.5, {"app-b"}, 4) == []  # being rebuilt: waits for the next round
    assert debouncer.take_due(0.5, set(), 4) == ["app-b"]


def test_an_app_whose_events_never_pause_is_still_rebuilt():
    debouncer = Debouncer(quiet=0.2, max_delay=1.0)
    moment = 0.0
    while moment < 1.0:
        debouncer.add("app-a", moment)
        moment += 0.1
    assert debouncer.take_due(1.0, set(), 4) == ["app-a"]


def test_a_long_storm_rebuilds_an_app_at_most_once_per_interval():
    debouncer = Debouncer(quiet=0.2, max_delay=1.0, min_interval=2.0)
    debouncer.add("app-a", 0.0)
    assert debouncer.take_due(0.2, set(), 4) == ["app-a"]
    debouncer.add("app-a", 0.5)
    assert debouncer.take_due(1.5, set(), 4) == []
    assert debouncer.next_due(set()) == 2.2
    assert debouncer.take_due(2.2, set(), 4) == ["app-a"]
    debouncer.release("app-a")  # its rebuild found every container running
    debouncer.add("app-a", 2.5)
    assert debouncer.take_due(2.7, set(), 4) == ["app-a"]


def network_event(action: str, container_id: str) -> dict:
    return {
        "Type": "network",
        "Action": action,
        "Actor": {"ID": "n1", "Attributes": {"container": container_id}},
    }


DEPLOY = deploy_labels("node-js-app")


@pytest.mark.parametrize("action", ["start", "restart", "unpause"])
def test_container_events_of_deploy_containers_name_their_app(action):
    containers = DeployContainers()
    assert containers.apply(parse_event(container_event(action, DEPLOY))) == "node-js-app"
    assert containers.apps == {"c1": "node-js-app"}


@pytest.mark.parametrize(
    "labels",
    [
        {"com.dokku.app-name": "node-js-app", "com.dokku.container-type": "run"},
        {"name": "not-dokkus"},
        {},
        {"com.dokku.app-name": "../../etc"},
    ],
    ids=["run-container", "unlabelled", "no-attributes", "not-an-app-name"],
)
def test_run_and_unlabelled_containers_are_not_ours(labels):
    containers = DeployContainers()
    assert containers.apply(parse_event(container_event("start", labels))) is None
    assert containers.apply(parse_event(network_event("connect", "c1"))) is None
    assert containers.apps == {}


def test_network_events_of_running_containers_name_their_app():
    containers = DeployContainers()
    containers.apply(parse_event(container_event("start", DEPLOY)))
    assert containers.apply(parse_event(network_event("disconnect", "c1"))) == "node-js-app"
    assert containers.apply(parse_event(network_event("connect", "other"))) is None


def test_network_events_of_a_dying_or_starting_container_wait_for_its_start():
    containers = DeployContainers()
    containers.apply(parse_event(container_event("start", DEPLOY)))
    assert containers.apply(parse_event(container_event("die", DEPLOY))) is None
    assert containers.apply(parse_event(network_event("disconnect", "c1"))) is None
    assert containers.apply(parse_event(network_event("connect", "c1"))) is None
    assert containers.apply(parse_event(container_event("destroy", DEPLOY))) is None
    assert containers.apps == {}


def test_a_known_container_starting_again_is_returning_and_a_new_one_is_not():
    containers = DeployContainers()
    start, die = parse_event(container_event("start", DEPLOY)), parse_event(container_event("die", DEPLOY))
    assert not containers.returning(start)  # a deploy's new container
    containers.apply(start)
    assert not containers.returning(start)  # running already
    containers.apply(die)
    assert containers.returning(start)  # stopped, and started again
    assert not containers.returning(parse_event(network_event("connect", "c1")))


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "start",
        {"Type": "container"},
        {"Type": "container", "Action": "start", "Actor": "x"},
        {"Type": "network", "Action": "connect", "Actor": {"Attributes": ["x"]}},
        {"Type": "container", "Action": "start", "Actor": {"Attributes": {"com.dokku.app-name": 1}}},
        {"Type": "container", "Action": "start", "Actor": {"ID": ["c1"]}},
        {"Type": "container", "Action": "start", "Actor": {"ID": "c1"}, "timeNano": "1700000000"},
        {"Type": "network", "Action": "destroy", "Actor": {"ID": "n1", "Attributes": {}}},
    ],
)
def test_malformed_events_are_refused(event):
    with pytest.raises(ValueError):
        parse_event(event)


def test_proxy_command_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(proxy.COMMAND_VARIABLE, raising=False)
    assert proxy.refresh_command("node-js-app") == ["dokku", "--quiet", "proxy:build-config", "node-js-app"]
    monkeypatch.setenv(proxy.COMMAND_VARIABLE, "/usr/local/bin/reload 'my proxy' --now")
    assert proxy.refresh_command("node-js-app") == [
        "/usr/local/bin/reload",
        "my proxy",
        "--now",
        "node-js-app",
    ]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("sh -c 'echo broken >&2; exit 3' refresh", "sh exited with 3: broken"),
        ("/nonexistent/refresh", "No such file or directory: /nonexistent/refresh"),
        ("'unbalanced", "DOKKU_NETWORK_PROXY_REFRESH cannot be split: No closing quotation"),
    ],
)
def test_a_failing_proxy_command_is_one_line(monkeypatch, capsys, command, message):
    monkeypatch.setenv(proxy.COMMAND_VARIABLE, command)
    assert proxy.refresh("node-js-app") is False
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        f" !     Unable to refresh the proxy of node-js-app: {message}\n",
    )


# --- the schedule, on a clock of the test's ------------------------------------------------


def schedule_at(now: float = 0.0) -> tuple[Schedule, FakeClock]:
    clock = FakeClock()
    clock.now = now
    return Schedule(clock), clock


def test_a_reconcile_rebuilds_every_app_at_once_from_its_listing_and_forgets_earlier_events():
    schedule, _ = schedule_at()
    schedule.app_moved("app-c")
    schedule.reconcile(["app-a", "app-b", "app-c"])
    schedule.app_moved("app-b")  # after the listing: it may be older than the move
    assert schedule.rebuilds_due(4) == [("app-a", True), ("app-c", True)]
    assert schedule.rebuilds_due(4) == []
    assert schedule.next_due(True, True, True) == QUIET_SECONDS


def test_an_app_has_one_job_at_a_time_and_a_pool_never_takes_more_than_it_has():
    schedule, clock = schedule_at()
    schedule.reconcile([f"app-{n}" for n in range(6)])
    assert [app for app, _ in schedule.rebuilds_due(4)] == ["app-0", "app-1", "app-2", "app-3"]
    schedule.app_moved("app-0")
    clock.now += MAX_DELAY_SECONDS
    assert schedule.rebuilds_due(0) == []
    schedule.rebuilt("app-3", changed=False, settled=True)
    assert schedule.rebuilds_due(1) == [("app-4", True)]  # app-0 is still being rebuilt
    schedule.rebuilt("app-0", changed=False, settled=True)
    assert schedule.rebuilds_due(2) == [("app-5", True), ("app-0", False)]


def test_a_settled_app_whose_files_changed_is_refreshed_at_once_and_only_once():
    schedule, _ = schedule_at()
    schedule.reconcile(["app-a"])
    schedule.rebuilds_due(4)
    schedule.rebuilt("app-a", changed=True, settled=True)
    assert not schedule.in_sync()  # its refresh is part of getting in sync
    assert schedule.refreshes_due(2) == ["app-a"]
    assert schedule.rebuilds_due(4) == []
    schedule.refreshed("app-a")
    assert schedule.in_sync()
    assert not schedule.in_sync()  # said once
    assert schedule.refreshes_due(2) == []
    assert schedule.next_due(True, True, True) is None


def test_an_app_in_motion_owes_its_refresh_to_the_rebuild_that_finds_it_settled():
    schedule, clock = schedule_at()
    schedule.app_moved("app-a")
    clock.now += QUIET_SECONDS
    assert schedule.rebuilds_due(4) == [("app-a", False)]
    schedule.rebuilt("app-a", changed=True, settled=False)  # a container not running yet
    assert schedule.refreshes_due(2) == []
    schedule.app_moved("app-a")  # another start
    clock.now += QUIET_SECONDS
    assert schedule.rebuilds_due(4) == [("app-a", False)]  # one unsettled rebuild: no motion yet
    schedule.rebuilt("app-a", changed=False, settled=False)  # still one not running
    schedule.app_moved("app-a")  # it starts
    clock.now += QUIET_SECONDS
    assert schedule.rebuilds_due(4) == []  # in motion: at most one rebuild per interval
    clock.now += MIN_INTERVAL_SECONDS
    assert schedule.rebuilds_due(4) == [("app-a", False)]
    schedule.rebuilt("app-a", changed=False, settled=True)
    assert schedule.refreshes_due(2) == ["app-a"]


def test_a_rebuild_only_network_events_of_containers_that_died_since_asked_for_is_dropped():
    schedule, clock = schedule_at()
    schedule.app_moved("app-a", network_of="a1")  # a stop's disconnect, before its die (Docker 28.5)
    schedule.app_moved("app-b", network_of="b1")
    schedule.app_moved("app-b")  # and a start: owed whatever dies
    schedule.app_moved("app-c", network_of="c1")
    schedule.app_moved("app-c", network_of="c2")  # disconnected from a network, and running on
    for app, container in (("app-a", "a1"), ("app-b", "b1"), ("app-c", "c1")):
        schedule.container_died(app, container)
    clock.now += QUIET_SECONDS
    assert schedule.rebuilds_due(4) == [("app-b", False), ("app-c", False)]
    schedule.rebuilt("app-b", changed=False, settled=True)
    schedule.rebuilt("app-c", changed=False, settled=True)
    for _ in range(3):  # stops that ask for nothing never put the app in motion
        schedule.app_moved("app-a", network_of="a1")
        schedule.container_died("app-a", "a1")
        schedule.app_moved("app-a", returning=True)
        clock.now += QUIET_SECONDS
        assert schedule.rebuilds_due(4) == [("app-a", False)]
        schedule.rebuilt("app-a", changed=True, settled=True)


def test_an_app_whose_container_runs_again_owes_a_refresh_even_when_no_file_changed():
    schedule, clock = schedule_at()
    schedule.app_moved("app-a", returning=True)
    schedule.app_moved("app-b")  # a deploy's new container: the deploy builds its proxy
    clock.now += QUIET_SECONDS
    assert schedule.rebuilds_due(4) == [("app-a", False), ("app-b", False)]
    schedule.rebuilt("app-a", changed=False, settled=False)  # another container not running yet
    schedule.rebuilt("app-b", changed=False, settled=True)
    assert schedule.refreshes_due(2) == []
    schedule.app_moved("app-a")
    clock.now += MIN_INTERVAL_SECONDS
    assert schedule.rebuilds_due(4) == [("app-a", False)]
    schedule.rebuilt("app-a", changed=False, settled=True)
    assert schedule.refreshes_due(2) == ["app-a"]
    schedule.refreshed("app-a")
    schedule.app_moved("app-a")
    clock.now += QUIET_SECONDS
    assert schedule.rebuilds_due(4) == [("app-a", False)]
    schedule.rebuilt("app-a", changed=False, settled=True)
    assert schedule.refreshes_due(2) == []  # owed once per return


def test_a_settled_app_with_new_events_waits_for_their_rebuild_before_its_refresh():
    schedule, clock = schedule_at()
    schedule.app_moved("app-a")
    clock.now += QUIET_SECONDS
    schedule.rebuilds_due(4)
    schedule.rebuilt("app-a", changed=True, settled=True)
    schedule.app_moved("app-a")
    assert schedule.refreshes_due(2) == []
    assert schedule.next_due(False, True, True) == clock.now - 0.0 + PROXY_MAX_DELAY_SECONDS
    clock.now += QUIET_SECONDS
    assert schedule.rebuilds_due(4) == [("app-a", False)]
    schedule.rebuilt("app-a", changed=False, settled=True)
    assert schedule.refreshes_due(2) == ["app-a"]


def test_an_app_that_never_settles_gets_its_refresh_when_overdue():
    schedule, clock = schedule_at()
    changed_at = clock.now
    schedule.reconcile(["app-a"])
    schedule.rebuilds_due(4)
    schedule.rebuilt("app-a", changed=True, settled=False)
    assert schedule.in_sync()  # nothing more to do until it settles
    while clock.now < changed_at + PROXY_MAX_DELAY_SECONDS:
        assert schedule.refreshes_due(2) == []
        schedule.app_moved("app-a")  # crash-looping
        clock.now += MIN_INTERVAL_SECONDS
        for app, _ in schedule.rebuilds_due(4):
            schedule.rebuilt(app, changed=True, settled=False)
    assert schedule.next_due(False, True, True) == changed_at + PROXY_MAX_DELAY_SECONDS
    assert schedule.refreshes_due(2) == ["app-a"]


def test_a_refresh_waits_for_the_apps_rebuild_and_the_rebuild_for_its_refresh():
    schedule, clock = schedule_at()
    schedule.reconcile(["app-a"])
    schedule.rebuilds_due(4)
    schedule.rebuilt("app-a", changed=True, settled=True)
    assert schedule.refreshes_due(2) == ["app-a"]
    schedule.app_moved("app-a")
    clock.now += MAX_DELAY_SECONDS
    assert schedule.rebuilds_due(4) == []
    assert schedule.next_due(True, True, True) is None  # the refresh's end wakes the loop
    schedule.refreshed("app-a")
    assert schedule.rebuilds_due(4) == [("app-a", False)]


# --- the loop, on a fake engine and fake jobs ------------------------------------------------


def out_lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_backoff_doubles_up_to_30_s_and_starts_again_at_1_s_after_a_connect(capsys):
    engine = FakeEngine([])
    engine.failures = [ConnectionError(f"refused {n}") for n in range(8)]
    pauses: list[float] = []

    def pause(seconds: float) -> bool:
        pauses.append(seconds)
        return len(pauses) == 10  # stopping

    def lose_the_stream(apps, states):
        engine.streams[-1].end()

    def no_event(app):
        pytest.fail(f"an event of {app}")

    EngineEvents(
        threading.Event(),
        lose_the_stream,
        no_event,
        no_event,
        connect=engine.connect,
        listing=engine.listing,
        pause=pause,
    ).run()

    # Two connects, each losing its stream at once: back to 1 s after each.
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 1.0, 1.0]
    lost = " !     Lost the Docker engine's event stream (the engine closed it); reconnecting in 1 s"
    assert capsys.readouterr().err.splitlines() == [
        *(f" !     refused {n}; trying again in {seconds:g} s" for n, seconds in enumerate(pauses[:8])),
        lost,
        lost,
    ]


def test_everything_is_rebuilt_from_one_listing_and_the_changed_refreshed(loop, capsys):
    apps = ["app-a", "app-b", "app-c"]
    under_test = loop(apps)
    under_test.jobs.changed = {"app-b"}
    under_test.start()

    under_test.wait_until(lambda: under_test.watcher.schedule.synced == 1, "the reconcile")

    assert sorted(under_test.jobs.rebuilds) == [(app, True) for app in apps]
    assert under_test.jobs.refreshes == ["app-b"]
    assert under_test.engine.listings == 1
    assert under_test.stop() == 0
    assert out_lines(capsys) == [
        "-----> Watching the Docker engine for container changes",
        "-----> Every app is in sync; following the engine's events",
        "-----> Stopped watching the Docker engine",
    ]


def test_10000_events_of_200_apps_make_one_rebuild_per_app(loop):
    apps = [f"app-{n:03}" for n in range(200)]
    under_test = loop([])
    under_test.start()
    stream = under_test.engine.stream()
    schedule = under_test.watcher.schedule

    stream.put(*(moved(apps[n % 200], f"c{n % 400}") for n in range(10_000)), moved("marker"))
    under_test.wait_until(lambda: "marker" in schedule.moved.pending, "every event read")
    assert under_test.jobs.rebuilds == []  # the clock stood still: no app's events paused yet

    under_test.advance(QUIET_SECONDS)
    under_test.wait_until(lambda: not schedule.busy() and not schedule.moved.pending, "the rebuilds")
    assert sorted(under_test.jobs.rebuilds) == [(app, False) for app in [*apps, "marker"]]
    assert under_test.stop() == 0


@pytest.mark.parametrize("order", [("disconnect", "die"), ("die", "disconnect")], ids=["28.5", "20.10"])
def test_a_stop_asks_for_no_rebuild_and_the_start_after_it_for_one(loop, order):
    """Docker 28.5 sends a running container's `disconnect` before its `die`, 20.10 after it."""
    under_test = loop(["node-js-app", "marker"])
    under_test.start()
    schedule = under_test.watcher.schedule
    under_test.wait_until(lambda: schedule.synced == 1, "the reconcile")
    stream = under_test.engine.stream()
    container = "node-js-app-web-1"
    stop = {
        "disconnect": network_event("disconnect", container),
        "die": container_event("die", deploy_labels("node-js-app"), container),
    }
    for _ in range(2):
        stream.put(*(stop[action] for action in order), moved("marker"))
        under_test.wait_until(lambda: "marker" in schedule.moved.pending, "the stop's events")
        under_test.advance(QUIET_SECONDS)
        under_test.wait_until(
            lambda: not schedule.busy() and not schedule.moved.pending, "the marker's rebuild"
        )
        assert under_test.jobs.rebuilt("node-js-app") == 1  # the reconcile's
        under_test.containers_moved("node-js-app")  # its start
        under_test.wait_until(lambda: not schedule.busy() and not schedule.moved.pending, "its rebuild")
        assert under_test.jobs.rebuilt("node-js-app") == 2
        under_test.jobs.rebuilds.clear()
        under_test.jobs.rebuilds.append(("node-js-app", True))
    assert under_test.stop() == 0


def test_a_rebuild_never_waits_for_the_refreshes_of_other_apps(loop):
    under_test = loop(["slow-a", "slow-b", "slow-c"])
    jobs = under_test.jobs
    jobs.changed = jobs.slow = {"slow-a", "slow-b", "slow-c"}
    under_test.start()
    schedule = under_test.watcher.schedule
    under_test.wait_until(lambda: len(jobs.refreshes) == 2, "two refreshes running")  # the pool is full

    under_test.containers_moved("moved-app")
    under_test.wait_until(lambda: jobs.rebuilt("moved-app") == 1 and not schedule.rebuilding, "its rebuild")

    assert len(jobs.refreshes) == 2  # the refreshes are still running
    jobs.release()
    under_test.wait_until(lambda: len(jobs.refreshes) == 3 and not schedule.busy(), "the third refresh")
    assert under_test.stop() == 0


def test_a_stop_during_refreshes_starts_no_job_and_waits_for_the_running_ones(loop, capsys):
    under_test = loop(["slow-a", "slow-b", "slow-c"])
    jobs = under_test.jobs
    jobs.changed = jobs.slow = {"slow-a", "slow-b", "slow-c"}
    under_test.start()
    under_test.wait_until(lambda: len(jobs.refreshes) == 2, "two refreshes running")
    running = sorted(jobs.refreshes)  # which two: whichever apps' rebuilds ended first
    under_test.engine.stream().put(moved("moved-app"))

    under_test.watcher.stop()
    under_test.thread.join(0.2)
    assert under_test.thread.is_alive()  # waiting for the refreshes
    jobs.release()
    assert under_test.stop() == 0

    assert sorted(jobs.refreshes) == running  # the third never started
    assert jobs.rebuilt("moved-app") == 0
    assert under_test.engine.streams[-1].closed
    assert out_lines(capsys)[-1] == "-----> Stopped watching the Docker engine"


def test_a_stop_waits_for_running_jobs_no_longer_than_its_bound(loop, capsys):
    under_test = loop(["slow-a"], stop_wait=0.01)
    jobs = under_test.jobs
    jobs.changed = jobs.slow = {"slow-a"}
    under_test.start()
    under_test.wait_until(lambda: jobs.refreshes, "the refresh running")

    assert under_test.stop() == 0

    assert under_test.watcher.left_running == ["slow-a"]
    assert capsys.readouterr().err == (
        " !     Stopping without waiting longer than 0.01 s for the jobs of slow-a\n"
    )


def test_a_job_whose_turn_comes_after_the_stop_does_not_run():
    stopping = threading.Event()
    runner = JobRunner(stopping, {REBUILD: 1})
    stopping.set()
    ended = []

    runner.start(REBUILD, "app-a", lambda: pytest.fail("it ran"), ended.append)
    runner.shutdown()

    wait_for(lambda: ended == [None], "its end")


def test_a_job_that_raises_is_one_line_and_the_others_go_on(loop, capsys):
    under_test = loop(["app-a", "app-b", "app-c"])
    jobs = under_test.jobs
    jobs.changed = {"app-b", "app-c"}
    jobs.failing = {"app-a": RuntimeError("the disk is gone")}
    jobs.failing_refreshes = {"app-c": OSError("no dokku")}
    under_test.start()
    under_test.wait_until(lambda: under_test.watcher.schedule.synced == 1, "the reconcile")

    jobs.failing = {}
    under_test.containers_moved("app-a")
    under_test.wait_until(lambda: jobs.rebuilt("app-a") == 2, "app-a rebuilt again")

    assert under_test.stop() == 0
    assert sorted(jobs.refreshes) == ["app-b", "app-c"]
    assert capsys.readouterr().err.splitlines() == [
        " !     Unable to rebuild the network configuration of app-a:"
        " Unexpected error: RuntimeError: the disk is gone",
        " !     Unable to refresh the proxy of app-c: no dokku",
    ]


def test_a_lost_stream_mid_storm_reconnects_and_rebuilds_everything_again(loop, capsys):
    apps = [f"app-{n}" for n in range(5)]
    under_test = loop(apps)
    jobs = under_test.jobs
    under_test.start()
    first = under_test.engine.stream()
    # Its "in sync" line out first: a second reconcile before it would make one line of both.
    under_test.wait_until(lambda: under_test.watcher.schedule.synced == 1, "the first reconcile")

    first.put(*(moved(app) for app in apps[:3]), {"Type": "container"})
    first.end(ConnectionResetError("Connection reset by peer"))
    under_test.wait_until(lambda: len(under_test.engine.streams) == 2 and len(jobs.rebuilds) == 10, "again")
    under_test.advance(MAX_DELAY_SECONDS)
    # The loop says "in sync" after the rebuilds end, in its next turn: the count of those turns,
    # not the rebuilds' end, says the line is out (a loaded machine lets a stop come in between).
    under_test.wait_until(lambda: under_test.watcher.schedule.synced == 2, "in sync again")

    # The storm's events came before the second listing, which covers them: no rebuild of their own.
    assert sorted(jobs.rebuilds) == sorted([(app, True) for app in apps] * 2)
    assert under_test.pauses == [1.0]
    assert under_test.stop() == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines().count("-----> Every app is in sync; following the engine's events") == 2
    assert captured.err.splitlines() == [
        " !     Ignoring an unexpected engine event: no Type, Action or Actor: {'Type': 'container'}",
        " !     Lost the Docker engine's event stream (Connection reset by peer); reconnecting in 1 s",
    ]


def at(event: dict, engine_time: float) -> dict:
    """The event as the engine stamps it: `timeNano`, by the engine's clock."""
    return {**event, "timeNano": int(engine_time * 1e9)}


def fall_behind_by_a_late_event(under_test: LoopUnderTest) -> str:
    """Events read as fast as ever, then one 2.5 s late; the line the watcher says."""
    stream = under_test.engine.streams[-1]
    pending = under_test.watcher.schedule.moved.pending
    # The engine's clock is an hour ahead of ours: only a lag grown by over 1 s counts, and
    # one grown by 0.8 s does not.
    for wall, engine, app in ((2000.0, 5600.0, "app-a"), (2000.9, 5600.1, "app-b")):
        under_test.wall_clock.now = wall
        stream.put(at(moved(app), engine))
        under_test.wait_until(lambda app=app: app in pending, f"the event of {app}")
    under_test.wall_clock.now = 2004.0
    stream.put(at(moved("app-c"), 5601.5))
    return "The engine's events reach the watcher 2.5 s late: it may have dropped some"


def fall_behind_by_a_stall(under_test: LoopUnderTest) -> str:
    """The heartbeat comes 1.5 s after the last one (the process was stopped, or swapped out)."""
    under_test.heartbeat_clock.now += 1.5
    under_test.watcher.events.beat()
    return "The watcher was stalled for 1.5 s: the engine may have dropped events meanwhile"


@pytest.mark.parametrize(
    "fall_behind", [fall_behind_by_a_late_event, fall_behind_by_a_stall], ids=["late", "stall"]
)
def test_a_watcher_that_may_have_lost_events_lists_and_reconciles_everything_again_at_once(
    loop, capsys, fall_behind
):
    """The engine drops the events of a subscriber that falls behind, and says nothing."""
    apps = ["app-a", "app-b"]
    under_test = loop(apps)
    under_test.start()
    first = under_test.engine.stream()
    under_test.wait_until(lambda: under_test.watcher.schedule.synced == 1, "the first reconcile")

    why = fall_behind(under_test)
    under_test.wait_until(lambda: under_test.watcher.schedule.synced == 2, "the second reconcile")

    assert first.closed
    assert (len(under_test.engine.streams), under_test.engine.listings) == (2, 2)
    # Every app rebuilt from each listing; the events before the second are covered by it.
    assert sorted(under_test.jobs.rebuilds) == sorted([(app, True) for app in apps] * 2)
    assert under_test.pauses == []  # the engine is fine: no backoff
    assert under_test.stop() == 0
    assert capsys.readouterr().err.splitlines() == [f" !     {why}; listing everything again"]


def test_sigterm_and_sigint_stop_through_the_signal_pipe():
    stopped = threading.Semaphore(0)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        for signum in handlers:
            stop_on_signals(stopped.release)
            os.kill(os.getpid(), signum)
            assert stopped.acquire(timeout=60), f"no stop on {signum}"
    finally:
        signal.set_wakeup_fd(-1)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_the_service_lets_a_stopping_watcher_wait_for_its_jobs():
    unit = Path(service.UNIT_TEMPLATE).read_text().splitlines()
    timeout = next(int(line.partition("=")[2]) for line in unit if line.startswith("TimeoutStopSec="))
    assert "KillMode=mixed" in unit  # the SIGTERM goes to the watcher, not to its proxy builds
    assert timeout > STOP_WAIT_SECONDS
    reference = (Path(__file__).parent.parent / "docs" / "reference.md").read_text()
    assert f"waiting at most {STOP_WAIT_SECONDS:g} s" in reference
    assert f"`KillMode=mixed`, `TimeoutStopSec={timeout}`" in reference


# --- on the real engine -------------------------------------------------------------------


needs_engine = pytest.mark.usefixtures("test_image")


@needs_engine
@pytest.mark.parametrize("case", ["web", "worker", "initial-network"])
def test_an_address_changed_by_a_restart_is_rewritten_and_the_proxy_refreshed_once(
    dokku: DokkuHost, docker_resources: DockerResources, watcher, case: str
):
    # This process's and this case's alone: the same test's other cases, restarting a container of
    # an app named alike on other xdist workers, would move this watcher's app too.
    app = f"moved-{case}-{OWNER}"
    root = dokku.create_app(app)
    process_type = "worker" if case == "worker" else "web"
    network = "bridge"
    if case == "initial-network":
        network = docker_resources.network().name
        dokku.command("set", app, "initial-network", network)
    container = docker_resources.app_container(
        app, process_type, 1, app_root=root, network=None if network == "bridge" else network
    )
    ip_file = root / f"IP.{process_type}.1"
    write_ip(root, ip_file.name, ip_on(container, network))
    running = watcher()

    new_ip = move_address(container, network)

    wait_for(lambda: ip_file.read_text() == new_ip, f"{ip_file.name} to become {new_ip}")
    running.wait_for_line(f"-----> Refreshed the proxy of {app}")
    assert running.stop() == 0
    assert running.calls() == [app]
    assert f"       Updated {app}: {ip_file.name} ({new_ip})" in running.lines()


@needs_engine
def test_changes_made_while_the_watcher_was_not_running_are_fixed_at_start(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    stale, fine = dokku.create_app("stale-app"), dokku.create_app("fine-app")
    web = docker_resources.app_container("stale-app", app_root=stale)
    write_ip(stale, "IP.web.1", "10.255.255.1")
    other = docker_resources.app_container("fine-app", app_root=fine)
    write_ip(fine, "IP.web.1", ip_on(other))

    running = watcher()

    assert (stale / "IP.web.1").read_text() == ip_on(web)
    assert running.stop() == 0
    assert running.calls() == ["stale-app"]
    lines = running.lines()
    stale_lines = [
        "-----> Ensuring network configuration is in sync for stale-app",
        f"       Updated stale-app: IP.web.1 ({ip_on(web)})",
        "-----> Refreshed the proxy of stale-app",
    ]
    # The apps are rebuilt side by side: each app's lines in order, the sync line last.
    socket = dokku.lib_root / "data" / "network" / "watch" / "triggers.sock"
    assert lines[:2] == [
        f"-----> Answering the engine triggers on {socket}",
        "-----> Watching the Docker engine for container changes",
    ]
    fine_line = "-----> Ensuring network configuration is in sync for fine-app"
    assert sorted(lines[2:6]) == sorted([*stale_lines, fine_line])
    assert [line for line in lines[2:6] if line in stale_lines] == stale_lines
    assert lines[6] == f"-----> {IN_SYNC}"


@needs_engine
def test_an_app_whose_files_cannot_be_read_is_one_line_and_the_others_go_on(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    broken, fine = dokku.create_app("broken-app"), dokku.create_app("fine-app")
    (broken / "CONTAINER.web.1").mkdir()
    web = docker_resources.app_container("fine-app", app_root=fine)

    running = watcher()

    assert (fine / "IP.web.1").read_text() == ip_on(web)
    warnings = [line for line in running.lines() if line.startswith(" !     ")]
    unreadable = f"Is a directory: {broken}/CONTAINER.web.1"
    assert warnings == [f" !     Unable to build the network configuration of broken-app: {unreadable}"]
    assert running.stop() == 0


def gated_refresh(folder: Path) -> tuple[str, Path, Path]:
    """A proxy refresh command that logs its start and end and runs until `release` exists:
    (the command, its log, the release file)."""
    script, log, release = folder / "slow-refresh", folder / "refreshes", folder / "release"
    script.write_text(
        f'#!/bin/sh\necho "start $1" >>{log}\n'
        f"while [ ! -e {release} ]; do sleep 0.05; done\n"
        f'echo "end $1" >>{log}\n'
    )
    script.chmod(0o755)
    return str(script), log, release


@needs_engine
def test_a_move_during_slow_refreshes_is_repaired_and_a_stop_lets_them_end_and_starts_no_more(
    dokku: DokkuHost, docker_resources: DockerResources, watcher, tmp_path: Path
):
    drifted = [f"drifted-{n}" for n in range(1, 4)]
    for app in drifted:
        root = dokku.create_app(app)
        docker_resources.app_container(app, app_root=root)
        write_ip(root, "IP.web.1", "10.255.255.1")
    moving_root = dokku.create_app("moving-app")
    moving = docker_resources.app_container("moving-app", app_root=moving_root)
    write_ip(moving_root, "IP.web.1", ip_on(moving))
    command, log, release = gated_refresh(tmp_path)
    running = RunningWatcher(dokku, tmp_path / "watch", {proxy.COMMAND_VARIABLE: command})
    try:
        # Two refreshes run (the pool's size); the third app's waits for a free worker.
        wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 2, "two refreshes running")
        started = log.read_text().splitlines()

        new_ip = move_address(moving)
        wait_for(lambda: (moving_root / "IP.web.1").read_text() == new_ip, f"IP.web.1 to become {new_ip}")
        assert log.read_text().splitlines() == started  # they still run: none ended, none started

        running.process.send_signal(signal.SIGTERM)
        waiting = "-----> Stopping once the jobs running end (at most 45 s): "
        wait_for(lambda: any(line.startswith(waiting) for line in running.lines()), "the stop")
        release.touch()
        assert running.stop() == 0
        # Both ended before the watcher did; no refresh started after the SIGTERM.
        ended = [line.replace("start", "end") for line in started]
        assert sorted(log.read_text().splitlines()) == sorted(started + ended)
        assert {line.split()[1] for line in started} < set(drifted)
        assert running.lines()[-1] == "-----> Stopped watching the Docker engine"
    finally:
        release.touch()
        running.kill()


@needs_engine
def test_a_restart_storm_makes_few_rebuilds_and_one_refresh_per_restarted_app(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    apps = [f"storm-{n}" for n in range(4)]
    containers = {}
    for app in [*apps, "calm-app"]:
        root = dokku.create_app(app)
        count = 2 if app == "calm-app" else 10
        containers[app] = [
            docker_resources.app_container(app, "web", n, app_root=root) for n in range(1, count + 1)
        ]
        for n, container in enumerate(containers[app], start=1):
            write_ip(root, f"IP.web.{n}", ip_on(container))
    running = watcher()

    # Stop all, then start all at once: the engine hands the addresses out in a new order.
    stormed = [container for app in apps for container in containers[app]]
    for action in (lambda c: c.stop(timeout=0), lambda c: c.start()):
        began = time.monotonic()
        threads = [threading.Thread(target=action, args=(container,)) for container in stormed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # How long the engine took to start them all: a slow machine spreads the storm out.
    starts_lasted = time.monotonic() - began

    expected = {app: [ip_on(container) for container in containers[app]] for app in apps}
    for app in apps:
        wait_for(
            lambda app=app: (
                [(dokku.dokku_root / app / f"IP.web.{n}").read_text() for n in range(1, 11)] == expected[app]
            ),
            f"the IP files of {app}",
        )
    # Each restarted app's refresh comes once all its containers run again, whether its
    # addresses changed or not (the proxy may have given up on them while they were refused).
    wait_for(lambda: sorted(running.calls()) == apps, f"one proxy refresh for each of {apps}")
    assert running.stop() == 0
    assert sorted(running.calls()) == apps
    # One rebuild each at start, then at most one per interval while the starts go on (never
    # one per container), and none for the app nobody touched.
    most = min(2 + int(starts_lasted / MIN_INTERVAL_SECONDS), 9)
    for app in apps:
        assert running.rebuilds(app) - 1 <= most, running.lines()
    assert running.rebuilds("calm-app") == 1


@needs_engine
def test_stopping_an_apps_containers_asks_for_no_rebuild_and_their_start_is_repaired(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    """Stopped, then started in the other order, two containers trade addresses. Their stops ask
    for no rebuild (Docker 28.5 sends a running container's `disconnect` before its `die`), so
    the app is not in motion and its start is rebuilt as soon as its events pause. (An app of its
    own: the containers of other tests' apps on the same engine are rebuilt by the watcher too.)"""
    network = docker_resources.network().name
    root = dokku.create_app("trading-app")
    dokku.command("set", "trading-app", "initial-network", network)
    containers = [
        docker_resources.app_container("trading-app", "web", n, app_root=root, network=network)
        for n in (1, 2)
    ]
    for n, container in enumerate(containers, start=1):
        write_ip(root, f"IP.web.{n}", ip_on(container, network))
    marker = marker_app(dokku, docker_resources)
    running = watcher()

    for order in (containers[::-1], containers):
        rebuilt = running.rebuilds("trading-app")
        for container in containers:
            container.stop(timeout=0)
        wait_until_handled(running, marker)
        assert running.rebuilds("trading-app") == rebuilt, running.lines()
        for container in order:
            container.start()
        expected = [ip_on(container, network) for container in containers]
        wait_for(
            lambda expected=expected: [(root / f"IP.web.{n}").read_text() for n in (1, 2)] == expected,
            f"the IP files to become {expected}",
        )
        wait_until_handled(running, marker)  # the starts' rebuilds, due sooner, are done too
    assert running.stop() == 0


@needs_engine
def test_a_deploy_under_the_watcher_never_ends_with_the_retired_containers_address(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    root = dokku.create_app("node-js-app")
    current = docker_resources.app_container("node-js-app", app_root=root)
    write_ip(root, "IP.web.1", ip_on(current))
    marker = marker_app(dokku, docker_resources)
    running = watcher()

    for _ in range(5):
        # Dokku's order: create and start the new container, write its CONTAINER file, then its IP.
        new = docker_resources.app_container("node-js-app", start=False)
        new.start()
        (root / "CONTAINER.web.1").write_text(f"{new.id}\n")
        write = dokku.trigger("network-write-ipaddr", "node-js-app", "web", "1", ip_on(new))
        assert write.returncode == 0, write.stderr
        current.stop(timeout=0)  # the retired container stops after the deploy
        current = new

    wait_until_handled(running, marker)
    assert running.stop() == 0
    assert (root / "IP.web.1").read_text() == ip_on(current)


@needs_engine
def test_run_and_unlabelled_containers_cause_no_work(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    # An app name of this process alone: other xdist workers deploy `node-js-app` containers on
    # the shared engine, whose events would rebuild it here.
    app = f"one-off-app-{OWNER}"
    root = dokku.create_app(app)
    marker = marker_app(dokku, docker_resources)
    running = watcher()
    one_off = docker_resources.client.containers.create(
        IMAGE,
        ["sleep", "3600"],
        labels={
            "com.dokku.app-name": app,
            "com.dokku.container-type": "run",
            RESOURCE_LABEL: OWNER,
        },
    )

    one_off.start()
    one_off.restart(timeout=0)
    foreign = filler(docker_resources.client, "bridge")
    foreign.restart(timeout=0)

    wait_until_handled(running, marker)
    assert running.stop() == 0
    assert running.rebuilds(app) == 0
    assert app not in running.calls()
    assert not (root / "IP.web.1").exists()


@needs_engine
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_watcher_with_status_0(dokku: DokkuHost, docker_client, watcher, signum):
    dokku.create_app("node-js-app")
    running = watcher()

    running.process.send_signal(signum)

    assert running.stop() == 0
    assert running.lines()[-1] == "-----> Stopped watching the Docker engine"


@needs_engine
@pytest.mark.root
def test_the_watcher_survives_an_engine_restart_and_repairs_what_moved(dokku: DokkuHost, tmp_path: Path):
    reason = can_run_private_engine()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs the engine-restart test: {reason}")
        pytest.skip(reason)
    root = dokku.create_app("node-js-app")
    with private_engine() as (engine, first_client):
        # `sleep` ignores SIGTERM: stopped with SIGKILL, they stop at once when the engine stops (as
        # an engine upgrade or `systemctl stop docker` stops them), not after the 10 s stop timeout.
        container = first_client.containers.create(
            IMAGE,
            ["sleep", "3600"],
            labels={"com.dokku.app-name": "node-js-app", "com.dokku.process-type": "web"},
            stop_signal="SIGKILL",
        )
        container.start()
        (root / "CONTAINER.web.1").write_text(f"{container.id}\n")
        running = RunningWatcher(dokku, tmp_path / "watch", {"DOCKER_HOST": engine.url}).started()
        try:
            assert (root / "IP.web.1").read_text() == ip_on(container)
            old = ip_on(container)

            engine.stop()
            client = engine.start()
            # Its containers stopped with the engine; the address it had now goes to another one.
            client.containers.run(IMAGE, ["sleep", "3600"], detach=True, stop_signal="SIGKILL")
            container = client.containers.get(container.id)
            container.start()
            new = ip_on(container)
            assert new != old

            wait_for(lambda: (root / "IP.web.1").read_text() == new, f"IP.web.1 to become {new}")
            running.wait_for_line("-----> Every app is in sync; following the engine's events", count=2)
            assert running.process.poll() is None
            assert any(
                line.startswith(" !     Lost the Docker engine's event stream") for line in running.lines()
            )
        finally:
            assert running.stop() == 0
