"""Headless Debian Chromium on one page, in a fresh profile it removes when it is done."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import BrowserError

INSTALL = "apt-get install chromium"
# No network beyond the page's own server, no first-run or background work.
FLAGS = ("--headless=new", "--no-sandbox", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic",
         "--disable-default-apps", "--mute-audio")
# WebGPU on SwiftShader (Vulkan on the CPU): every machine has it, no GPU needed.
WEBGPU_FLAGS = ("--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader",
                "--use-webgpu-adapter=swiftshader")


def find_chromium() -> str:
    """The browser: $FOMM_CHROMIUM, else chromium on PATH (one-line error naming the fix)."""
    found = shutil.which(os.environ.get("FOMM_CHROMIUM") or "chromium")
    if not found:
        raise BrowserError(f"no chromium found: {INSTALL} (or set FOMM_CHROMIUM)")
    return found


class Chromium:
    """`url` in a new browser; `flags` and `popen` (subprocess.Popen's keywords) add to its
    command line and process (the tests' DevTools pipe)."""

    def __init__(self, url: str, webgpu: bool = False, flags=(), **popen):
        browser = find_chromium()
        self.profile = Path(tempfile.mkdtemp(prefix="fomm-chromium-"))
        args = [browser, *FLAGS, *(WEBGPU_FLAGS if webgpu else ()), *flags,
                f"--user-data-dir={self.profile}", url]
        # Its stderr is GPU and dbus noise; a crash shows as the exit code.
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True,
                                        **popen)

    def exited(self) -> str | None:
        """None while it runs; else how it ended."""
        code = self.process.poll()
        return None if code is None else f"chromium exited with code {code}"

    def close(self):
        try:  # its renderer and GPU processes are in its process group, even once it died
            os.killpg(self.process.pid, 9)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)
