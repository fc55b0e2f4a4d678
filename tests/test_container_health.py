"""Listeners that follow container health (docs/reference.md: Listeners that follow container health).

Without the engine: what the readers trust of the watcher's health files (the lock held, the
stream followed, the container the one named), the watcher's bookkeeping on fakes (debounced
writes, refreshes, the files distrusted when the stream is lost), one watcher per host. With the
engine and a real nginx: a container made unhealthy on demand (a busybox HEALTHCHECK on a file).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.models.containers import Container

from network_plugin import container_health, watcher_lock
from network_plugin.docker_engine import _health
from network_plugin.engine_events import DeployContainers, parse_event
from network_plugin.proxy import COMMAND_VARIABLE
from network_plugin.watch_schedule import HEALTH_INTERVAL_SECONDS, QUIET_SECONDS
from tests.docker_fixtures import OWNER, DockerResources, exec_in
from tests.fake_engine import container_event, deploy_labels, health_status
from tests.host import DokkuHost
from tests.nginx_proxy import NginxProxy
from tests.polling import wait_for
from tests.test_cross_app_answers import deploy

APP = "node-js-app"
SICK = "a" * 64
WELL = "b" * 64
NEW = "c" * 64


@pytest.fixture
def deployed(dokku: DokkuHost) -> Path:
    """Two web containers deployed: web.1 is SICK's, web.2 WELL's."""
    root = dokku.create_app(APP)
    for index, (ip, container_id) in enumerate((("172.17.0.5", SICK), ("172.17.0.6", WELL)), start=1):
        (root / f"IP.web.{index}").write_text(f"{ip}\n")
        (root / f"CONTAINER.web.{index}").write_text(f"{container_id}\n")
    return root


@pytest.fixture
def watching(dokku: DokkuHost) -> Iterator[None]:
    """This process holds the watcher's lock, following its stream, as a running watcher does."""
    lock = watcher_lock.hold()
    container_health.set_following(True)
    yield
    lock.release()


def listeners(dokku: DokkuHost) -> tuple[int, str, str]:
    result = dokku.trigger("network-get-listeners", APP, "web")
    return result.returncode, result.stdout, result.stderr


def left_out(dokku: DokkuHost) -> str:
    result = dokku.command("report", APP, "--network-web-listeners-left-out")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


@pytest.mark.usefixtures("deployed", "watching")
def test_an_unhealthy_container_is_left_out_of_the_listeners_and_the_report_says_why(dokku):
    assert container_health.write(APP, frozenset({SICK}))

    assert listeners(dokku) == (0, "172.17.0.6:5000\n", "")
    assert left_out(dokku) == "172.17.0.5:5000 (web.1 unhealthy)\n"
    report = dokku.command("report", APP, "--network-web-listeners")
    assert report.stdout == "172.17.0.6:5000\n"


@pytest.mark.usefixtures("deployed", "watching")
def test_every_container_unhealthy_lists_them_all_with_one_warning(dokku):
    container_health.write(APP, frozenset({SICK, WELL}))

    assert listeners(dokku) == (
        0,
        "172.17.0.5:5000 172.17.0.6:5000\n",
        f" !     Every web container of {APP} is unhealthy: all are listed, else none would be\n",
    )
    assert left_out(dokku) == (
        f"none: Every web container of {APP} is unhealthy: all are listed, else none would be\n"
    )


@pytest.mark.usefixtures("watching")
def test_a_container_that_replaced_an_unhealthy_one_is_listed(dokku, deployed):
    container_health.write(APP, frozenset({SICK}))
    (deployed / "CONTAINER.web.1").write_text(f"{NEW}\n")  # a deploy's new web.1

    assert listeners(dokku) == (0, "172.17.0.5:5000 172.17.0.6:5000\n", "")
    assert left_out(dokku) == "\n"


