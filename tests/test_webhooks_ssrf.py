"""Deliveries never reach loopback, private, link-local, metadata or other non-public addresses
(with PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS off), judged on the address resolved at send time."""

import ipaddress
import socket

import pytest

from credentials import lifecycle
from credentials.webhooks import sender
from tests.receiver import Receiver

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.10.20", "link-local"),
    ("fe80::1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address refused, not one bound)
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "public"),  # carrier-grade NAT: shared, not the internet
    ("192.0.2.10", "private"),  # documentation range (Python counts it as private use)
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
]


@pytest.mark.parametrize(("address", "phrase"), REFUSED, ids=[a for a, _ in REFUSED])
def test_each_non_public_address_class_is_refused(address, phrase):
    why = sender.refusal(ipaddress.ip_address(address))
    assert why is not None and phrase in why


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert sender.refusal(ipaddress.ip_address(address)) is None


@pytest.fixture
def strict(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    settings.PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS = 2
    settings.PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS = 2


def test_a_host_name_that_resolves_to_loopback_is_refused_and_nothing_is_sent(strict):
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        outcome = sender.post(f"http://localhost:{port}/hooks", body=b"{}", headers={})
    assert outcome.status is None
    assert outcome.error.startswith("refused: localhost resolves to")
    assert "loopback" in outcome.error
    assert receiver.requests == []


def test_a_literal_private_address_in_the_url_is_refused(strict):
    with Receiver() as receiver:
        outcome = sender.post(receiver.url, body=b"{}", headers={})
    assert "refused" in outcome.error and "loopback" in outcome.error
    assert receiver.requests == []


def test_a_name_resolving_to_public_and_private_addresses_is_refused(strict, monkeypatch):
    def answer(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", answer)
    outcome = sender.post("https://rebind.example/hook", body=b"{}", headers={})
    assert outcome.error == "refused: rebind.example resolves to a private-network address"
    assert "10.0.0.7" not in outcome.error  # the receipt does not map the internal network


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(settings, monkeypatch):
    """DNS rebinding: the first answer is checked and pinned; a later answer is never used."""
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    answers = iter(["93.184.215.14", "127.0.0.1"])
    looked_up, connected = [], []

    def answer(host, port, *args, **kwargs):
        address = next(answers)
        looked_up.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    def connect(address, timeout=None, *args, **kwargs):
        connected.append(address[0])
        raise ConnectionRefusedError

    monkeypatch.setattr(socket, "getaddrinfo", answer)
    monkeypatch.setattr(socket, "create_connection", connect)
    outcome = sender.post("http://rebind.example/hook", body=b"{}", headers={})
    assert looked_up == ["93.184.215.14"]
    assert connected == ["93.184.215.14"]
    assert outcome.error == "connection refused"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://example.com/x", "only http:// and https://"),
        ("http://user:pw@example.com/x", "user names and passwords"),
        ("http://example.com:99999/x", "port"),
        ("http://does-not-exist.invalid/x", "does not resolve"),
    ],
)
def test_urls_we_never_deliver_to_are_refused_with_a_reason(strict, url, error):
    outcome = sender.post(url, body=b"{}", headers={})
    assert outcome.status is None and error in outcome.error


def test_redirects_are_not_followed(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with Receiver(default=302) as receiver:
        outcome = sender.post(receiver.url, body=b"{}", headers={})
    assert outcome.status == 302 and not outcome.ok
    assert len(receiver.requests) == 1


def test_a_slow_receiver_times_out_and_a_large_answer_is_cut(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS = 0.5
    with Receiver(script=["timeout"], hold_seconds=2) as receiver:
        outcome = sender.post(receiver.url, body=b"{}", headers={})
    assert outcome.status is None and outcome.error == "timed out waiting for the response"
    assert outcome.latency_ms < 1900


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/h", "https://10.0.0.5/h", "http://[::1]/h", "http://[fe80::1]/"]
)
def test_a_literal_non_public_address_is_refused_when_the_endpoint_is_saved(strict, url):
    with pytest.raises(lifecycle.InvalidRequest, match="only to public internet addresses"):
        lifecycle.check_endpoint_url(url)


def test_saving_allows_names_and_public_addresses_and_private_ones_when_allowed(strict, settings):
    lifecycle.check_endpoint_url("https://hooks.example.com/h")  # judged when sent
    lifecycle.check_endpoint_url("https://93.184.215.14/h")
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    lifecycle.check_endpoint_url("http://127.0.0.1:8000/h")


def test_a_receiver_trickling_its_headers_is_cut_off_at_the_send_budget(settings):
    """Each byte comes well inside the read timeout, so only a budget for the whole send stops
    it; the server gives up by itself after 20 s, so a regression fails instead of hanging."""
    import threading
    import time

    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS = 1
    settings.PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS = 1
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def trickle():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            ends = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < ends:
                try:
                    conn.sendall(b"a")
                except OSError:
                    return  # the sender hung up: what the budget is for
                time.sleep(0.2)

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    try:
        outcome = sender.post(f"http://127.0.0.1:{port}/hook", body=b"{}", headers={})
    finally:
        stop.set()
        server.join(timeout=25)
        listener.close()
    assert outcome.status is None and not outcome.ok
    assert outcome.error == "took longer than 2 s in all; the delivery was cut off"
