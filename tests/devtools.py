"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
commands in on fd 3, replies out on fd 4, each JSON message ended by a NUL byte): no
driver package, no port. For the web page tests (test_web.py)."""
from __future__ import annotations

import base64
import json
import os
import select
import time

from fomm_convert.runtime.browser.chromium import Chromium


class DevToolsError(RuntimeError):
    pass


class Browser:
    """One headless Chromium (the runtime's launcher: a fresh profile, removed on close)
    with extra `flags`, driven over the pipe."""

    def __init__(self, flags=()):
        to_browser, from_browser = os.pipe(), os.pipe()

        def as_fds_3_and_4():  # in the child, before exec
            os.dup2(to_browser[0], 3)
            os.dup2(from_browser[1], 4)
        self.chromium = Chromium("about:blank", flags=("--remote-debugging-pipe",
                                                       "--window-size=1000,760", *flags),
                                 pass_fds=(3, 4), preexec_fn=as_fds_3_and_4)
        os.close(to_browser[0])
        os.close(from_browser[1])
        self._out = os.fdopen(to_browser[1], "wb", buffering=0)
        self._in = from_browser[0]
        self._buffer = b""
        self._ids = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict:
        self._ids += 1
        message = {"id": self._ids, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, method)
            if reply.get("id") == self._ids:
                if "error" in reply:
                    raise DevToolsError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read(self, deadline: float, what: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise DevToolsError(f"no answer to {what}")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise DevToolsError(f"chromium closed the pipe during {what}")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def page(self, url: str, before_load: str = "") -> "Page":
        return Page(self, url, before_load)

    def close(self):
        self.chromium.close()
        self._out.close()
        os.close(self._in)


class Page:
    """A tab at `url`; `before_load` is script run in it before the page's own."""

    def __init__(self, browser: Browser, url: str, before_load: str = ""):
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget",
                                    {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable")
        if before_load:
            self.send("Page.addScriptToEvaluateOnNewDocument", {"source": before_load})
        self.send("Page.navigate", {"url": url})

    def send(self, method: str, params: dict | None = None, timeout: float = 60) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def eval(self, expression: str, timeout: float = 60):
        """The JSON value of an expression (a promise is awaited)."""
        reply = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                               "returnByValue": True}, timeout)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description") or details["text"])
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 120, what: str = ""):
        """The expression's value once truthy, polled every 0.2 s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.2)
        raise DevToolsError(f"waited {timeout:.0f} s for {what or expression}")

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
