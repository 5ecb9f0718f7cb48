"""A local photo server for the download tests (no internet): `http.server` in a thread.

Routes: /img/<name> (a photo from `photos`, or a file of `folder`), /redirect?to=<url> (302),
/huge (announces 10 GB), /slow (trickles bytes), /html (a web page), /flaky/<name> (503 the
first time, then the photo), anything else 404. `hits` counts requests per path.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from PIL import Image


def jpeg(colour=(200, 40, 40), size=(48, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


class PhotoServer:
    def __init__(self, photos: dict[str, bytes] | None = None, folder: Path | None = None):
        self.photos = dict(photos or {})
        self.folder = folder
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: bytes, kind: str, length: int | None = None):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                server.hits[path] += 1
                try:
                    if path.startswith("/img/"):
                        data = server.photo(path[5:])
                        if data is None:
                            return self._send(404, b"not found", "text/plain")
                        return self._send(200, data, "image/jpeg")
                    if path == "/redirect":
                        target = parse_qs(parts.query)["to"][0]
                        self.send_response(302)
                        self.send_header("Location", target)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if path == "/huge":
                        return self._send(200, b"\xff\xd8" + b"\0" * 1000, "image/jpeg",
                                          length=10 * 2**30)
                    if path == "/slow":
                        self.send_response(200)
                        self.send_header("Content-Type", "image/jpeg")
                        self.send_header("Content-Length", "100000")
                        self.end_headers()
                        for _ in range(200):
                            self.wfile.write(b"\0")
                            self.wfile.flush()
                            time.sleep(0.05)
                        return
                    if path == "/html":
                        return self._send(200, b"<html><body>a shop</body></html>",
                                          "text/html; charset=utf-8")
                    if path.startswith("/flaky/"):
                        if server.hits[path] == 1:
                            return self._send(503, b"busy", "text/plain")
                        data = server.photo(path[7:])
                        return self._send(200, data or b"", "image/jpeg")
                    return self._send(404, b"not found", "text/plain")
                except (BrokenPipeError, ConnectionResetError):
                    return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def photo(self, name: str) -> bytes | None:
        if name in self.photos:
            return self.photos[name]
        if self.folder is not None and "/" not in name and ".." not in name:
            file = self.folder / name
            if file.is_file():
                return file.read_bytes()
        return None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def __enter__(self) -> "PhotoServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
