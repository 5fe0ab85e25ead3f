"""`fomm-convert web --serve`: a written site served read-only on 127.0.0.1, as the browser
backends' server serves files (runtime/browser/server.py: served_file, send): every
response cross-origin isolated (threaded wasm needs it), nothing outside the site's folder,
files streamed, a malformed path answered 400 with one line on stderr."""
from __future__ import annotations

from http.server import ThreadingHTTPServer
from pathlib import Path

from ..runtime.browser.server import (BadPath, QuietHandler, bad_request, send, served_file,
                                      url_path)
from .web import SITE_JSON, WebError


def site_server(site, port: int = 0) -> ThreadingHTTPServer:
    """A server (not yet serving) of `site` on 127.0.0.1:`port` (0: a free one)."""
    root = Path(site).resolve()
    if not (root / SITE_JSON).is_file():
        raise WebError(f"{site}: no {SITE_JSON}: not a site written by `fomm-convert web`")

    class Handler(QuietHandler):
        def do_GET(self):
            self.respond(head_only=False)

        def do_HEAD(self):
            self.respond(head_only=True)

        def respond(self, head_only: bool):
            try:
                path = served_file(root, url_path(self.path))
            except BadPath as exc:
                return bad_request(self, exc)
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
