"""Service links on a user-defined network, on the real engine (docs/reference.md: Attaching
containers to networks): `post-container-create` connects each container an app's container
links to (`--link <container>:<alias>`, as Dokku's service plugins add it) to the network the
app's container is created on, with the link's alias, before the app's container starts."""

from __future__ import annotations

import pytest

from network_plugin import docker_engine, properties
from network_plugin.main import main
from tests.docker_fixtures import SERVICE_PAGE, SERVICE_PORT, DockerResources, exec_in
from tests.host import DokkuHost
from tests.polling import wait_for

pytestmark = pytest.mark.usefixtures("test_image")

APP = "node-js-app"
ALIAS = "dokku-postgres-db"
UNREACHABLE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def endpoints(resources: DockerResources, container_id: str) -> dict[str, dict]:
    return resources.client.api.inspect_container(container_id)["NetworkSettings"]["Networks"]


def created(dokku: DokkuHost, container_id: str):
    """`post-container-create` as the scheduler calls it for the app's container."""
    return dokku.trigger("post-container-create", "app", container_id, APP, "deploy", "web")


def lookup(resources: DockerResources, container_id: str, name: str) -> tuple[int, str]:
    """`nslookup <name>` through Docker's DNS, from inside the running container."""
    return exec_in(resources.client.containers.get(container_id), ["nslookup", name, "127.0.0.11"])


def fetched(resources: DockerResources, container_id: str, url: str) -> str:
    """The page at `url` fetched from inside the container, once the service answers."""

    def fetch() -> str:
        code, output = exec_in(resources.client.containers.get(container_id), ["wget", "-qO-", url])
        return output if code == 0 else ""

    return wait_for(fetch, f"{url} to answer")  # type: ignore[return-value]


def app_naming_a_network(
    dokku: DokkuHost, resources: DockerResources, key: str = properties.INITIAL_NETWORK
) -> str:
    """The app, its `key` naming a network made for the test; the network's name."""
    dokku.create_app(APP)
    network = resources.network()
    assert dokku.command("set", APP, key, network.name).returncode == 0
    return network.name


@pytest.fixture
def linked(dokku: DokkuHost, docker_resources: DockerResources):
    """An app whose initial-network is a network of its own, a service on the default bridge,
    and the app's container created on that network with a link to the service."""
    network = app_naming_a_network(dokku, docker_resources)
    service = docker_resources.service()
    container_id = docker_resources.created_by_scheduler(APP, network, [f"{service.name}:{ALIAS}"])
    return network, service, container_id


def test_a_linked_service_resolves_and_answers_on_the_apps_initial_network(
    dokku: DokkuHost, docker_resources: DockerResources, linked
):
    network, service, container_id = linked
    # What Docker gives without the plugin (20.10 and 28.5): the link's alias is unknown on the
    # network. Docker's DNS passes the name on, and the upstream says NXDOMAIN, or SERVFAIL where
    # there is none (the namespace of tools/sid-engine).
    bystander = docker_resources.created_by_scheduler(APP, network, [f"{service.name}:{ALIAS}"])
    docker_resources.client.api.start(bystander)
    code, output = lookup(docker_resources, bystander, ALIAS)
    assert code != 0
    assert f"can't find {ALIAS}" in output

    result = created(dokku, container_id)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert ALIAS in endpoints(docker_resources, service.id)[network]["Aliases"]
    docker_resources.client.api.start(container_id)
    code, output = lookup(docker_resources, container_id, ALIAS)
    assert code == 0, output
    assert endpoints(docker_resources, service.id)[network]["IPAddress"] in output
    page = fetched(docker_resources, container_id, f"http://{ALIAS}:{SERVICE_PORT}/")
    assert page == f"{SERVICE_PAGE}\n"


def test_running_it_again_or_for_another_container_changes_nothing(
    dokku: DokkuHost, docker_resources: DockerResources, linked
):
    network, service, container_id = linked
    assert created(dokku, container_id).returncode == 0
    before = endpoints(docker_resources, service.id)
    assert ALIAS in before[network]["Aliases"]
    second = docker_resources.created_by_scheduler(APP, network, [f"{service.name}:{ALIAS}"])

    again, other = created(dokku, container_id), created(dokku, second)

    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert (other.returncode, other.stdout, other.stderr) == (0, "", "")
    assert endpoints(docker_resources, service.id) == before


def test_a_service_on_the_network_without_the_alias_is_left_alone_and_still_resolves(
    dokku: DokkuHost, docker_resources: DockerResources, linked
):
    network, service, container_id = linked
    docker_resources.client.api.connect_container_to_network(service.id, network)
    before = endpoints(docker_resources, service.id)[network]

    result = created(dokku, container_id)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    after = endpoints(docker_resources, service.id)[network]
    assert (after["EndpointID"], after["Aliases"]) == (before["EndpointID"], before["Aliases"])
    assert ALIAS not in (after["Aliases"] or [])
    docker_resources.client.api.start(container_id)
    # The link itself resolves the alias for the app's container, the service being on the network.
    page = fetched(docker_resources, container_id, f"http://{ALIAS}:{SERVICE_PORT}/")
    assert page == f"{SERVICE_PAGE}\n"