@pytest.mark.usefixtures("deployed")
def test_nothing_a_watcher_wrote_hides_a_container_once_it_is_gone_or_not_following(dokku):
    lock = watcher_lock.hold()
    container_health.set_following(True)
    container_health.write(APP, frozenset({SICK}))
    assert listeners(dokku)[1] == "172.17.0.6:5000\n"

    container_health.set_following(False)  # its stream lost
    assert listeners(dokku) == (0, "172.17.0.5:5000 172.17.0.6:5000\n", "")

    container_health.set_following(True)
    lock.release()  # the watcher's process gone, however it ended: the kernel drops its lock
    assert listeners(dokku) == (0, "172.17.0.5:5000 172.17.0.6:5000\n", "")


def test_a_killed_watchers_files_hide_nothing(dokku, deployed):
    """The lock held by another process, killed with SIGKILL: its files stay, and count for nothing."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from network_plugin import container_health as h, watcher_lock as w;"
            "l = w.hold(); h.set_following(True); h.write(sys.argv[1], frozenset({sys.argv[2]}));"
            "print('held', flush=True); time.sleep(600)",
            APP,
            SICK,
        ],
        cwd=Path(__file__).resolve().parent.parent,
        env=dokku.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert listeners(dokku)[1] == "172.17.0.6:5000\n"
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert Path(container_health.health_file(APP)).exists()
        assert listeners(dokku) == (0, "172.17.0.5:5000 172.17.0.6:5000\n", "")
    finally:
        holder.kill()
        holder.wait()


def test_a_second_watcher_refuses_to_start_naming_the_first(dokku):
    lock = watcher_lock.hold()
    try:
        second = dokku.command("watch")
    finally:
        lock.release()

    assert (second.returncode, second.stdout) == (1, "")
    assert second.stderr == (
        f" !     Another network:watch is running on this host (pid {os.getpid()}): one watcher per host;"
        " stop it first (systemctl stop dokku-network-watch, when it is the service)\n"
    )


# --- the watcher's bookkeeping, on fakes ----------------------------------------------------


def test_the_listing_writes_every_apps_file_then_the_readers_trust_them(loop):
    under_test = loop(["app-a", "app-b"])
    under_test.engine.unhealthy.add("app-a")
    under_test.health.files["gone-app"] = frozenset({"x"})  # an earlier watcher's, of no container now
    under_test.start()
    under_test.wait_until(lambda: under_test.health.following, "the readers told to trust the files")

    assert under_test.health.files == {"app-a": frozenset({"app-a-web-1"})}
    # Distrusted first (an earlier watcher's files), trusted once this one wrote them all.
    assert under_test.health.said == [False, True]
    # app-a's listeners changed (its file did): one refresh of its proxy; app-b's did not.
    under_test.wait_until(lambda: under_test.jobs.refreshes.count("app-a") == 1, "app-a refreshed")
    assert under_test.stop() == 0
    assert under_test.jobs.refreshes.count("app-b") == 0
    assert under_test.health.said[-1] is False  # stopped: nothing it wrote is trusted


def test_a_flapping_container_costs_one_write_and_refresh_per_interval(loop):
    under_test = loop(["app-a"])
    under_test.start()
    under_test.wait_until(lambda: under_test.health.following, "following")
    stream = under_test.engine.stream()
    health = under_test.health

    stream.put(health_status("app-a", "unhealthy"))
    under_test.wait_until(lambda: "app-a" in under_test.watcher.schedule.health.pending, "the event")
    under_test.advance(QUIET_SECONDS)
    under_test.wait_until(lambda: health.files.get("app-a") == frozenset({"app-a-web-1"}), "written")
    under_test.wait_until(lambda: under_test.jobs.refreshes == ["app-a"], "refreshed")
    # Ten flips within the interval: nothing is written until it has passed...
    for status in ("healthy", "unhealthy") * 5:
        stream.put(health_status("app-a", status))
    stream.put(health_status("app-a", "healthy"))
    under_test.wait_until(lambda: "app-a" in under_test.watcher.schedule.health.pending, "the flips")
    # The first write was at this clock's moment: the next one may come an interval after it.
    under_test.advance(HEALTH_INTERVAL_SECONDS - 0.1)
    writes = len(health.writes)
    assert writes == 1, health.writes
    # ...then one write of the last state, and one refresh.
    under_test.advance(0.2)
    under_test.wait_until(lambda: "app-a" not in health.files, "the last state written")
    under_test.wait_until(lambda: under_test.jobs.refreshes == ["app-a", "app-a"], "refreshed again")
    assert len(health.writes) == writes + 1
    assert under_test.stop() == 0


def test_a_lost_stream_distrusts_the_files_at_once_until_a_new_listing_rewrote_them(loop):
    under_test = loop(["app-a"])
    under_test.engine.unhealthy.add("app-a")
    under_test.start()
    under_test.wait_until(lambda: under_test.health.following, "following")

    under_test.engine.unhealthy.clear()  # healthy again while no one listened
    under_test.engine.stream().end(ConnectionResetError("Connection reset by peer"))
    under_test.wait_until(lambda: len(under_test.engine.streams) == 2, "a new connect")
    under_test.wait_until(lambda: under_test.health.said.count(True) == 2, "following again")

    assert under_test.health.said == [False, True, False, True]
    assert under_test.health.files == {}  # the new listing's truth, written before it was trusted
    assert under_test.stop() == 0


def test_the_events_track_an_apps_unhealthy_containers_and_forget_them_at_a_start():
    containers = DeployContainers()
    sick = parse_event(container_event("health_status: unhealthy", deploy_labels("app-a"), SICK))
    again = parse_event(container_event("health_status: unhealthy", deploy_labels("app-a"), SICK))
    restart = parse_event(container_event("restart", deploy_labels("app-a"), SICK))
    foreign = parse_event(container_event("health_status: unhealthy", {"com.dokku.app-name": "../x"}, WELL))

    assert containers.health_changed(sick) == "app-a"
    assert containers.health_changed(again) is None  # no change
    assert containers.health_changed(foreign) is None  # no app's: never a path
    assert containers.unhealthy_by_app() == {"app-a": frozenset({SICK})}
    assert containers.health_changed(restart) == "app-a"  # `starting` again: healthy to the readers
    assert containers.unhealthy_by_app() == {}


@pytest.mark.parametrize(
    ("summary", "health"),
    [
        ({"Status": "Up 2 minutes (unhealthy)"}, "unhealthy"),
        ({"Status": "Up 3 seconds (health: starting)"}, "starting"),
        ({"Status": "Up 2 minutes (healthy)"}, "healthy"),
        ({"Status": "Up 2 minutes (Paused)"}, ""),
        ({"Status": "Up 2 minutes"}, ""),
        ({"Status": "Exited (1) 3 seconds ago"}, ""),
        ({"Status": "Up 2 minutes", "Health": {"Status": "unhealthy", "FailingStreak": 3}}, "unhealthy"),
    ],
)
def test_a_listed_containers_health_is_read_from_its_summary(summary, health):
    assert _health(summary) == health


# --- on the engine, behind a real nginx ------------------------------------------------------

# Healthy while /healthy exists, checked every 0.3 s; one failure makes it unhealthy.
HEALTHCHECK = {
    "test": ["CMD-SHELL", "test -f /healthy"],
    "interval": 300_000_000,
    "timeout": 5_000_000_000,
    "retries": 1,
}
REQUESTS = 20  # round robin over two upstreams: each answers several of them


def serve_while_healthy(app: str, index: int) -> list[str]:
    """busybox httpd on Dokku's port 5000, answering `<app> web.<index>`, healthy from the start."""
    script = 'touch /healthy && mkdir -p /www && echo "$0" >/www/index.html && exec httpd -f -p 5000 -h /www'
    return ["sh", "-c", script, f"{app} web.{index}"]


