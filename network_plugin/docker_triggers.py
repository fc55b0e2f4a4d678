"""Triggers that talk to the Docker engine (attach, rebuild, IP lookup).

Placeholders until the Docker engine support lands: each does the
property-only part it can, and fails clearly where the engine is needed.
"""

from __future__ import annotations

from network_plugin import properties
from network_plugin.apps import verify_app
from network_plugin.arguments import arg
from network_plugin.error_handler import PluginError

NOT_YET = "requires Docker engine support, which this version of the plugin does not have yet"


def _needs_engine(trigger: str) -> PluginError:
    return PluginError(f"{trigger} {NOT_YET}")


def post_container_create(args: list[str]) -> int:
    container_type, app = arg(args, 0), arg(args, 2)
    if container_type != "app":
        return 0
    verify_app(app)
    if not properties.computed(app, properties.ATTACH_POST_CREATE):
        return 0
    raise _needs_engine("post-container-create")


def post_deploy(args: list[str]) -> int:
    app = arg(args, 0)
    verify_app(app)
    if not properties.computed(app, properties.ATTACH_POST_DEPLOY):
        return 0
    raise _needs_engine("post-deploy")


def network_build_config(args: list[str]) -> int:
    verify_app(arg(args, 0))
    raise _needs_engine("network-build-config")


def network_get_ipaddr(args: list[str]) -> int:
    verify_app(arg(args, 0))
    raise _needs_engine("network-get-ipaddr")
