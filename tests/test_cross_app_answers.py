"""One app's visitors answered by another app's containers (dokku/dokku#8313), behind a real nginx.

On Dokku's default bridge every app shares one subnet, and the engine hands out its lowest free
address. Two apps of two containers each run behind nginx (tests/nginx_proxy.py), deployed the
way Dokku's scheduler deploys them, with `network:watch` refreshing the proxy as addresses move.
All four containers stop; one app's start again first and take the addresses the other app's
upstream still names; that other app's start 1.5 s later. Until its refresh, nginx sends its
visitors to the first app's containers. With `app-network`, each app on a subnet of its own, no
address can change hands between apps.

The rig's own tests need no engine: a static web listener sends nginx to a local server.
"""

from __future__ import annotations

import http.client
import http.server
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from docker.models.containers import Container

from network_plugin.proxy import COMMAND_VARIABLE
from tests.docker_fixtures import OWNER, DockerResources
from tests.host import DokkuHost
from tests.nginx_proxy import NginxProxy
from tests.polling import wait_for
from tests.test_dokku_callers import (
    SCHEDULER_DEPLOY_CONTAINER,
    SCHEDULER_DOCKER_ARGS,
    SCHEDULER_START_CONTAINER,
    replay,
)
from tests.watcher import RunningWatcher

# Names of this process alone: other xdist workers' containers of an app named alike would move
# this watcher too; their own networks are swept by the pid in them (docker_fixtures.app_name).
APPS = (f"ant{OWNER}-first", f"ant{OWNER}-second")
CONTAINERS = 2
# The measured case: the other app's containers start 1.5 s after the first app's.
LATER_SECONDS = 1.5
# Answers in a row from an app's own containers (both upstreams, several times): it answers again.
STREAK = 8
# A request stuck on an address nobody holds is given up for a new one (nginx tries the next upstream).
REQUEST_SECONDS = 1.0
# Between two requests of a loop: enough answers to count, CPU left for the engine and the watcher.
PACE_SECONDS = 0.005
# A neighbour's container may take a freed address first: the reshuffle is tried again.
RESHUFFLES = 3


def serve_identity(app: str, index: int) -> list[str]:
    """busybox httpd on Dokku's port 5000, answering `<app> web.<index>` to every request."""
    script = 'mkdir -p /www && echo "$0" >/www/index.html && exec httpd -f -p 5000 -h /www'
    return ["sh", "-c", script, f"{app} web.{index}"]


def deploy(
    dokku: DokkuHost,
    docker_resources: DockerResources,
    app: str,
    index: int,
    *,
    command: list[str] | None = None,
    healthcheck: dict | None = None,
) -> Container:
    """One web container, as scheduler-docker-local deploys it through the installed triggers
    (serving its identity, unless `command`)."""
    args = replay(dokku, SCHEDULER_DOCKER_ARGS, APP=app, INDEX=str(index))
    assert args.returncode == 0, args.stderr
    networks = [word.partition("=")[2] for word in args.stdout.split() if word.startswith("--network=")]
    container = docker_resources.app_container(
        app,
        "web",
        index,
        network=networks[-1] if networks else None,
        start=False,
        command=command or serve_identity(app, index),
        healthcheck=healthcheck,
    )
    deployed = replay(
        dokku,
        SCHEDULER_START_CONTAINER + SCHEDULER_DEPLOY_CONTAINER,
        APP=app,
        INDEX=str(index),
        CID=container.id,
    )
    assert deployed.returncode == 0, deployed.stderr
    return container


def addresses(containers: list[Container]) -> list[str]:
    found = []
    for container in containers:
        container.reload()
        found += [network["IPAddress"] for network in container.attrs["NetworkSettings"]["Networks"].values()]
    return found


