"""`network:report`: the fields, their values, and the stdout/json layouts Dokku uses."""

from __future__ import annotations

from network_plugin import app_network, properties
from network_plugin.container_health import all_unhealthy_warning
from network_plugin.error_handler import PluginError
from network_plugin.listeners import listeners_by_health
from network_plugin.output import detail, one_line, print_json, section, warn
from network_plugin.paths import GLOBAL_APP

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Field = Callable[[str], str]

FIELD_PREFIX = "network-"
MIN_LABEL_WIDTH = 31


def _app_value(key: str) -> Field:
    return lambda app: properties.get(app, key)


def _computed_value(key: str) -> Field:
    return lambda app: properties.computed(app, key)


def _global_value(key: str) -> Field:
    return lambda app: properties.get_global(key)


def _web_listeners(app: str) -> str:
    return " ".join(listeners_by_health(app, "web")[0])


def _left_out_web_listeners(app: str) -> str:
    _, left_out, all_unhealthy = listeners_by_health(app, "web")
    if all_unhealthy:
        return f"none: {all_unhealthy_warning(app, 'web')}"
    return " ".join(left_out)


def _global_fields() -> dict[str, Field]:
    fields: dict[str, Field] = {}
    for key in sorted(properties.GLOBAL_KEYS):
        fields[f"computed-{key}"] = _computed_value(key)
        fields[f"global-{key}"] = _global_value(key)
    return fields


def _app_fields() -> dict[str, Field]:
    fields = _global_fields()
    for key in properties.APP_KEYS:
        fields[key] = _app_value(key)
    fields["web-listeners"] = _web_listeners
    fields["web-listeners-left-out"] = _left_out_web_listeners
    fields["effective-initial-network"] = _readable(lambda app: app_network.creation_network(app) or "bridge")
    fields["app-network-status"] = _readable(app_network.status)
    return fields


def _readable(field: Field) -> Field:
    """A field computed from stored values: one the plugin would refuse shows why, in its place."""

    def value(app: str) -> str:
        try:
            return field(app)
        except PluginError as error:
            return f"unknown: {error.message}"

    return value


def fields_for(app: str) -> dict[str, Field]:
    """Report fields (without the `network-` prefix) for an app, or for `--global`."""
    return _global_fields() if app == GLOBAL_APP else _app_fields()


def collect(app: str) -> dict[str, str]:
    """`network-<field>` -> value, sorted by field name."""
    fields = fields_for(app)
    return {f"{FIELD_PREFIX}{name}": fields[name](app) for name in sorted(fields)}


def _label(flag_name: str) -> str:
    words = flag_name.replace("-", " ")
    return f"{words[:1].upper()}{words[1:]}:"


def print_stdout(app: str, values: dict[str, str]) -> None:
    width = max([MIN_LABEL_WIDTH] + [len(f"--{name}") for name in values])
    section(f"{app} network information")
    for name, value in values.items():
        # A hand-edited value may hold newlines or terminal escapes: `detail` keeps it on one line.
        detail(f"{_label(name).ljust(width)}{value}")


def json_document(values: dict[str, str]) -> dict[str, str]:
    """Every field under its `network-` key and, for Dokku's newer readers, without the prefix."""
    document: dict[str, str] = {}
    for name, value in values.items():
        document[name] = value
        document[name[len(FIELD_PREFIX) :]] = value
    return document


def report(app: str, output_format: str = "stdout", info_flag: str = "") -> None:
    """Print the report of one app (or `--global`): all fields, or only `info_flag`'s value;
    then, on stderr, one line for each stored value the plugin would refuse."""
    values = collect(app)
    if info_flag:
        name = info_flag[2:] if info_flag.startswith("--") else ""
        if name not in values:
            valid = ", ".join(f"--{flag}" for flag in values)
            raise PluginError(f"Invalid flag passed, valid flags: {valid}")
        print(one_line(values[name]))
    elif output_format == "json":
        print_json(json_document(values))
    else:
        print_stdout(app, values)
    for line in properties.refused_values(app):
        warn(line)
