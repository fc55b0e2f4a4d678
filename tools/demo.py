"""The plugin's main job on the local engine, end to end, in a throw-away Dokku-like root.

Installs the plugin the Dokku way, creates a network, sets the app's attach and tld
properties, "deploys" two web containers through the plugin's own triggers
(post-container-create, core-post-deploy), rebuilds the IP files, shows the report and the
network info, and resolves `<app>.web.<tld>` from a peer container through Docker's DNS.
Everything it creates is removed at the end, whatever happens. Exit status 0 when every
step did what it should.

Run by the system's `python3`, it installs the plugin into a temporary folder (its own
environment, from its lock: nothing else), then runs the steps with that environment's
interpreter (`demo.py <folder>`): the Docker SDK it drives the engine with is the plugin's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import os

from network_plugin.error_handler import describe, unreachable
from tests.host import ENVIRONMENT_FROM, DokkuHost, clean_env, install_plugin

TYPE_CHECKING = False
if TYPE_CHECKING:
    import docker

    from tests.docker_fixtures import DockerResources

APP = "node-js-app"
TLD = "svc.demo"
REFRESH = "true"


class DemoFailed(Exception):
    pass


def show(title: str, result: subprocess.CompletedProcess[str], expected_exit: int = 0) -> str:
    """Print a step the way an operator would see it in a terminal; stop on a surprise."""
    print(f"\n$ {title}")
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    if result.returncode != expected_exit:
        raise DemoFailed(f"`{title}` exited {result.returncode}, expected {expected_exit}")
    return result.stdout


def silent(what: str) -> None:
    """What a step that printed nothing did, as the engine shows it."""
    print(f"       (prints nothing: {what})")


def deploy_container(dokku: DokkuHost, resources: DockerResources, index: int, network: str) -> str:
    """What Dokku's scheduler does for one web container: create, trigger, start, record."""
    container = resources.app_container(
        APP, "web", index, app_root=dokku.dokku_root / APP, hostname=f"web{index}", start=False
    )
    show(
        f"plugn trigger post-container-create app {container.short_id} {APP} deploy web",
        dokku.trigger("post-container-create", "app", container.id, APP, "deploy", "web"),
    )
    endpoint = resources.client.api.inspect_container(container.id)["NetworkSettings"]["Networks"][network]
    silent(
        f"connected {container.short_id} to {network}, aliases {', '.join(sorted(endpoint['Aliases'] or []))}"
    )
    container.start()
    return container.id


def ip_on(resources: DockerResources, container_id: str, network: str) -> str:
    """The container's address on `network`, as the engine reports it."""
    endpoints = resources.client.api.inspect_container(container_id)["NetworkSettings"]["Networks"]
    return endpoints[network]["IPAddress"]


def run_demo(dokku: DokkuHost, resources: DockerResources, network: str) -> None:
    dokku.create_app(APP)
    show(f"dokku network:create {network}", dokku.command("create", network))
    show(
        f"dokku network:set {APP} attach-post-create {network}",
        dokku.command("set", APP, "attach-post-create", network),
    )
    show(f"dokku network:set {APP} tld {TLD}", dokku.command("set", APP, "tld", TLD))
    ids = [deploy_container(dokku, resources, index, network) for index in (1, 2)]
    show(f"plugn trigger core-post-deploy {APP}", dokku.trigger("core-post-deploy", APP))
    silent("attach-post-deploy is unset, so there was nothing to attach once the containers ran")
    show(f"dokku network:rebuild {APP}", dokku.command("rebuild", APP))
    print(f"       (no proxy here: the demo's refresh command is `{REFRESH}`, which does nothing)")
    show(f"dokku network:report {APP}", dokku.command("report", APP))
    show(f"dokku network:info {network}", dokku.command("info", network))
    listeners = show(
        f"plugn trigger network-get-listeners {APP} web", dokku.trigger("network-get-listeners", APP, "web")
    )

    # The IP files must say what the engine says (on the bridge, the container's first network).
    engine_ips = [ip_on(resources, container_id, "bridge") for container_id in ids]
    if listeners.split() != [f"{ip}:5000" for ip in engine_ips]:
        raise DemoFailed(f"listeners {listeners.split()} do not match the engine's IPs {engine_ips}")

    peer = resources.app_container("peer-app", network=network)
    name = f"{APP}.web.{TLD}"
    from tests.docker_fixtures import exec_in, sweep

    code, output = exec_in(peer, ["nslookup", "-type=a", name, "127.0.0.11"])
    print(f"\n$ docker exec {peer.name} nslookup -type=a {name}\n{output}", end="")
    network_ips = {ip_on(resources, container_id, network) for container_id in ids}
    if code != 0 or not all(ip in output for ip in network_ips):
        raise DemoFailed(f"{name} did not resolve to {sorted(network_ips)} on {network}")

    sweep(resources.client)
    show(f"dokku network:destroy {network} --force", dokku.command("destroy", network, "--force"))


