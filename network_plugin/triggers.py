"""One function per file-only trigger: `(args) -> exit code`.

plugn calls `$PLUGIN/<trigger> <args...>`; `main` maps the program name to the
function here. Triggers that talk to Docker live in `docker_triggers`.
"""

from __future__ import annotations

import os
import sys

from network_plugin import app_network, listeners, properties
from network_plugin.apps import list_apps, proxy_is_enabled, verify_app
from network_plugin.arguments import arg
from network_plugin.error_handler import PluginError
from network_plugin.files import is_file, write_atomic
from network_plugin.output import detail_unless_quiet, info, warn
from network_plugin.paths import GLOBAL_APP, properties_root
from network_plugin.validation import verify_app_name

# In the property store: the apps without a proxy got bind-all-interfaces once, on this host.
BACKFILL_RECORD = ".bind-all-interfaces-backfilled"
# Set to 1 by the root `install` script when it switched `.venv` to a new environment.
ENVIRONMENT_SWITCHED = "DOKKU_NETWORK_ENVIRONMENT_SWITCHED"


def install(args: list[str], restart_service: bool = False) -> int:
    """`install`: link the entry points, prepare the property store, keep apps served
    without a proxy reachable (once per host), give the watcher's socket folder back to the
    Dokku user, start the watch service."""
    from network_plugin import service
    from network_plugin.packaging import PLUGIN_DIR, make_entry_points, warn_about_core_plugin
    from network_plugin.watch_folder import give_to_dokku

    made = make_entry_points()
    warn_about_core_plugin()
    if made:  # a first install, or a new version: what the triggers will refuse, said once
        for owner in (GLOBAL_APP, *list_apps()):
            for line in properties.refused_values(owner):
                warn(line)
    properties.setup()
    backfill_bind_all_interfaces()
    record_networks_made_before_records()
    give_to_dokku()  # before the service (re)starts: a watcher once run as root left it root's
    # Without systemd the hint comes with a new install (or new entry points), not every run.
    switched = os.environ.get(ENVIRONMENT_SWITCHED) == "1"  # set by the root `install` script
    service.install(PLUGIN_DIR, restart=restart_service or switched, hint=made > 0)
    return 0


def backfill_bind_all_interfaces() -> None:
    """Give `bind-all-interfaces=true` to each app without the property whose proxy is
    disabled, once per host: it must stay reachable on every interface, as under Dokku's
    plugin. Every other app stays unset, so that a global value reaches it (Dokku's plugin
    pins every app to a value at its install). It asks plugn once per app: recorded as done,
    so that a repeat install or update costs nothing per app."""
    record = os.path.join(properties_root(), BACKFILL_RECORD)
    if is_file(record):
        return
    for app in list_apps():
        if not properties.is_stored(app, properties.BIND_ALL_INTERFACES) and not proxy_is_enabled(app):
            detail_unless_quiet(f"Setting network property 'bind-all-interfaces' to true for {app}")
            properties.write(app, properties.BIND_ALL_INTERFACES, "true")
    write_atomic(record, "apps without a proxy were given bind-all-interfaces=true\n")


def record_networks_made_before_records() -> None:
    """Dokku-labelled networks without a record (made before this version) get one, once."""
    from network_plugin.records import record_engine_networks

    record_engine_networks()


def update(args: list[str]) -> int:
    """`update` (after `plugin:update` pulled new code): what `install` does, and the
    watch service restarted onto the new code."""
    return install(args, restart_service=True)


def uninstall(args: list[str]) -> int:
    """`uninstall <plugin>`: plugin:uninstall runs it in every enabled plugin; act only for ours.
    What install put outside the plugin folder (the watch service) goes; app data stays."""
    from network_plugin import service
    from network_plugin.packaging import plugin_name

    if arg(args, 0) != plugin_name():
        return 0
    info(f"Uninstalling the {plugin_name()} plugin: app properties stay in {properties_root()}")
    service.uninstall()
    return 0


def post_delete(args: list[str]) -> int:
    """`post-delete <app>`: the app's properties go, and its own network once unused."""
    app = arg(args, 0)
    properties.remove_all(app)
    app_network.remove_unused(app)
    return 0


def post_app_clone_setup(args: list[str]) -> int:
    """apps:clone and apps:rename create `new_app` just before (and refuse one that exists): it
    gets exactly the old app's properties and no IP/PORT file. An app with deployed containers
    is not theirs to set up: removing its IP files would cut it off its proxy."""
    return _set_up_new_app("post-app-clone-setup", args, renamed=False)


def post_app_rename_setup(args: list[str]) -> int:
    """As post-app-clone-setup, then the old app's properties go."""
    return _set_up_new_app("post-app-rename-setup", args, renamed=True)


