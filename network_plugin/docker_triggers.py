"""Triggers that talk to the Docker engine: attach at the right phase, rebuild, IP lookup."""

from __future__ import annotations

from network_plugin import app_network, properties
from network_plugin.apps import verify_app
from network_plugin.arguments import arg
from network_plugin.validation import is_user_defined_network, verify_process_type


def post_container_create(args: list[str]) -> int:
    """`post-container-create <type> <container-id> <app> <phase> [<proc>]`: the app's container
    joins its attach-post-create networks, and the containers it links to join the network it
    was created on."""
    container_type, container_id, app, phase, process_type = (arg(args, i) for i in range(5))
    if container_type != "app":
        return 0
    verify_app(app)
    created_on = app_network.creation_network(app, process_type, phase)
    if not properties.computed(app, properties.ATTACH_POST_CREATE) and not is_user_defined_network(
        created_on
    ):
        return 0  # the common case: answered from the files, without the engine
    from network_plugin import attach, links

    container = attach.attach_after_create(container_id, app, phase, process_type)
    links.connect_linked(container)
    return 0


def core_post_deploy(args: list[str]) -> int:
    """`core-post-deploy <app> [...]`: the deployed containers join attach-post-deploy networks."""
    app = arg(args, 0)
    verify_app(app)
    if not properties.computed(app, properties.ATTACH_POST_DEPLOY):
        return 0
    from network_plugin import attach

    attach.attach_after_deploy(app)
    return 0


def network_build_config(args: list[str]) -> int:
    """`network-build-config <app>`: rewrite the IP files; always exit 0 once the app is valid.

    nginx's proxy-build-config runs it under `set -eo pipefail`: a non-zero exit would stop
    every proxy build and deploy of the app. Containers without an IP, and an engine out of
    reach, are warnings here; `network:rebuild` reports them in its exit status.
    """
    app = arg(args, 0)
    verify_app(app)
    from network_plugin.error_handler import unless_engine_fault
    from network_plugin.network_config import build_config

    unless_engine_fault(lambda: build_config([app]))
    return 0


def network_get_ipaddr(args: list[str]) -> int:
    """`network-get-ipaddr <app> <proc> <container-id>`: print the container's IP."""
    app, process_type, container_id = arg(args, 0), arg(args, 1), arg(args, 2)
    verify_app(app)
    verify_process_type(process_type)
    from network_plugin.network_config import container_ip_of

    print(container_ip_of(app, process_type, container_id))
    return 0