def test_a_gone_linked_container_is_one_warning_and_the_apps_container_starts(
    dokku: DokkuHost, docker_resources: DockerResources, linked
):
    network, service, container_id = linked
    service.remove(force=True)

    result = created(dokku, container_id)

    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == (
        f" !     Container {service.name} linked as {ALIAS} does not exist:"
        f" not connected to network {network}\n"
    )
    docker_resources.client.api.start(container_id)
    assert docker_resources.client.api.inspect_container(container_id)["State"]["Running"]


def test_a_linked_container_that_joins_no_network_is_one_warning(
    dokku: DokkuHost, docker_resources: DockerResources
):
    network = app_naming_a_network(dokku, docker_resources)
    on_host = docker_resources.service(network="host")
    container_id = docker_resources.created_by_scheduler(APP, network, [f"{on_host.name}:{ALIAS}"])

    result = created(dokku, container_id)

    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == (
        f" !     Container {on_host.name} linked as {ALIAS} cannot join network {network}:"
        " its network mode is host\n"
    )
    assert set(endpoints(docker_resources, on_host.id)) == {"host"}


def test_a_link_that_names_no_container_is_one_warning_and_never_reaches_the_engine(
    dokku: DokkuHost, docker_resources: DockerResources
):
    # On a user-defined network the engine keeps links as given, unchecked.
    network = app_naming_a_network(dokku, docker_resources)
    container_id = docker_resources.created_by_scheduler(APP, network, ["../../networks:db"])

    result = created(dokku, container_id)

    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == (
        f" !     Ignoring the link ../../networks:db of container {container_id[:12]}:"
        " not <container>:<alias>\n"
    )


def test_a_network_removed_meanwhile_fails_the_trigger(dokku: DokkuHost, docker_resources, linked):
    network, service, container_id = linked
    docker_resources.client.api.remove_network(network)

    result = created(dokku, container_id)

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f" !     Network {network} does not exist\n",
    )
    assert set(endpoints(docker_resources, service.id)) == {"bridge"}


def test_links_on_the_default_bridge_are_left_to_the_engine(
    dokku: DokkuHost, docker_resources: DockerResources
):
    attached = app_naming_a_network(dokku, docker_resources, properties.ATTACH_POST_CREATE)
    service = docker_resources.service()
    container_id = docker_resources.created_by_scheduler(APP, "bridge", [f"{service.name}:{ALIAS}"])

    result = created(dokku, container_id)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert set(endpoints(docker_resources, service.id)) == {"bridge"}
    assert set(endpoints(docker_resources, container_id)) == {"bridge", attached}


@pytest.mark.parametrize("initial_network", ["", "bridge", "default", "host", "none"])
def test_an_app_created_on_one_of_dockers_networks_without_attach_list_never_asks_the_engine(
    dokku: DokkuHost, initial_network: str
):
    dokku.create_app(APP)
    if initial_network:
        dokku.write_property(APP, "initial-network", initial_network)

    result = dokku.trigger(
        "post-container-create", "app", "0123456789ab", APP, "deploy", "web", env=UNREACHABLE
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_an_app_with_an_initial_network_of_its_own_asks_the_engine(dokku: DokkuHost):
    dokku.create_app(APP)
    dokku.write_property(APP, "initial-network", "dnt-own")

    result = dokku.trigger(
        "post-container-create", "app", "0123456789ab", APP, "deploy", "web", env=UNREACHABLE
    )

    assert result.returncode == 1
    assert result.stderr.startswith(" !     Unable to reach the Docker engine at ")
    assert len(result.stderr.splitlines()) == 1


def test_one_inspect_of_the_apps_container_serves_the_attach_list_and_the_links(
    host_paths, docker_resources: DockerResources, mocker
):
    (host_paths[0] / APP).mkdir()
    network, attached = docker_resources.network(), docker_resources.network()
    properties.write(APP, "initial-network", network.name)
    properties.write(APP, "attach-post-create", attached.name)
    service = docker_resources.service()
    container_id = docker_resources.created_by_scheduler(APP, network.name, [f"{service.name}:{ALIAS}"])
    inspect = mocker.spy(docker_engine.api(), "inspect_container")

    assert main(["/plugin/post-container-create", "app", container_id, APP, "deploy", "web"]) == 0

    assert [call.args for call in inspect.call_args_list] == [(container_id,), (service.name,)]
    assert set(endpoints(docker_resources, container_id)) == {network.name, attached.name}
    assert ALIAS in endpoints(docker_resources, service.id)[network.name]["Aliases"]
