"""An engine that speaks only TLS (docs/reference.md: Environment): the triggers reach it with
DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, and so does `network:watch` run with
nothing but the environment the service's unit carries.

A private dockerd in its own network namespace listens on tcp://127.0.0.1:2376 with
certificates this test makes (openssl); the plugin runs inside that namespace (nsenter).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from network_plugin import service
from tests.docker_fixtures import IMAGE
from tests.host import DokkuHost
from tests.polling import WAIT_SECONDS, wait_for
from tests.private_engine import can_run_private_engine, private_engine

ADDRESS = "tcp://127.0.0.1:2376"
APP = "node-js-app"


def make_certificates(folder: Path) -> Path:
    """A CA, the engine's certificate for 127.0.0.1 and a client's, laid out as DOCKER_CERT_PATH wants."""
    folder.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    )
    for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}-key.pem",
            "-out",
            f"{name}.csr",
        )
        (folder / f"{name}.ext").write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.pem",
        )
    # The client's files under the names the Docker SDK and CLI look for.
    shutil.copy(folder / "client.pem", folder / "cert.pem")
    shutil.copy(folder / "client-key.pem", folder / "key.pem")
    return folder


@pytest.fixture(scope="module")
def tls_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, object]]:
    """(network namespace, certificate folder, client on the Unix socket) of a TLS-only private engine."""
    reason = can_run_private_engine() or ("" if shutil.which("openssl") else "missing openssl")
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs the TLS engine test: {reason}")
        pytest.skip(reason)
    certs = make_certificates(tmp_path_factory.mktemp("tls") / "certs")
    flags = (
        "--tlsverify",
        f"--tlscacert={certs / 'ca.pem'}",
        f"--tlscert={certs / 'server.pem'}",
        f"--tlskey={certs / 'server-key.pem'}",
        "-H",
        ADDRESS,
    )
    with private_engine(*flags) as (engine, client):
        yield engine.namespace, certs, client


def tls_variables(certs: Path) -> dict[str, str]:
    return {"DOCKER_HOST": ADDRESS, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}


# A host-wide CA bundle for requests (set on many hosts) must not replace DOCKER_CERT_PATH's CA.
OTHER_CA_BUNDLE = {
    "REQUESTS_CA_BUNDLE": "/nonexistent/ca-bundle.crt",
    "CURL_CA_BUNDLE": "/nonexistent/ca.crt",
}


def in_namespace(namespace: str, program: Path, *args: str) -> list[str]:
    return ["nsenter", f"--net=/var/run/netns/{namespace}", str(program), *args]


def run_in(namespace: str, dokku: DokkuHost, env: dict[str, str], program: Path, *args: str):
    return subprocess.run(
        in_namespace(namespace, program, *args),
        env=dokku.env | OTHER_CA_BUNDLE | env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def deployed_container(client, dokku: DokkuHost, network: str):
    """A running web container of APP on `network`, named in CONTAINER.web.1."""
    container = client.containers.create(
        IMAGE,
        ["sleep", "3600"],
        network=network,
        labels={
            "com.dokku.app-name": APP,
            "com.dokku.process-type": "web",
            "com.dokku.container-type": "deploy",
        },
        stop_signal="SIGKILL",  # `sleep` ignores SIGTERM: the engine's stop at teardown waits for none
    )
    container.start()
    (dokku.dokku_root / APP / "CONTAINER.web.1").write_text(f"{container.id}\n")
    container.reload()
    return container, container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def test_the_triggers_reach_an_engine_that_speaks_only_tls(tls_engine, dokku: DokkuHost):
    namespace, certs, client = tls_engine
    tls = tls_variables(certs)
    dokku.create_app(APP)
    commands = dokku.plugin_dir / "commands"

    created = run_in(namespace, dokku, tls, commands, "network:create", "tls-net")
    assert (created.returncode, created.stdout, created.stderr) == (
        0,
        "-----> Creating network tls-net\n",
        "",
    )
    assert client.networks.get("tls-net").attrs["Labels"] == {"com.dokku.network-name": "tls-net"}

    container, address = deployed_container(client, dokku, "tls-net")
    assert (
        run_in(namespace, dokku, tls, commands, "network:set", APP, "initial-network", "tls-net").returncode
        == 0
    )
    lookup = run_in(namespace, dokku, tls, dokku.plugin_dir / "network-get-ipaddr", APP, "web", container.id)
    assert (lookup.returncode, lookup.stdout, lookup.stderr) == (0, f"{address}\n", "")

    # Without the TLS variables the same address is refused: the ones above are what made it work.
    plain = run_in(
        namespace,
        dokku,
        {"DOCKER_HOST": ADDRESS},
        dokku.plugin_dir / "network-get-ipaddr",
        APP,
        "web",
        container.id,
    )
    assert plain.returncode != 0
    assert plain.stdout == ""
    assert len(plain.stderr.splitlines()) == 1
    assert plain.stderr.startswith(" !     ")


def unit_environment(
    monkeypatch: pytest.MonkeyPatch, dokku: DokkuHost, tls: dict[str, str]
) -> dict[str, str]:
    """The variables the service's unit would give the watcher, installed from this environment."""
    for name in service.CARRIED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in (dokku.env | tls).items():
        if name in service.CARRIED_VARIABLES:
            monkeypatch.setenv(name, value)
    unit = service.render_unit(str(dokku.plugin_dir))
    prefix = 'Environment="'
    pairs = [line[len(prefix) : -1].partition("=") for line in unit.splitlines() if line.startswith(prefix)]
    return {name: value for name, _, value in pairs}


def test_the_watcher_reaches_a_tls_engine_with_the_units_environment(
    tls_engine, dokku: DokkuHost, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    namespace, certs, client = tls_engine
    tls = tls_variables(certs)
    environment = unit_environment(monkeypatch, dokku, tls)
    assert {name: environment.get(name) for name in tls} == tls
    root = dokku.create_app(APP)
    client.networks.create("tls-watched", driver="bridge", attachable=True)
    _, address = deployed_container(client, dokku, "tls-watched")
    (dokku.lib_root / "config" / "network" / APP).mkdir(parents=True)
    (dokku.lib_root / "config" / "network" / APP / "initial-network").write_text("tls-watched")
    (root / "IP.web.1").write_text("10.9.9.9")  # what the app had before the engine moved it

    log = (tmp_path / "watch.log").open("w")
    watcher = subprocess.Popen(
        in_namespace(namespace, dokku.plugin_dir / "subcommands" / "watch", "network:watch"),
        env={"PATH": os.environ["PATH"]} | OTHER_CA_BUNDLE | environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (root / "IP.web.1").read_text() == address, f"IP.web.1 to become {address}")
        wait_for(lambda: dokku.proxy_calls() == [APP], f"one proxy refresh of {APP}")
    finally:
        watcher.send_signal(signal.SIGTERM)
        status = watcher.wait(timeout=WAIT_SECONDS)
        log.close()
    lines = (tmp_path / "watch.log").read_text().splitlines()
    assert status == 0, lines
    assert not [line for line in lines if line.startswith(" !")], lines