def health_app() -> str:
    return f"hc{OWNER}"  # this xdist worker's alone: no other watcher moves it


def health_of(container: Container) -> str:
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status", "")


def deploy_with_health(dokku: DokkuHost, docker_resources: DockerResources, app: str) -> list[Container]:
    containers = [
        deploy(
            dokku,
            docker_resources,
            app,
            index,
            command=serve_while_healthy(app, index),
            healthcheck=HEALTHCHECK,
        )
        for index in (1, 2)
    ]
    wait_for(lambda: all(health_of(container) == "healthy" for container in containers), "both healthy")
    return containers


def ip_of(container: Container) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]


def answered(nginx_proxy: NginxProxy, app: str) -> list[str]:
    """Who answered each of REQUESTS requests for the app ('' for a failed one)."""
    answers = []
    for _ in range(REQUESTS):
        status, body = nginx_proxy.get(app)
        answers.append(body.strip() if status == 200 else "")
    return answers


@pytest.mark.usefixtures("test_image")
def test_requests_leave_an_unhealthy_container_come_back_when_healthy_and_never_find_none(
    dokku: DokkuHost, docker_resources: DockerResources, nginx_proxy: NginxProxy, watcher
):
    app = health_app()
    dokku.create_app(app)
    first, second = deploy_with_health(dokku, docker_resources, app)
    nginx_proxy.refresh(app)
    watcher({COMMAND_VARIABLE: nginx_proxy.refresh_command})
    both = {f"{app} web.1", f"{app} web.2"}
    assert set(answered(nginx_proxy, app)) == both

    exec_in(first, ["rm", "/healthy"])
    turned = time.monotonic()
    wait_for(lambda: answered(nginx_proxy, app) == [f"{app} web.2"] * REQUESTS, "web.1 left out")
    left_out_after = time.monotonic() - turned

    result = dokku.trigger("network-get-listeners", app, "web")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{ip_of(second)}:5000\n", "")
    report = dokku.command("report", app, "--network-web-listeners-left-out")
    assert report.stdout == f"{ip_of(first)}:5000 (web.1 unhealthy)\n"

    exec_in(first, ["touch", "/healthy"])
    turned = time.monotonic()
    wait_for(lambda: set(answered(nginx_proxy, app)) == both, "web.1 answering again")
    back_after = time.monotonic() - turned

    exec_in(first, ["rm", "/healthy"])
    exec_in(second, ["rm", "/healthy"])
    wait_for(lambda: {health_of(first), health_of(second)} == {"unhealthy"}, "both unhealthy")
    warning = f" !     Every web container of {app} is unhealthy: all are listed, else none would be\n"
    wait_for(lambda: dokku.trigger("network-get-listeners", app, "web").stderr == warning, "the watcher told")
    result = dokku.trigger("network-get-listeners", app, "web")
    assert result.stdout == f"{ip_of(first)}:5000 {ip_of(second)}:5000\n"
    # The app keeps answering, from both: an empty upstream would lose every request.
    wait_for(lambda: set(answered(nginx_proxy, app)) == both, "both answering, unhealthy")
    print(f"left out after {left_out_after:.2f} s, back after {back_after:.2f} s")


