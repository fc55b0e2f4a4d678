"""The address pool app networks take their subnets from (docs/reference.md: Apps on networks
of their own).

Docker's default address pools hold about 31 bridge networks; a host of hundreds of apps,
each on a network of its own, takes a /24 per app from the global `app-network-pool`
instead. A block is free when it overlaps no network the engine lists, no network recorded
on this host (it may come back) and, when the engine shares this host's network, no route
or address of the host. The first free block in address order is taken, under the host lock;
another host's plugin on the same engine is caught by the engine's own refusal of an
overlapping pool, and the next block is tried.
"""

from __future__ import annotations

import ipaddress

from network_plugin import docker_engine, host_network, networks, properties, records
from network_plugin.error_handler import EngineAPIError, PluginError
from network_plugin.network_options import parse
from network_plugin.output import info
from network_plugin.validation import unusable_space

BLOCK_PREFIX = 24
# Another plugin on the same engine may take the block first: so many blocks are tried.
MAX_ATTEMPTS = 8


def parse_pool(value: str) -> ipaddress.IPv4Network:
    """The pool `value` names: an IPv4 subnet of /24 or wider, in space that may hold containers."""
    try:
        pool = ipaddress.IPv4Network(value)
    except ValueError:
        raise PluginError(
            f"Invalid app-network-pool specified: {value},"
            " use an IPv4 subnet in CIDR notation such as 10.224.0.0/12"
        ) from None
    if pool.prefixlen > BLOCK_PREFIX:
        raise PluginError(
            f"Invalid app-network-pool specified: {value},"
            f" each app takes a /{BLOCK_PREFIX}: use /{BLOCK_PREFIX} or wider"
        )
    why = unusable_space(value)
    if why:
        raise PluginError(f"Invalid app-network-pool specified: {value}, {why}")
    return pool


def free_block(
    pool: ipaddress.IPv4Network, taken: list[ipaddress.IPv4Network]
) -> ipaddress.IPv4Network | None:
    """The first /24 of `pool` that overlaps none of `taken`; None when every one does."""
    size = 1 << (32 - BLOCK_PREFIX)
    start, end = int(pool.network_address), int(pool.broadcast_address) + 1
    spans = sorted(
        (int(subnet.network_address), int(subnet.broadcast_address) + 1)
        for subnet in taken
        if subnet.overlaps(pool)
    )
    candidate = start
    for first, last in spans:
        if first >= candidate + size:
            break  # a gap before this span holds the candidate
        # Past this span, aligned up to the next block.
        candidate = max(candidate, -(-(last - start) // size) * size + start)
    if candidate + size > end:
        return None
    return ipaddress.IPv4Network((candidate, BLOCK_PREFIX))


def ipv4_subnets(values: list[str]) -> list[ipaddress.IPv4Network]:
    """The IPv4 subnets among `values` (the engine's or a record's; others are skipped)."""
    found = []
    for value in values:
        try:
            found.append(ipaddress.IPv4Network(value, strict=False))
        except ValueError:
            continue  # IPv6, or nothing an address
    return found


def full_pool_error(pool: ipaddress.IPv4Network) -> PluginError:
    blocks = 1 << (BLOCK_PREFIX - pool.prefixlen)
    return PluginError(
        f"No free /{BLOCK_PREFIX} left in app-network-pool {pool} ({blocks} in all, each taken by"
        " a network, a record or a route of this host): give a wider or another pool with"
        " `dokku network:set --global app-network-pool <subnet>`, or remove networks of deleted apps"
    )


def make_app_network(app: str, name: str) -> None:
    """Make `name`, the app's own network, on the first free block of the pool, and record it
    (so that it comes back with its subnet); the caller holds the host lock and found it missing."""
    pool = parse_pool(properties.computed(app, properties.APP_NETWORK_POOL))
    taken = taken_subnets()
    for _ in range(MAX_ATTEMPTS):
        block = free_block(pool, taken)
        if block is None:
            raise full_pool_error(pool)
        options = parse(
            name,
            driver="bridge",
            subnets=[str(block)],
            gateways=[],
            ip_ranges=[],
            internal=False,
            ipv6=False,
            opts=[],
            labels=[f"{docker_engine.APP_LABEL}={app}"],
        )
        try:
            made = networks.make(name, options)
        except EngineAPIError as error:
            if "overlaps" not in error.explanation:
                raise
            taken.append(block)  # taken meanwhile by a plugin of another host on this engine
            continue
        if made:
            records.write(name, options)
            info(f"Creating network {name} for {app} on {block}")
        return
    raise full_pool_error(pool)


def taken_subnets() -> list[ipaddress.IPv4Network]:
    """Every IPv4 subnet a new app network must not overlap: the engine's networks (one
    listing), the recorded ones, and this host's routes and addresses when the engine shares
    its network."""
    listed = docker_engine.api().networks()
    values = [
        entry.get("Subnet") or ""
        for network in listed
        for entry in (network.get("IPAM") or {}).get("Config") or []
    ]
    found, _ = records.recorded()
    values += [pool.subnet for options in found.values() for pool in options.pools]
    taken = ipv4_subnets(values)
    if host_network.engine_shares_host_network():
        taken += [block for block, _ in host_network.host_routes() if block.version == 4]
    return taken
