"""`fomm-convert web --serve`: a written site served read-only on 127.0.0.1, as the browser
backends' server serves files (runtime/browser/server.py: served_file, send): every
response cross-origin isolated (threaded wasm needs it), nothing outside the site's folder,
files streamed."""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from ..runtime.browser.server import send, served_file
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
            self.respond(head_only=False)

        def do_HEAD(self):
            self.respond(head_only=True)

        def respond(self, head_only: bool):
            path = served_file(root, unquote(self.path.split("?", 1)[0]).lstrip("/"))
            if path is None:
                send(self, 404, head_only=head_only)
            else:
                send(self, 200, path, head_only=head_only)

    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise WebError(f"--port {port}: cannot listen on 127.0.0.1 ({exc.strerror})") from None
    server.daemon_threads = True
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"