def _set_up_new_app(trigger: str, args: list[str], *, renamed: bool) -> int:
    """Check the clone's or rename's apps, then set the new one up: in the running watcher when it
    answers (`warm.written_by_watcher`, which runs `trigger` itself), else here."""
    from network_plugin import warm  # here: the readers of this module need no socket

    old_app, new_app = arg(args, 0), arg(args, 1)
    verify_app_name(old_app)
    if new_app == old_app:
        # Copying onto itself is a no-op, and the rename would then delete its only copy.
        raise PluginError(f"The new app is the old app: {old_app}, nothing to set up")
    verify_app(new_app)
    if any(name.startswith("CONTAINER.") for name in listeners.app_file_names(new_app)):
        raise PluginError(
            f"App {new_app} already has deployed containers:"
            " post-app-clone-setup only sets up the new app of apps:clone or apps:rename"
        )
    if not warm.written_by_watcher(trigger, [old_app, new_app]):
        listeners.clear_config(new_app)
        properties.copy_all(old_app, new_app)
        if renamed:
            properties.remove_all(old_app)
    return 0


def _pass_docker_args(args: list[str], keys: tuple[str, ...], phase: str, process_type: str = "") -> int:
    """Echo the docker args on stdin, prefixed by ` --network=<network> ` when asked for and the
    app's containers are created on one (its initial-network, else its own: app_network); before
    that, make the missing networks of `keys` (and the app's own) that have a record."""
    app = arg(args, 0)
    # Bytes in, bytes out: Dokku's args may hold any encoding, and are not ours to decode.
    stdin = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    verify_app(app)
    # The value lands on a docker command line: anything hand-edited into the store is refused.
    network = (
        app_network.creation_network(app, process_type, phase) if properties.INITIAL_NETWORK in keys else ""
    )
    named = app_network.with_own(app, properties.stored_networks(app, keys), keys, process_type, phase)
    if named:  # an app naming no network is answered from its files alone
        from network_plugin.recreate import ensure_networks

        # Dokku captures stdout as docker arguments: what the user should read goes to stderr
        # (swapped by hand: contextlib's redirect_stdout costs ~2 ms of imports).
        stdout, sys.stdout = sys.stdout, sys.stderr
        try:
            ensure_networks(app, named)
        finally:
            sys.stdout = stdout
    sys.stdout.buffer.write(f" --network={network} ".encode() + stdin if network else stdin)
    return 0


# The networks a container joins at its creation (initial-network) and right after it
# (attach-post-create, by post-container-create, in every phase); deploy containers also
# join attach-post-deploy once they run.
CREATE_KEYS = (properties.INITIAL_NETWORK, properties.ATTACH_POST_CREATE)
DEPLOY_KEYS = (*CREATE_KEYS, properties.ATTACH_POST_DEPLOY)


def docker_args_process_build(args: list[str]) -> int:
    """`docker-args-process-build <app> <image-source-type>`."""
    # A Dockerfile build runs `docker build`, which takes no --network of an app network.
    return _pass_docker_args(args, CREATE_KEYS if arg(args, 1) != "dockerfile" else (), "build")


def docker_args_process_deploy(args: list[str]) -> int:
    """`docker-args-process-deploy <app> <image-source-type> <image-tag> <proc> [<index>]`."""
    return _pass_docker_args(args, DEPLOY_KEYS, "deploy", arg(args, 3))


def docker_args_process_run(args: list[str]) -> int:
    """`docker-args-process-run <app> <image-source-type> <image-tag>`."""
    return _pass_docker_args(args, CREATE_KEYS, "run")


def network_config_exists(args: list[str]) -> int:
    app = arg(args, 0)
    verify_app(app)
    print("true" if listeners.config_exists(app) else "false")
    return 0


def network_get_listeners(args: list[str]) -> int:
    app, process_type = arg(args, 0), arg(args, 1)
    verify_app(app)
    if not process_type:
        warn("Deprecated: Please specify a processType argument for the network-get-listeners plugin trigger")
        process_type = "web"
    print(" ".join(listeners.get_listeners(app, process_type)))
    return 0


def network_get_property(args: list[str]) -> int:
    app, key = arg(args, 0), arg(args, 1)
    verify_app(app)
    if key not in properties.DEFAULTS:
        raise PluginError(f"Invalid network property specified: {key}")
    # Callers ask initial-network for the network that holds the app's addresses (openresty's
    # label): with app-network, the app's own.
    print(
        app_network.creation_network(app)
        if key == properties.INITIAL_NETWORK
        else properties.verified_computed(app, key)
    )
    return 0


def network_get_static_listeners(args: list[str]) -> int:
    app = arg(args, 0)
    verify_app(app)
    print(listeners.static_web_listener(app))
    return 0


def network_write_ipaddr(args: list[str]) -> int:
    app, process_type, index, ip = (arg(args, i) for i in range(4))
    verify_app(app)
    listeners.write_ipaddr(app, process_type, index, ip)
    return 0


def network_write_port(args: list[str]) -> int:
    app, process_type, index, port = (arg(args, i) for i in range(4))
    verify_app(app)
    listeners.write_port(app, process_type, index, port)
    return 0


def report(args: list[str]) -> int:
    app = arg(args, 0)
    verify_app(app)
    from network_plugin.report import report as print_report  # here: no other trigger needs it

    print_report(app)
    return 0
