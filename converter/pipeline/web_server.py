"""`fomm-convert web --serve`: a written site served read-only on 127.0.0.1, every
response cross-origin isolated (the headers of runtime/browser/server.py: threaded wasm
needs them). Nothing but files under the site's folder is served."""
from __future__ import annotations

import mimetypes
import shutil
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from ..runtime.browser.server import ISOLATION, TYPES
from .web import SITE_JSON, WebError


def site_server(site, port: int = 0) -> ThreadingHTTPServer:
    """A server (not yet serving) of `site` on 127.0.0.1:`port` (0: a free one)."""
    root = Path(site).resolve()
    if not (root / SITE_JSON).is_file():
        raise WebError(f"{site}: no {SITE_JSON}: not a site written by `fomm-convert web`")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # each file the page loads is not worth a line
            pass

        def do_GET(self):
            self.respond(send_body=True)

        def do_HEAD(self):
            self.respond(send_body=False)

        def respond(self, send_body: bool):
            relative = unquote(self.path.split("?", 1)[0]).lstrip("/") or "index.html"
            path = (root / relative).resolve()
            if path.is_dir():
                path = path / "index.html"
            found = path.is_file() and path.is_relative_to(root)
            kind = (TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
                    or "application/octet-stream") if found else "text/plain"
            self.send_response(200 if found else 404)
            for key, value in ISOLATION.items():
                self.send_header(key, value)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(path.stat().st_size if found else 0))
            self.end_headers()
            if not (found and send_body):
                return
            try:  # streamed: a vox model file is 100+ MB
                with open(path, "rb") as f:
                    shutil.copyfileobj(f, self.wfile)
            except (BrokenPipeError, ConnectionResetError):  # the page went away
                pass

    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise WebError(f"--port {port}: cannot listen on 127.0.0.1 ({exc.strerror})") from None
    server.daemon_threads = True
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"
