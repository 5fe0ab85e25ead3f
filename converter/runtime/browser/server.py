"""The local server between a browser backend and its harness page (or any local page).

Bound to 127.0.0.1 (a free port unless given), it serves folders read-only under URL
prefixes (the backends: /web/ the web runtime folder, /bundle/ the model files; a root
under "" serves every other path) and the harness API: /api/config (what to load),
/api/ready (the runtime's accelerator report), /api/job (a long poll handing out queued
calls), /api/result, /api/error and /api/log. Every response carries COOP same-origin and
COEP require-corp: threaded wasm needs a cross-origin isolated page.
"""
from __future__ import annotations

import json
import mimetypes
import queue
import re
import shutil
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from . import protocol

# A job poll is answered "nothing yet" after this long; the page asks again at once.
POLL_SECONDS = 20
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".html": "text/html; charset=utf-8", ".json": "application/json"}
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin",
             "Cross-Origin-Embedder-Policy": "require-corp",
             "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-store"}


class BadPath(ValueError):
    """A request target that is no URL path of a file (answered 400)."""


_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_MAX, _NAME_MAX = 4096, 255  # Linux's limits on a path and on one name in it, in bytes


def url_path(target: str) -> str:
    """The decoded path of a request target, without its leading '/', query or fragment;
    BadPath when it is malformed: not a path, characters a URL does not hold, a '%' without
    two hex digits, not UTF-8 once decoded, a control character (NUL included) or longer
    than a file path can be."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        raise BadPath("not a path (it must start with '/')")
    if not path.isascii() or any(c <= " " or c == "\x7f" for c in path):
        raise BadPath("characters a URL does not hold")
    if _PERCENT.search(path):
        raise BadPath("a '%' not followed by two hex digits")
    try:
        text = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise BadPath("not UTF-8 once decoded") from None
    if any(c < " " or c == "\x7f" for c in text):
        raise BadPath("a control character once decoded")
    parts = text.encode().split(b"/")
    if len(text.encode()) > _PATH_MAX or max(map(len, parts)) > _NAME_MAX:
        raise BadPath("longer than a file path can be")
    return text.lstrip("/")


def served_file(base: Path, relative: str) -> Path | None:
    """The file a URL path (relative to `base`, from url_path) names: a folder's
    index.html; None when it is missing, unreadable or resolves outside `base`."""
    try:
        path = (base / (relative or "index.html")).resolve()
        if path.is_dir():
            path = path / "index.html"
        return path if path.is_file() and path.is_relative_to(base) else None
    except (OSError, RuntimeError):  # a link loop, a name the file system refuses
        return None


class QuietHandler(BaseHTTPRequestHandler):
    """Logs nothing of the traffic (the page's files and calls are not the user's business),
    one line on stderr for each request refused as malformed."""

    def log_message(self, *args):
        pass

    def log_error(self, format, *args):  # the request line itself is malformed
        sys.stderr.write(f"{self.client_address[0]}: {format % args}\n")


def bad_request(handler: BaseHTTPRequestHandler, reason) -> None:
    """Answer 400 and say so in one line on stderr (the servers log nothing else)."""
    sys.stderr.write(f"{handler.client_address[0]}: 400 for {handler.path[:80]!r}: "
                     f"{reason}\n")
    send(handler, 400, f"bad request: {reason}\n".encode(), "text/plain; charset=utf-8")


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes | Path = b"",
         kind: str | None = None, head_only: bool = False):
    """One cross-origin isolated response; a file body is streamed (model files are 100+
    MB), typed by its suffix unless `kind` is given."""
    is_file = isinstance(body, Path)
    if kind is None:
        kind = ((TYPES.get(body.suffix) or mimetypes.guess_type(body.name)[0]) if is_file
                else None) or "application/octet-stream"
    handler.send_response(status)
    for key, value in ISOLATION.items():
        handler.send_header(key, value)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(body.stat().st_size if is_file else len(body)))
    handler.end_headers()
    if head_only:
        return
    try:
        if is_file:
            with open(body, "rb") as f:
                shutil.copyfileobj(f, handler.wfile)
        else:
            handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):  # the page went away
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a browser going away is not
            super().handle_error(request, client_address)


class HarnessServer:
    """Serves `roots` ({URL prefix: folder}); hands `config` to the page; queues jobs and
    collects the replies."""

    def __init__(self, roots: Mapping[str, Path], config: dict | None = None, port: int = 0):
        self.roots = {prefix: Path(folder).resolve() for prefix, folder in roots.items()}
        self.config = config or {}
        self.jobs: queue.Queue = queue.Queue()
        self.results: dict[int, tuple[dict, dict]] = {}
        self.errors: list[str] = []
        self.logs: list[tuple[str, str]] = []
        self.ready: dict | None = None
        self.changed = threading.Condition()
        self.closing = False
        self.httpd = _Server(("127.0.0.1", port), _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def receive(self, path: str, body: bytes) -> bool:
        """Record what the page POSTed to an API path (False: no such path); wakes waiters."""
        with self.changed:
            if path == "/api/result":
                header, tensors = protocol.decode(body)
                self.results[header["id"]] = header, tensors
            elif path == "/api/ready":
                self.ready = json.loads(body)
            elif path == "/api/error":
                self.errors.append(json.loads(body)["message"])
            elif path == "/api/log":
                entry = json.loads(body)
                self.logs.append((entry["level"], entry["text"]))
            else:
                return False
            self.changed.notify_all()
        return True

    def file(self, target: str) -> Path | None:
        """The served file of a request target, or None (missing, or outside its folder);
        BadPath when the target is malformed."""
        relative = url_path(target)
        prefix, _, rest = relative.partition("/")
        if prefix in self.roots and prefix:
            return served_file(self.roots[prefix], rest)
        return served_file(self.roots[""], relative) if "" in self.roots else None

    def close(self):
        self.closing = True
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: HarnessServer):
    class Handler(QuietHandler):
        # Headers and body go out as two writes: with Nagle's algorithm the body waits for
        # the browser's delayed ACK (~25 ms per call).
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"  # keep-alive: no new connection per call

        def reply(self, status: int, body: bytes | Path = b"", kind: str | None = None):
            send(self, status, body, kind)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/api/config":
                return self.reply(200, json.dumps(server.config).encode(), TYPES[".json"])
            if path == "/api/job":
                return self.job()
            try:
                found = server.file(self.path)
            except BadPath as exc:
                return bad_request(self, exc)
            self.reply(404) if found is None else self.reply(200, found)

        def job(self):
            if server.closing:
                return self.reply(410)
            try:
                body = server.jobs.get(timeout=POLL_SECONDS)
            except queue.Empty:
                return self.reply(204)
            if body is None:  # close() wakes the poll
                return self.reply(410)
            self.reply(200, body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.reply(204 if server.receive(self.path, body) else 404)

    return Handler