@pytest.mark.usefixtures("test_image")
def test_a_stopped_or_killed_watcher_or_a_new_container_hides_nothing(
    dokku: DokkuHost, docker_resources: DockerResources, watcher
):
    app = health_app()
    dokku.create_app(app)
    first, second = deploy_with_health(dokku, docker_resources, app)
    both = f"{ip_of(first)}:5000 {ip_of(second)}:5000\n"
    exec_in(first, ["rm", "/healthy"])
    wait_for(lambda: health_of(first) == "unhealthy", "web.1 unhealthy")

    def listed() -> str:
        result = dokku.trigger("network-get-listeners", app, "web")
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        return result.stdout

    # A watcher started while it is unhealthy reads it from its listing.
    running = watcher()
    wait_for(lambda: listed() == f"{ip_of(second)}:5000\n", "web.1 left out")
    assert running.stop() == 0
    assert listed() == both  # at once: the stopped watcher's file counts for nothing

    running = watcher()
    wait_for(lambda: listed() == f"{ip_of(second)}:5000\n", "web.1 left out again")
    running.kill()  # SIGKILL: no time to say anything
    assert listed() == both

    running = watcher()
    wait_for(lambda: listed() == f"{ip_of(second)}:5000\n", "web.1 left out by a third watcher")
    # A deploy replaces web.1 while the old one is unhealthy: the new one is listed at once.
    replacement = deploy(
        dokku, docker_resources, app, 1, command=serve_while_healthy(app, 1), healthcheck=HEALTHCHECK
    )
    assert listed() == f"{ip_of(replacement)}:5000 {ip_of(second)}:5000\n"
    assert running.stop() == 0
