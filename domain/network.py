"""Which addresses an outbound call may reach: a customer's webhook endpoint must be a public
address, never the engine's own machine, its cloud's metadata service, a private network or the
carrier-grade NAT range (an endpoint set to one of them would make the engine a proxy into them)."""

from __future__ import annotations

import ipaddress

# RFC 6598's shared address space, which `is_private` does not cover.
CGNAT = ipaddress.ip_network("100.64.0.0/10")


def refused_address(address: str) -> str | None:
    """Why `address` (an IP) may not be a webhook's target, or None when it is public."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return "a carrier-grade NAT address"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return "a private or reserved address"
    return None
