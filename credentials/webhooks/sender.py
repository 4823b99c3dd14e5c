"""Send one HTTP POST without being turned against our own network (no SSRF).

The host is resolved at send time and every address it resolves to is checked; the connection
then goes to the checked address itself, so a DNS answer that changes between check and
connect (rebinding) cannot redirect it. TLS is verified against the URL's host name. Redirects
are never followed, proxies from the environment are never used, and the response is read only
up to a bound.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

EXCERPT_BYTES = 1024
# A name that resolves to many addresses must not multiply the time one send may take.
MAX_ADDRESSES_TRIED = 3

# Addresses cloud providers serve instance metadata (and credentials) on.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedTarget(Exception):
    """The URL is not one we deliver to. The message names why, never a secret."""


@dataclass(frozen=True)
class Outcome:
    """What one POST got: a status and the start of the body, or an error; and how long."""

    status: int | None
    excerpt: str
    error: str
    latency_ms: int
    address: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is not a public destination (a short phrase), or None if it is one.

    IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4, Teredo) are judged as themselves.
    """
    if address.version == 6:
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.ip_address(address.packed[-4:])
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is not None:
            return refusal(embedded)
    if address in _METADATA:
        return "a cloud metadata address"
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private-network address"),
    )
    for attribute, phrase in checks:
        if getattr(address, attribute):
            return phrase
    if not address.is_global:
        return "not a public internet address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to now, checked: RefusedTarget if any is not public.

    One bad address refuses the whole name: a host that answers both public and private
    addresses is exactly how rebinding attacks start. The check is skipped when
    PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS is on (tests, the local demo).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise RefusedTarget(f"the host name {host[:100]!r} does not resolve") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for text in addresses:
            why = refusal(ipaddress.ip_address(text.split("%", 1)[0]))
            if why:
                # The class of address only: the receipt is read by staff who may set endpoint
                # URLs, and naming the address would let them map the internal network by DNS.
                raise RefusedTarget(f"{host[:100]} resolves to {why}")
    if not addresses:
        raise RefusedTarget(f"the host name {host[:100]!r} does not resolve")
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to one already-checked address, whatever DNS says by now."""

    def __init__(self, host, port, *, address, connect_timeout, read_timeout):
        super().__init__(host, port, timeout=connect_timeout)
        self._address, self._read_timeout = address, read_timeout

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.settimeout(self._read_timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, connect_timeout, read_timeout):
        super().__init__(host, port, timeout=connect_timeout, context=ssl.create_default_context())
        self._address, self._read_timeout = address, read_timeout

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # Certificate and host name are checked against the URL's host, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        self.sock.settimeout(self._read_timeout)


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST ``body`` to ``url`` under the SSRF rules above. Never raises for network trouble:
    a refusal, a timeout or a broken connection comes back as ``Outcome.error``."""
    started = time.monotonic()

    def done(status=None, excerpt="", error="", address=""):
        latency = int((time.monotonic() - started) * 1000)
        return Outcome(status, excerpt, error[:300], latency, address)

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return done(error="refused: only http:// and https:// URLs with a host are delivered to")
    if parts.username or parts.password:
        return done(error="refused: user names and passwords are not allowed in the URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = resolve(parts.hostname, port)
    except ValueError:
        return done(error="refused: the URL's port is not a number from 0 to 65535")
    except RefusedTarget as refused:
        return done(error=f"refused: {refused}")
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rsplit("@", 1)[-1]
    # One budget for the whole send, connecting, sending, status line, headers and body alike:
    # the socket timeouts bound each wait, not their sum, and a receiver trickling a header
    # byte at a time would otherwise hold a worker for as long as it likes.
    budget = settings.PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS
    budget += settings.PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS
    deadline = started + budget
    address, last_error = "", "could not connect"
    for address in addresses[:MAX_ADDRESSES_TRIED]:
        if time.monotonic() >= deadline:
            break
        connection = connection_class(
            parts.hostname,
            port,
            address=address,
            connect_timeout=settings.PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS,
            read_timeout=settings.PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS,
        )
        watchdog = _Watchdog(connection, deadline - time.monotonic())
        try:
            try:
                connection.connect()
            except (OSError, ssl.SSLError) as error:
                last_error = _describe(error, connecting=True, cut=watchdog.fired, budget=budget)
                continue
            try:
                connection.putrequest("POST", target, skip_host=True, skip_accept_encoding=True)
                connection.putheader("Host", host_header)
                for name, value in {**headers, "content-length": str(len(body))}.items():
                    connection.putheader(name, value)
                connection.endheaders(body)
                response = connection.getresponse()
                raw = _read_bounded(response, settings.PORTAL_WEBHOOK_MAX_RESPONSE_BYTES, deadline)
            except (OSError, http.client.HTTPException, ssl.SSLError) as error:
                error_text = _describe(error, connecting=False, cut=watchdog.fired, budget=budget)
                return done(error=error_text, address=address)
            if watchdog.fired:
                return done(error=_over_budget(budget), address=address)
            excerpt = raw[:EXCERPT_BYTES].decode("utf-8", "replace")
            return done(status=response.status, excerpt=excerpt, address=address)
        finally:
            watchdog.cancel()
            connection.close()
    return done(error=last_error, address=address)


class _Watchdog:
    """Shuts the connection's socket down when the send's budget runs out, wherever it is
    waiting then; a blocked read returns at once and the send ends as an error."""

    def __init__(self, connection, seconds: float):
        self._connection = connection
        self._fired = threading.Event()
        self._timer = threading.Timer(max(seconds, 0.0), self._cut)
        self._timer.daemon = True
        self._timer.start()

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def _cut(self):
        self._fired.set()
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self):
        self._timer.cancel()


def _over_budget(budget: int) -> str:
    return f"took longer than {budget} s in all; the delivery was cut off"


def _read_bounded(response, limit: int, deadline: float) -> bytes:
    """Read at most ``limit`` bytes, and stop at the send's deadline (``time.monotonic``)."""
    chunks, size = [], 0
    while size < limit and time.monotonic() < deadline:
        chunk = response.read1(min(8192, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _describe(error: BaseException, *, connecting: bool, cut: bool = False, budget: int = 0) -> str:
    if cut:
        return _over_budget(budget)
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out connecting" if connecting else "timed out waiting for the response"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {error.verify_message}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"{'could not connect' if connecting else 'connection failed'}: {type(error).__name__}"