@dataclass
class Visitor:
    """A loop of requests for one app through nginx, each answer kept with its moment."""

    proxy: NginxProxy
    app: str
    answers: list[tuple[float, str]] = field(default_factory=list)  # (moment, app that answered or '')
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, body = self.proxy.get(self.app, REQUEST_SECONDS)
            except (OSError, http.client.HTTPException):
                status, body = 0, ""
            self.answers.append((time.monotonic(), body.split()[0] if status == 200 and body else ""))
            self.stop.wait(PACE_SECONDS)

    def since(self, moment: float) -> list[str]:
        return [who for at, who in list(self.answers) if at >= moment]

    def answering_since(self, moment: float) -> float | None:
        """When the app's final run of answers from its own containers began, once it is STREAK
        long and began after `moment`."""
        # Only answers after `moment`: a visitor's first answer may come before the moment is
        # taken, and a run begun before it would then never count.
        answers = [answer for answer in list(self.answers) if answer[0] >= moment]
        run = 0
        while run < len(answers) and answers[-1 - run][1] == self.app:
            run += 1
        if run < STREAK:
            return None
        return answers[-run][0]


@dataclass
class Reshuffle:
    """What one stop and start of every container showed."""

    early: str  # the app whose containers started first
    late: str  # the one whose containers started LATER_SECONDS after
    taken: list[str]  # addresses the late app's containers had, held by the early app's after
    late_answers: list[str]  # who answered the late app's requests, from the stop on
    answered_again: dict[str, float]  # seconds from each app's start to its answering again

    def cross_answers(self) -> int:
        return self.late_answers.count(self.early)


def refreshes(running: RunningWatcher) -> dict[str, int]:
    lines = running.lines()
    return {app: lines.count(f"-----> Refreshed the proxy of {app}") for app in APPS}


def address_order(ip: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ip.split("."))


def reshuffle_once(containers: dict[str, list[Container]], visitors: dict[str, Visitor]) -> Reshuffle:
    # The engine hands out its lowest free address: the app holding the lowest starts last, so
    # the app starting first gets its addresses.
    late = min(APPS, key=lambda app: min(map(address_order, addresses(containers[app]))))
    early = APPS[1 - APPS.index(late)]
    before = addresses(containers[late])
    stopped = time.monotonic()
    everyone = [container for app in APPS for container in containers[app]]
    with ThreadPoolExecutor(len(everyone)) as pool:  # all at once, as a reboot stops them
        list(pool.map(lambda container: container.stop(timeout=0), everyone))
    started = {early: time.monotonic()}
    for container in containers[early]:
        container.start()
    taken = [ip for ip in addresses(containers[early]) if ip in before]
    threading.Event().wait(LATER_SECONDS)  # the scenario's pause, not a wait for anything
    started[late] = time.monotonic()
    for container in containers[late]:
        container.start()

    def answering() -> dict[str, float] | None:
        again = {}
        for app in APPS:
            moment = visitors[app].answering_since(started[app])
            if moment is None:
                return None
            again[app] = moment - started[app]
        return again

    answered_again = wait_for(
        answering, f"both apps answering again: {[v.since(stopped)[-20:] for v in visitors.values()]}"
    )
    return Reshuffle(early, late, taken, visitors[late].since(stopped), answered_again)  # type: ignore[arg-type]


def reshuffle(
    dokku: DokkuHost,
    docker_resources: DockerResources,
    nginx_proxy: NginxProxy,
    watcher: Callable[..., RunningWatcher],
    *,
    app_network: bool,
) -> Reshuffle:
    """Deploy both apps behind nginx, start the watcher with nginx's refresh, let visitors of both
    apps ask all along, and stop and start every container."""
    containers = {}
    for app in APPS:
        dokku.create_app(app)
        if app_network:
            result = dokku.command("set", app, "app-network", "true")
            assert result.returncode == 0, result.stderr
        containers[app] = [deploy(dokku, docker_resources, app, index) for index in range(1, CONTAINERS + 1)]
        nginx_proxy.refresh(app)  # the proxy build that ends a deploy
    running = watcher({COMMAND_VARIABLE: nginx_proxy.refresh_command})
    visitors = {app: Visitor(nginx_proxy, app) for app in APPS}
    threads = [threading.Thread(target=visitor.run) for visitor in visitors.values()]
    for thread in threads:
        thread.start()
    try:
        begun = time.monotonic()
        wait_for(
            lambda: all(v.answering_since(begun) is not None for v in visitors.values()),
            "both apps answering",
        )
        for _ in range(RESHUFFLES):
            before = refreshes(running)
            shown = reshuffle_once(containers, visitors)
            if shown.taken or app_network:
                break
        # The watcher refreshes each app whose containers ran again (nginx may have marked them
        # down), addresses changed or not.
        wait_for(
            lambda: all(refreshes(running)[app] > before[app] for app in APPS), "each app's proxy refresh"
        )
    finally:
        for visitor in visitors.values():
            visitor.stop.set()
        for thread in threads:
            thread.join()
    assert running.stop() == 0
    return shown


