"""Behind a reverse proxy the client's address comes from X-Forwarded-For, but only as far as
the proxies Keyturn was told to trust vouch for it; garbage is never believed and never crashes.
"""

import logging

import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import RequestFactory

from portal.proxies import TrustedProxyMiddleware, client_address, parse_networks

PROXIES = ["10.0.0.0/24", "192.0.2.7", "2001:db8::/64"]


def _seen(settings, meta, proxies=PROXIES):
    """What the view after the middleware finds in request.META."""
    settings.PORTAL_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/", **meta)
    seen = {}

    def view(request):
        seen.update(request.META)
        return HttpResponse()

    TrustedProxyMiddleware(view)(request)
    return seen


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # A direct client, with or without a header it wrote itself: its own address.
        ("203.0.113.9", "", "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        # One trusted proxy: the address it appended.
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        # A client that forged a hop before the proxy appended the real one: the real one.
        ("10.0.0.5", "1.2.3.4, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "1.2.3.4,198.51.100.1", "198.51.100.1"),
        # Two trusted proxies in a row: the first untrusted hop from the right.
        ("10.0.0.5", "1.2.3.4, 198.51.100.1, 192.0.2.7", "198.51.100.1"),
        ("10.0.0.5", "198.51.100.1, 10.0.0.9, 192.0.2.7", "198.51.100.1"),
        # Every hop trusted (a proxy's own health check): the left-most.
        ("10.0.0.5", "10.0.0.8, 192.0.2.7", "10.0.0.8"),
        # A trusted proxy that sent no header: the proxy itself.
        ("10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.5", " , ,", "10.0.0.5"),
        # Garbage where the client's address should be: the proxy that passed it on, never
        # anything to its left.
        ("10.0.0.5", "198.51.100.1, not-an-address", "10.0.0.5"),
        ("10.0.0.5", "198.51.100.1, unknown, 192.0.2.7", "192.0.2.7"),
        ("10.0.0.5", "198.51.100.1:443", "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4\x00", "10.0.0.5"),
        ("10.0.0.5", "999.1.1.1", "10.0.0.5"),
        ("10.0.0.5", "<script>alert(1)</script>", "10.0.0.5"),
        ("10.0.0.5", "fe80::1%eth0", "10.0.0.5"),
        ("10.0.0.5", "[2001:db8:1::42]", "10.0.0.5"),
        ("10.0.0.5", "ü" * 500, "10.0.0.5"),
        # IPv6 proxies and clients, and IPv4 clients seen through an IPv6 socket.
        ("2001:db8::1", "2001:db8:1::42", "2001:db8:1::42"),
        ("2001:db8::1", "198.51.100.1", "198.51.100.1"),
        ("::ffff:10.0.0.5", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "::ffff:198.51.100.1", "198.51.100.1"),
        # A peer just outside the trusted network is not trusted.
        ("10.0.1.5", "198.51.100.1", "10.0.1.5"),
        # A peer address the server cannot read is left as it is.
        ("", "198.51.100.1", ""),
        ("garbage", "198.51.100.1", "garbage"),
    ],
)
def test_the_client_is_the_right_most_hop_no_trusted_proxy_vouches_past(
    settings, peer, forwarded_for, client
):
    seen = _seen(settings, {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded_for})
    assert seen["REMOTE_ADDR"] == client


def test_with_no_trusted_proxies_x_forwarded_for_is_ignored_whoever_sends_it(settings):
    seen = _seen(settings, {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}, [])
    assert seen["REMOTE_ADDR"] == "10.0.0.5"


def test_the_empty_default_trusts_no_proxy():
    assert django_settings.PORTAL_TRUSTED_PROXIES == []


def test_forwarding_headers_from_an_untrusted_peer_are_dropped(settings):
    headers = {
        "HTTP_X_FORWARDED_FOR": "1.2.3.4",
        "HTTP_X_FORWARDED_HOST": "evil.example",
        "HTTP_X_FORWARDED_PROTO": "https",
    }
    direct = _seen(settings, {"REMOTE_ADDR": "203.0.113.9", **headers})
    assert not set(headers) & set(direct)
    proxied = _seen(settings, {"REMOTE_ADDR": "10.0.0.5", **headers})
    assert {name: proxied[name] for name in headers} == headers


def test_a_client_reaching_the_server_directly_cannot_claim_https(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.PORTAL_TRUSTED_PROXIES = ["10.0.0.5"]
    schemes = {}

    def view(request):
        schemes[request.META["REMOTE_ADDR"]] = request.is_secure()
        return HttpResponse()

    for peer in ("203.0.113.9", "10.0.0.5"):
        request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https")
        TrustedProxyMiddleware(view)(request)
    # The proxy's own peer entry: it sent no X-Forwarded-For, so REMOTE_ADDR stays the proxy.
    assert schemes == {"203.0.113.9": False, "10.0.0.5": True}


def test_garbage_from_a_trusted_proxy_is_logged_without_the_garbage(settings, caplog):
    caplog.set_level(logging.WARNING, logger="portal.proxies")
    _seen(settings, {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "evil\r\nforged line"})
    assert "Unreadable X-Forwarded-For hop from trusted proxy 10.0.0.5" in caplog.text
    assert "evil" not in caplog.text and "forged" not in caplog.text


def test_a_very_long_chain_of_trusted_hops_is_not_read_past_its_last_twenty():
    networks = parse_networks(["10.0.0.0/8"])
    chain = ", ".join(["198.51.100.1"] + ["10.0.0.1"] * 50)
    assert client_address("10.0.0.2", chain, networks) == "10.0.0.1"


def test_the_proxy_middleware_runs_before_every_other_middleware():
    assert django_settings.MIDDLEWARE[0] == "portal.proxies.TrustedProxyMiddleware"


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        (["10.0.0.1/8"], "host bits set"),
        (["proxy.internal"], "is not an address or a network"),
        (["10.0.0.0/33"], "is not an address or a network"),
        (["0.0.0.0/0"], "would trust every address"),
        (["::/0"], "would trust every address"),
        ([""], "is not an address or a network"),
    ],
)
def test_a_bad_trusted_proxy_entry_is_refused_by_name(entries, problem):
    with pytest.raises(ValueError, match=problem):
        parse_networks(entries)


def test_addresses_and_networks_of_both_families_are_accepted():
    networks = parse_networks(["127.0.0.1", "10.0.0.0/8", " ::1 ", "fd00::/8"])
    assert [str(n) for n in networks] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"]
