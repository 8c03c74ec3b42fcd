"""Live mode's page: a small HTTP server (the standard library's) that shows the live dream
as MJPEG (``/stream.mjpg``, usable as a browser source in streaming software), its newest
frame (``/frame.jpg``), and the frames a second, latency and settings (``/status.json``,
polled by a few lines of plain JavaScript on ``/``)."""
from __future__ import annotations

import errno
import html
import http.server
import io
import json
import logging
import socket
import sys
import threading

import numpy as np
from PIL import Image

from ..errors import DeepDreamError, PortInUseError

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
BOUNDARY = "deepdreamframe"

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>deepdream live: {title}</title>
<style>
body {{ margin: 0; background: #111; color: #ccc; font: 14px sans-serif; }}
img {{ display: block; width: 100vw; max-height: 92vh; object-fit: contain; }}
#status {{ padding: 4px 8px; white-space: pre-wrap; }}
</style></head>
<body><img src="/stream.mjpg" alt="the live dream"><div id="status">{status}</div>
<script>
async function poll() {{
  try {{
    const s = await (await fetch("/status.json")).json();
    document.getElementById("status").textContent =
      s.fps.toFixed(1) + " frames a second, latency " + s.latency.toFixed(2) + " s, " +
      s.dropped + " dropped, " + s.frames + " dreamed | " + s.settings;
  }} catch (e) {{}}
}}
setInterval(poll, 1000);
</script></body></html>
"""


class LiveServer:
    """The page on ``host``:``port``, bound at once (before any other work) and served on
    threads of its own from ``start``. ``publish`` hands it each dreamed frame; ``status``
    (a callable returning a dict) gives what the page shows beside it. Raises
    PortInUseError in one line if the port is taken, DeepDreamError if the host cannot
    be served on."""

    def __init__(self, host: str, port: int, status):
        self.status = status
        self.jpeg, self.count = b"", 0          # the newest frame, and how many came
        self.changed = threading.Condition()
        self.closing = False
        handler = type("Handler", (_Handler,), {"live": self})
        try:
            server = type("Server", (_Server,), {"address_family": _family(host, port)})
            self.httpd = server((host, port), handler)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUseError(f"port {port} on {host} is in use: stop what serves "
                                     "there, or give another with --serve PORT") from None
            if isinstance(e, socket.gaierror) or e.errno == errno.EADDRNOTAVAIL:
                raise DeepDreamError(f"cannot serve on --host {host}: {e.strerror}") \
                    from None
            raise
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="live-serve")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        self._thread.start()
        if self.host in LOOPBACK:
            log.info("the live dream is shown at %s", self.url)
        else:
            log.info("the live dream is shown at %s -- on --host %s: open to other "
                     "machines of the network", self.url, self.host)

    def publish(self, image: np.ndarray, quality: int = 85) -> None:
        """Show ``image`` (H x W x 3 uint8 RGB) to every viewer, encoded once as JPEG."""
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        with self.changed:
            self.jpeg, self.count = buffer.getvalue(), self.count + 1
            self.changed.notify_all()

    def next_frame(self, seen: int, timeout: float = 1.0) -> tuple[int, bytes] | None:
        """The newest frame after frame ``seen`` as (its count, JPEG), waiting up to
        ``timeout`` seconds for one; None if none came or the server is closing."""
        with self.changed:
            if self.count <= seen and not self.closing:
                self.changed.wait(timeout)
            if self.closing or self.count <= seen:
                return None
            return self.count, self.jpeg

    def close(self) -> None:
        with self.changed:
            self.closing = True
            self.changed.notify_all()
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()


def _family(host: str, port: int) -> socket.AddressFamily:
    """The address family that serves on ``host``: IPv6 for an IPv6 address (``::1``) or a
    name with IPv6 addresses only, else IPv4. Raises socket.gaierror for a host that cannot
    be found."""
    found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    families = [family for family, *_ in found]
    return socket.AF_INET if socket.AF_INET in families else families[0]


class _Server(http.server.ThreadingHTTPServer):
    """The standard library's threaded HTTP server, each viewer served on a thread that
    dies with us, and a viewer that goes away mid-answer (a page closed, a stream
    stopped) a line of the debug log, not a traceback on the terminal."""
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):     # a broken pipe, a reset connection
            log.debug("a viewer at %s went away: %s", client_address[0], error)
        else:
            log.warning("the page could not answer a viewer at %s: %s", client_address[0],
                        error)
            log.debug("the page's error", exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    live: LiveServer
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:   # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/":
            status = self.live.status()
            self._send(_PAGE.format(title=html.escape(status.get("source", "")),
                                    status=html.escape(status.get("settings", ""))).encode(),
                       "text/html; charset=utf-8")
        elif path == "/status.json":
            self._send(json.dumps(self.live.status()).encode(), "application/json")
        elif path == "/frame.jpg":
            if not self.live.jpeg:
                self.send_error(503, "no frame dreamed yet")
            else:
                self._send(self.live.jpeg, "image/jpeg")
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self.send_error(404)

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        """multipart/x-mixed-replace: each new frame as a JPEG part, until the viewer goes
        or the server closes."""
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seen = 0
        while not self.live.closing:     # a viewer that goes away: see _Server
            frame = self.live.next_frame(seen)
            if frame is None:
                continue
            seen, jpeg = frame
            self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                             f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg +
                             b"\r\n")
            self.wfile.flush()

    def log_message(self, format: str, *args) -> None:   # noqa: A002 (http.server's name)
        log.debug("%s %s", self.address_string(), format % args)
