"""The client's address behind reverse proxies that Keyturn was told to trust, and only those.

Everything that reads ``REMOTE_ADDR`` (audit actor addresses, the GitHub intake's rate limit,
the sign-in lockout) gets the address of whoever opened the connection. Behind a proxy that is
the proxy, so this middleware, first in ``MIDDLEWARE``, puts the client's address there
instead, read from ``X-Forwarded-For``, and only when the connection itself comes from an
address in ``PORTAL_TRUSTED_PROXIES``. Each trusted proxy appends the address it was connected
from, so the list is read from the right: the first hop that is not a trusted proxy is the
client. Anything to its left was written by that client and could say anything.

From a peer that is not a trusted proxy, the forwarding headers Django could be told to believe
(``X-Forwarded-For``, ``X-Forwarded-Host``, ``X-Forwarded-Proto``) are removed, so a client
that reaches the servers directly cannot claim to be someone else, another host, or HTTPS.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO")
# A chain of proxies longer than this is a misconfiguration or an attack; reading further
# would only spend time on text a client wrote.
MAX_HOPS = 20


def parse_networks(values: list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    """``PORTAL_TRUSTED_PROXIES`` entries (addresses or CIDR networks) as networks.

    Raises ValueError naming the first bad entry: not an address or network, host bits set
    (``10.0.0.1/8`` is probably a typo), or a network holding every address (trusting it would
    let any client choose its own address).
    """
    networks = []
    for value in values:
        text = value.strip()
        try:
            network = ipaddress.ip_network(text)
        except ValueError as error:
            raise ValueError(f"{text[:60]!r} is not an address or a network ({error})") from None
        if network.prefixlen == 0:
            raise ValueError(f"{text!r} would trust every address; name the proxies themselves")
        networks.append(network)
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A zone ("fe80::1%eth0") names an interface of the machine that wrote it, not a client.
    if address.version == 6 and address.scope_id is not None:
        return None
    # An IPv4 client seen through a dual-stack socket is still that IPv4 client.
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def client_address(peer: str, forwarded_for: str, networks: tuple[Network, ...]) -> str:
    """The client's address for a connection from ``peer`` carrying ``forwarded_for``.

    ``peer`` is returned unchanged unless it is a trusted proxy. Otherwise the hops are read
    right to left: the first one that is not a trusted proxy is the answer. If that hop is not
    an address at all, nothing to its left can be believed either, so the answer is the last
    trusted proxy reached (the one that passed the garbage on). If every hop is trusted, the
    left-most one is the answer.
    """
    nearest = _address(peer)
    if nearest is None or not _is_trusted(nearest, networks):
        return peer
    hops = [hop for hop in forwarded_for.split(",") if hop.strip()][-MAX_HOPS:]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            logger.warning("Unreadable X-Forwarded-For hop from trusted proxy %s", nearest)
            return str(nearest)
        nearest = address
        if not _is_trusted(address, networks):
            break
    return str(nearest)


class TrustedProxyMiddleware:
    """Set ``REMOTE_ADDR`` to the client's address as the trusted proxies report it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        networks = _trusted(tuple(settings.PORTAL_TRUSTED_PROXIES))
        peer = meta.get("REMOTE_ADDR") or ""
        peer_address = _address(peer)
        if peer_address is None or not _is_trusted(peer_address, networks):
            for header in FORWARDING_HEADERS:
                meta.pop(header, None)
        else:
            meta["REMOTE_ADDR"] = client_address(
                peer, meta.get("HTTP_X_FORWARDED_FOR", ""), networks
            )
        return self.get_response(request)
