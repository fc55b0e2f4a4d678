"""The property store: computed values, validation, copy and removal (docs/reference.md: Properties)."""

from __future__ import annotations

import os

import pytest

from network_plugin import properties
from network_plugin.error_handler import PluginError


@pytest.fixture
def property_root(host_paths):
    _, lib_root = host_paths
    return lib_root / "config" / "network"


def test_computed_prefers_app_then_global_then_default(property_root):
    assert properties.computed("app", "bind-all-interfaces") == "false"
    properties.write("--global", "bind-all-interfaces", "true")
    assert properties.computed("app", "bind-all-interfaces") == "true"
    properties.write("app", "bind-all-interfaces", "false")
    assert properties.computed("app", "bind-all-interfaces") == "false"


def test_static_web_listener_has_no_global_value(property_root):
    (property_root / "--global").mkdir(parents=True)
    (property_root / "--global" / "static-web-listener").write_text("10.0.0.1:80")
    assert properties.computed("app", "static-web-listener") == ""


def test_write_stores_raw_value_and_lock_beside_it(property_root):
    properties.write("app", "tld", "svc.local")
    assert (property_root / "app" / "tld").read_bytes() == b"svc.local"
    assert sorted(os.listdir(property_root / "app")) == [".lock", "tld"]


def test_unset_is_quiet_when_already_unset(property_root):
    assert properties.set_value("app", "tld", []) == ""
    properties.write("app", "tld", "svc.local")
    assert properties.set_value("app", "tld", []) == ""
    assert not (property_root / "app" / "tld").exists()


def test_attach_values_are_split_deduplicated_and_joined(property_root):
    assert properties.validated_value("app", "attach-post-create", ["a", "b,c", "a"]) == "a,b,c"


def test_attach_refuses_a_network_of_the_other_list(property_root):
    properties.write("app", "attach-post-deploy", "x,y")
    with pytest.raises(PluginError, match=r"^Network name already associated with this app: y$"):
        properties.validated_value("app", "attach-post-create", ["z", "y"])


def test_attach_refuses_a_network_of_the_other_global_list(property_root):
    properties.write("--global", "attach-post-create", "shared")
    with pytest.raises(PluginError, match="already associated with this app: shared"):
        properties.validated_value("app", "attach-post-deploy", ["shared"])


@pytest.mark.parametrize("name", ["host", "bridge"])
def test_attach_refuses_docker_builtin_networks(property_root, name):
    with pytest.raises(PluginError, match=f"^Invalid network name specified for attach: {name}$"):
        properties.validated_value("app", "attach-post-deploy", ["ok", name])


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("initial-network", ["bad name"]),
        ("initial-network", ["-x"]),
        ("tld", ["UPPER.local"]),
        ("tld", ["a", "b"]),
        ("bind-all-interfaces", ["yes"]),
        ("static-web-listener", ["10.0.0.1:99999"]),
        ("attach-post-create", ["$(reboot)"]),
    ],
)
def test_bad_values_are_refused(property_root, key, values):
    with pytest.raises(PluginError):
        properties.validated_value("app", key, values)


def test_no_value_means_unset(property_root):
    assert properties.validated_value("app", "tld", []) == ""
    assert properties.validated_value("app", "attach-post-create", []) == ""


def test_verify_key_lists_valid_properties_sorted():
    with pytest.raises(PluginError) as error:
        properties.verify_key("nope", "app")
    assert error.value.message == (
        "Invalid property specified, valid properties include: app-network, app-network-pool, "
        "attach-post-create, "
        "attach-post-deploy, bind-all-interfaces, initial-network, static-web-listener, tld"
    )


def test_copy_all_copies_only_known_properties(property_root):
    properties.write("old", "tld", "svc.local")
    properties.write("old", "initial-network", "net")
    (property_root / "old" / "stray").write_text("x")
    properties.copy_all("old", "new")
    assert properties.get("new", "tld") == "svc.local"
    assert properties.get("new", "initial-network") == "net"
    assert not (property_root / "new" / "stray").exists()


def test_remove_all_refuses_names_that_escape_the_store(property_root):
    properties.write("--global", "tld", "keep.me")
    with pytest.raises(PluginError):
        properties.remove_all("..")
    with pytest.raises(PluginError):
        properties.remove_all("--global")
    assert properties.get("--global", "tld") == "keep.me"
