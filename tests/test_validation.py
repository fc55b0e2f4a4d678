"""Name and value rules (docs/reference.md: Apps and names, Properties, Triggers)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from network_plugin import validation

NASTY = ["", ".", "..", "../x", "a/b", "a\nb", "a\x00b", "a b", "a;b", "$(x)", "é", "a\n"]


@pytest.mark.parametrize("name", ["a", "node-js-app", "app.v2", "0app", "old_app", "x" * 200])
def test_app_name_accepts_dokku_names(name):
    assert validation.is_app_name(name)


@pytest.mark.parametrize("name", [*NASTY, "App", "-app", ".app", "_app", "--global"])
def test_app_name_refuses_everything_else(name):
    assert not validation.is_app_name(name)


@pytest.mark.parametrize("value", ["web", "worker-2", "Clock_1", "W", "_worker", "-web"])
def test_process_type_accepts(value):
    assert validation.is_process_type(value)


@pytest.mark.parametrize("value", [*NASTY, "web.1", "web:1"])
def test_process_type_refuses(value):
    assert not validation.is_process_type(value)


@pytest.mark.parametrize("value", ["0", "1", "10", "999999999"])
def test_container_index_accepts_digits(value):
    assert validation.is_container_index(value)


@pytest.mark.parametrize(
    "value", ["", "-1", "1.0", "\u00bd", "\u0661", "1\n", "a", "007", "01", "1000000000", "9" * 20]
)
def test_container_index_refuses_non_ascii_digits_padding_and_huge_numbers(value):
    assert not validation.is_container_index(value)


@pytest.mark.parametrize("value", ["1", "80", "5000", "65535"])
def test_port_accepts_range(value):
    assert validation.is_port(value)


@pytest.mark.parametrize("value", ["0", "65536", "99999", "000000080", "0080", "01", "-1", "abc", ""])
def test_port_refuses_outside_range(value):
    assert not validation.is_port(value)


@pytest.mark.parametrize("value", ["172.17.0.2", "10.0.0.1", "::1", "fe80::1", "2001:db8::5"])
def test_ip_address_accepts_v4_and_v6(value):
    assert validation.is_ip_address(value)


@pytest.mark.parametrize(
    "value", ["256.1.1.1", "1.2.3", "abc", "1.2.3.4\n", ":::", "", "1.2.3.4 ", "010.0.0.1", "1.2.3.4.5"]
)
def test_ip_address_refuses(value):
    assert not validation.is_ip_address(value)


@pytest.mark.parametrize("value", ["my-net", "Net_1", "a.b", "0", "_internal", "svc:v1", "net@x"])
def test_network_name_accepts_docker_names(value):
    assert validation.is_network_name(value)


@pytest.mark.parametrize("value", [*NASTY, "-net", ".net", "net,other", "net/x"])
def test_network_name_refuses(value):
    assert not validation.is_network_name(value)


@pytest.mark.parametrize("value", ["10.0.0.1", "::1", "localhost", "db-1.internal", "Web.Example.com"])
def test_listener_host_accepts_addresses_and_host_names(value):
    assert validation.is_listener_host(value)


@pytest.mark.parametrize(
    "value", [*NASTY, "10.0.0.256", "10.0.0", "1.2.3.4.5", "-x", "a_b", "a..b", "\u212a", "\u212aelvin.local"]
)
def test_listener_host_refuses(value):
    assert not validation.is_listener_host(value)


@pytest.mark.parametrize("value", ["svc.cluster.local", "local", "a-b.c0"])
def test_dns_name_accepts(value):
    assert validation.is_dns_name(value)


@pytest.mark.parametrize(
    "value",
    ["", "UPPER.local", "-a.b", "a-.b", "a..b", ".a", "a.", "a_b", "a b", "a" * 64, ".".join(["a" * 63] * 4)],
)
def test_dns_name_refuses(value):
    assert not validation.is_dns_name(value)


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("10.0.0.1:5000", "10.0.0.1"),
        ("web.internal:8080", "web.internal"),
        ("[fe80::1]:80", "fe80::1"),
        ("fe80::1", "fe80::1"),
    ],
)
def test_listener_accepts_ip_or_host_port_and_splits_host(value, host):
    assert validation.is_listener(value)
    assert validation.listener_host(value) == host


@pytest.mark.parametrize("value", ["host", "10.0.0.1:0", "10.0.0.1:", ":80", "a b:80", "[::1:80", "x:80;rm"])
def test_listener_refuses(value):
    assert not validation.is_listener(value)


@given(st.text(alphabet="0123456789.:abcdef", max_size=20) | st.ip_addresses().map(str))
def test_ip_check_agrees_with_the_ipaddress_module(value):
    # The IPv4 fast path skips the ipaddress import; it must not change a single answer.
    try:
        ipaddress.ip_address(value)
        valid = True
    except ValueError:
        valid = False
    assert validation.is_ip_address(value) == valid
