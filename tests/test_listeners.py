"""IP/PORT files and the listeners proxies read (docs/reference.md: Files on disk, Triggers)."""

from __future__ import annotations

import pytest

from network_plugin import listeners, properties
from network_plugin.error_handler import PluginError


@pytest.fixture
def app_root(host_paths):
    dokku_root, _ = host_paths
    root = dokku_root / "node-js-app"
    root.mkdir()
    return root


def test_listeners_are_in_numeric_index_order_with_default_port(app_root):
    for index, ip in (("10", "10.0.0.10"), ("2", "10.0.0.2"), ("1", "10.0.0.1")):
        listeners.write_ipaddr("node-js-app", "web", index, ip)
    listeners.write_port("node-js-app", "web", "2", "8080")
    assert listeners.get_listeners("node-js-app", "web") == [
        "10.0.0.1:5000",
        "10.0.0.2:8080",
        "10.0.0.10:5000",
    ]


def test_listeners_of_one_process_type_only(app_root):
    listeners.write_ipaddr("node-js-app", "web", "1", "10.0.0.1")
    listeners.write_ipaddr("node-js-app", "worker", "1", "10.0.0.9")
    assert listeners.get_listeners("node-js-app", "worker") == ["10.0.0.9:5000"]


def test_ipv6_listener_is_bracketed(app_root):
    listeners.write_ipaddr("node-js-app", "web", "1", "fd00::5")
    assert listeners.get_listeners("node-js-app", "web") == ["[fd00::5]:5000"]


def test_foreign_content_never_reaches_a_listener(app_root):
    (app_root / "IP.web.1").write_text("")
    (app_root / "IP.web.2").write_text("evil;rm -rf /")
    (app_root / "IP.web.3").write_text("10.0.0.3\n")
    (app_root / "PORT.web.3").write_text("not-a-port")
    (app_root / "IP.web.x").write_text("10.0.0.4")
    for index, shaped_like_hex in enumerate(["deadbeef", "1.2.3", "1.2.3.256", "::", "1:2", "1..2.3"], 4):
        (app_root / f"IP.web.{index}").write_text(shaped_like_hex)
    assert listeners.get_listeners("node-js-app", "web") == ["10.0.0.3:5000", "[::]:5000"]


def test_static_web_listener_replaces_web_listeners_only(app_root):
    listeners.write_ipaddr("node-js-app", "web", "1", "10.0.0.1")
    listeners.write_ipaddr("node-js-app", "worker", "1", "10.0.0.2")
    properties.write("node-js-app", "static-web-listener", "192.168.1.5:80")
    assert listeners.get_listeners("node-js-app", "web") == ["192.168.1.5:80"]
    assert listeners.get_listeners("node-js-app", "worker") == ["10.0.0.2:5000"]


def test_config_exists_needs_both_web_files_or_a_static_listener(app_root):
    assert listeners.config_exists("node-js-app") is False
    listeners.write_ipaddr("node-js-app", "web", "1", "10.0.0.1")
    assert listeners.config_exists("node-js-app") is False
    listeners.write_port("node-js-app", "web", "1", "5000")
    assert listeners.config_exists("node-js-app") is True
    listeners.clear_config("node-js-app")
    properties.write("node-js-app", "static-web-listener", "10.0.0.1")
    assert listeners.config_exists("node-js-app") is True


def test_clear_config_removes_ip_and_port_files_only(app_root):
    listeners.write_ipaddr("node-js-app", "web", "1", "10.0.0.1")
    listeners.write_port("node-js-app", "web", "1", "5000")
    (app_root / "CONTAINER.web.1").write_text("abc")
    (app_root / "ENV").write_text("x")
    listeners.clear_config("node-js-app")
    assert sorted(p.name for p in app_root.iterdir()) == ["CONTAINER.web.1", "ENV"]


@pytest.mark.parametrize(
    ("process_type", "index", "ip"),
    [
        ("../web", "1", "10.0.0.1"),
        ("web", "../1", "10.0.0.1"),
        ("web", "1", "10.0.0.1; rm -rf /"),
        ("web/x", "1", "10.0.0.1"),
        ("web", "", "10.0.0.1"),
        ("web", "1", " "),
    ],
)
def test_write_ipaddr_refuses_bad_input_and_writes_nothing(app_root, process_type, index, ip):
    with pytest.raises(PluginError):
        listeners.write_ipaddr("node-js-app", process_type, index, ip)
    assert list(app_root.iterdir()) == []
    assert list(app_root.parent.iterdir()) == [app_root]


@pytest.mark.parametrize("port", ["0", "65536", "http", "80 ", " "])
def test_write_port_refuses_out_of_range(app_root, port):
    with pytest.raises(PluginError, match="must be between 1 and 65535"):
        listeners.write_port("node-js-app", "web", "1", port)
    assert list(app_root.iterdir()) == []


def test_empty_value_means_no_address_and_removes_the_file(app_root):
    listeners.write_ipaddr("node-js-app", "worker", "1", "10.0.0.1")
    listeners.write_port("node-js-app", "worker", "1", "5000")
    listeners.write_ipaddr("node-js-app", "worker", "1", "")
    listeners.write_port("node-js-app", "worker", "1", "")
    assert list(app_root.iterdir()) == []
    assert listeners.get_listeners("node-js-app", "worker") == []
