"""A webhook receiver on 127.0.0.1 for tests: a small threaded http.server.

It keeps every request it gets (headers and exact body bytes) and answers from a script of
behaviours, one per request, then ``default``: a status code, or "timeout" (hold the response
``hold_seconds``, longer than the sender's read timeout, then answer 200). Receivers in real
life deduplicate by ``webhook-id``; ``unique_ids`` is what such a receiver would have processed.

With ``together=N`` the first N requests are each held (at most ``hold_seconds``) until all N
have arrived: as each sender waits for its answer, N requests in flight at once prove N senders
working side by side. ``max_in_flight`` is the most requests it ever held at the same time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, script=(), default=200, hold_seconds=3.0, together=0):
        self.got_request = threading.Event()
        self.together = together
        self.all_together = threading.Event()
        self.max_in_flight = 0
        self._arrived = self._in_flight = 0
        self.script = list(script)
        self.default = default
        self.hold_seconds = hold_seconds
        self.requests: list[Received] = []
        self.accepted: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                seen = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    receiver.requests.append(seen)
                    behaviour = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver._arrived += 1
                    arrived = receiver._arrived
                    receiver._in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver._in_flight)
                receiver.got_request.set()
                try:
                    if arrived <= receiver.together:
                        if arrived == receiver.together:
                            receiver.all_together.set()
                        receiver.all_together.wait(receiver.hold_seconds)
                    self._answer(seen, behaviour)
                finally:
                    with receiver._lock:
                        receiver._in_flight -= 1

            def _answer(self, seen, behaviour):
                if behaviour == "timeout":
                    # Processed, but answered too late: the sender has given up on this attempt
                    # and will send it again, which the receiver must recognise by its id.
                    time.sleep(receiver.hold_seconds)
                    behaviour = 200
                if 200 <= behaviour < 300:
                    with receiver._lock:
                        receiver.accepted.append(seen)
                answer = b'{"ok": true}' if behaviour < 300 else b"not now"
                try:
                    self.send_response(behaviour)
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting ("timeout"): expected, not an error

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def unique_ids(self) -> list[str]:
        """Message ids a deduplicating receiver processed, in order (each once)."""
        return list(dict.fromkeys(r.headers["webhook-id"] for r in self.accepted))

    def processed_per_id(self) -> dict[str, int]:
        """How often each id was processed before deduplication (>1 means a resend)."""
        counts: dict[str, int] = {}
        for request in self.accepted:
            counts[request.headers["webhook-id"]] = counts.get(request.headers["webhook-id"], 0) + 1
        return counts

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