def host(base: Path) -> DokkuHost:
    """The throw-away Dokku root under `base`, the plugin installed in `base/plugins`."""
    env = clean_env() | {
        "DOKKU_ROOT": str(base / "home"),
        "DOKKU_LIB_ROOT": str(base / "lib"),
        "PLUGIN_PATH": str(base / "plugins"),
        # No Dokku (and no proxy) here: a rebuild that changed files refreshes nothing.
        "DOKKU_NETWORK_PROXY_REFRESH": REFRESH,
    }
    plugin_dir = base / "plugins" / "enabled" / "network"
    return DokkuHost(plugin_dir=plugin_dir, dokku_root=base / "home", lib_root=base / "lib", env=env)


def main(argv: list[str]) -> int:
    """Install, then the demo in the plugin's environment; given the folder, the demo itself. A
    failure of any kind is one ` !     ` line and exit 1, never a traceback."""
    if len(argv) > 1:
        return demonstrate_in(Path(argv[1]))
    with tempfile.TemporaryDirectory(prefix="dokku-network-demo-") as folder:
        base = Path(folder)
        dokku = host(base)
        print(f"-----> Installing the plugin into {base}/plugins, with its own environment")
        (base / "home").mkdir()
        environment_from = os.environ.get(ENVIRONMENT_FROM)  # the tests' (nothing is built)
        try:
            install_plugin(base / "plugins", dokku.env, Path(environment_from) if environment_from else None)
        except (RuntimeError, OSError) as error:
            print(f" !     Unable to install the plugin: {describe(error)}", file=sys.stderr)
            return 1
        python = dokku.plugin_dir / ".venv" / "bin" / "python3"
        return subprocess.run([str(python), "-E", __file__, folder], check=False).returncode


def demonstrate_in(base: Path) -> int:
    import docker.errors

    from tests.docker_fixtures import engine_client

    try:
        client = engine_client()
    except docker.errors.DockerException as error:
        print(f" !     {unreachable(error)}", file=sys.stderr)
        return 1
    try:
        return demonstrate(client, host(base))
    except Exception as error:  # noqa: BLE001 - the demo's one error path: what failed, in one line
        print(f" !     Demo failed: {describe(error)}", file=sys.stderr)
        return 1


def demonstrate(client: docker.DockerClient, dokku: DokkuHost) -> int:
    from tests.docker_fixtures import DockerResources, build_test_image, sweep

    build_test_image(client)
    resources = DockerResources(client)
    network = f"demo-net-{uuid.uuid4().hex[:6]}"
    try:
        run_demo(dokku, resources, network)
    except DemoFailed as failure:
        print(f" !     Demo failed: {failure}", file=sys.stderr)
        return 1
    finally:
        sweep(client)
        for leftover in client.networks.list(names=[network]):
            leftover.remove()
    print("\n-----> Demo done: every step did what it should; everything it created is removed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