# --- the rig itself, without the engine: static web listeners stand in for containers --------


@contextmanager
def answering_server(body: str) -> Iterator[str]:
    """A loopback HTTP server answering `body` to every GET: its `ip:port`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test's output is not its log

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_refresh(dokku: DokkuHost, nginx_proxy: NginxProxy, app: str) -> subprocess.CompletedProcess[str]:
    """The refresh as network:watch runs it: the command, then the app, in the host's environment."""
    return dokku.run(Path(nginx_proxy.refresh_command), app)


def test_the_refresh_command_renders_the_listeners_and_returns_once_nginx_serves_them(
    dokku: DokkuHost, nginx_proxy: NginxProxy
):
    app = APPS[0]
    dokku.create_app(app)
    with answering_server("before") as before, answering_server("after") as after:
        assert dokku.command("set", app, "static-web-listener", before).returncode == 0
        nginx_proxy.refresh(app)
        assert nginx_proxy.get(app) == (200, "before")
        assert dokku.command("set", app, "static-web-listener", after).returncode == 0

        refreshed = run_refresh(dokku, nginx_proxy, app)

        assert (refreshed.returncode, refreshed.stdout, refreshed.stderr) == (0, "", "")
        # Live when the command returns: no request after it reaches the old configuration.
        assert [nginx_proxy.get(app) for _ in range(20)] == [(200, "after")] * 20
        assert nginx_proxy.get("not-an-app-here")[0] == 404


def test_a_refresh_with_nginx_stopped_is_one_line_and_a_failure(dokku: DokkuHost, nginx_proxy: NginxProxy):
    app = APPS[0]
    dokku.create_app(app)
    nginx_proxy.stop()

    refreshed = run_refresh(dokku, nginx_proxy, app)

    assert (refreshed.returncode, refreshed.stdout) == (1, "")
    assert refreshed.stderr.startswith(f" !     Unable to refresh nginx for {app}: nginx is not running in ")
    assert len(refreshed.stderr.splitlines()) == 1


# --- dokku/dokku#8313 -----------------------------------------------------------------------


@pytest.mark.usefixtures("test_image")
def test_on_the_default_bridge_a_stop_and_start_answers_one_apps_visitors_from_another_apps_containers(
    dokku: DokkuHost, docker_resources: DockerResources, nginx_proxy: NginxProxy, watcher
):
    shown = reshuffle(dokku, docker_resources, nginx_proxy, watcher, app_network=False)

    # Only an address changing hands between the apps can cross them: the engine gave one.
    assert shown.taken, "the early app's containers got none of the late app's addresses"
    assert shown.cross_answers() > 0, shown.late_answers
    # The watcher refreshes an app's proxy once all its containers run, rebuilding an app in
    # motion at most every 2 s: a few seconds, whatever the machine's load.
    assert max(shown.answered_again.values()) < 10.0, shown.answered_again


@pytest.mark.usefixtures("test_image")
def test_with_app_network_no_visitor_is_answered_by_another_apps_containers(
    dokku: DokkuHost, docker_resources: DockerResources, nginx_proxy: NginxProxy, watcher
):
    shown = reshuffle(dokku, docker_resources, nginx_proxy, watcher, app_network=True)

    assert shown.taken == []
    assert shown.cross_answers() == 0, shown.late_answers
    # nginx leaves out for 10 s a server that refused a connection (the stop), until a reload:
    # with the same addresses back on the app's own subnet, the watcher refreshes each app all
    # the same once its containers run again (`reshuffle` waits for it), and nobody waits those
    # 10 s out: 1.7-2.3 s measured
    # on an idle machine, 4.4 s under a full suite and two other engineers' tests; without the
    # refresh the same run took 7.9-10.2 s, which the bound stays under.
    assert max(shown.answered_again.values()) < 7.0, shown.answered_again
