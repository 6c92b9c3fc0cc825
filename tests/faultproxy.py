"""An HTTP proxy in front of the loopback S3 server that injects faults at seeded random points.

Every request is relayed to the server unless the draw for it says otherwise:

- ``refuse``: the connection is closed before the request reaches the server;
- ``lose``: the request is carried out, then the connection is closed without an answer (a
  write happened that the client never hears of);
- ``error``: a 503 SlowDown (S3's own throttling answer) without carrying the request out;
- ``error-after``: the request is carried out, then a 500 InternalError is answered;
- ``slow``: the answer is held back for up to half a second;
- ``truncate``: the answer's body is cut in half (its Content-Length promises all of it);
- ``outage``: this request and the next ``outage_requests`` are refused (the server is down
  for longer than a client's retries last, so the operation in flight fails).

Draws come from one ``random.Random(seed)`` in the order requests arrive, so a run with one
client thread sees the same faults every time. With ``rate=0`` it is a faithful relay that
records every request in ``log`` (what benchmarks/scale.py counts).
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import urlsplit

FAULTS = ("refuse", "lose", "error", "error-after", "slow", "truncate", "outage")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@contextlib.contextmanager
def loopback_s3(access: str = "testing") -> Iterator[dict[str, str]]:
    """A real S3-compatible server (moto) on a free loopback port; yields storage options.

    Buckets are created without a region, as moto's server expects.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {"key": access, "secret": access, "endpoint_url": f"http://127.0.0.1:{port}"}
    finally:
        server.stop()


class Request(NamedTuple):
    """One relayed request: method, path (``/bucket/key?query``), bytes sent and received."""

    method: str
    path: str
    sent: int
    received: int


class FaultProxy:
    """Relays to ``upstream`` (an http:// URL); ``endpoint_url`` is where clients connect."""

    def __init__(
        self,
        upstream: str,
        seed: int,
        rate: float,
        faults: tuple[str, ...] = FAULTS,
        outage_requests: int = 40,
    ):
        self.upstream = urlsplit(upstream)
        self.rate = rate
        self.faults = faults
        self.outage_requests = outage_requests
        self._outage_left = 0
        self.enabled = True
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.log: list[Request] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Relay)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def options(self) -> dict[str, str]:
        """Storage options that send an S3 client through this proxy."""
        return {"endpoint_url": self.endpoint_url}

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def draw(self) -> tuple[str | None, float]:
        """The fault for the next request (None: relay it faithfully) and a delay in seconds."""
        with self._lock:
            self.requests += 1
            if self._outage_left and self.enabled:
                self._outage_left -= 1
                return "refuse", 0.0
            hit = self._random.random() < self.rate
            fault = self._random.choice(self.faults)
            delay = self._random.uniform(0.05, 0.5)
            if not (hit and self.enabled):
                return None, 0.0
            self.injected[fault] += 1
            if fault == "outage":
                self._outage_left = self.outage_requests
                return "refuse", 0.0
            return fault, delay


class _Relay(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect

    def log_message(self, *args) -> None:  # quiet: the test reads the counters
        pass

    def do_GET(self) -> None:
        self._relay()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _relay(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self._request_body()
        fault, delay = proxy.draw()
        if fault == "refuse":
            return self._hang_up()
        if fault == "error":
            return self._answer_error(503, "SlowDown", "Please reduce your request rate.")
        upstream = http.client.HTTPConnection(
            proxy.upstream.hostname, proxy.upstream.port, timeout=60
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        with proxy._lock:
            proxy.log.append(Request(self.command, self.path, len(body), len(data)))
        if fault == "lose":
            return self._hang_up()
        if fault == "error-after":
            return self._answer_error(500, "InternalError", "We encountered an internal error.")
        if fault == "slow":
            time.sleep(delay)
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        length = answer.getheader("Content-Length") if self.command == "HEAD" else len(data)
        self.send_header("Content-Length", str(length or 0))
        self.end_headers()
        if self.command == "HEAD":
            return None
        if fault == "truncate" and len(data) > 1:
            self.wfile.write(data[: len(data) // 2])
            return self._hang_up()
        self.wfile.write(data)
        return None

    def _request_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer_error(self, status: int, code: str, message: str) -> None:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(xml)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(xml)

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)
