"""Debian's Chromium and ChromeDriver for the browser tests: found, or installed with apt-get.

Browser tests never download a browser (no Selenium Manager, no vendor site): Debian's ``chromium`` and
``chromium-driver`` packages are what they drive. As root (the CI machine, the dev container) they are
installed when missing; otherwise ``BrowserUnavailable`` says which command installs them.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import DevstackError

log = logging.getLogger(__name__)

PACKAGES = ("chromium", "chromium-driver")
INSTALL = f"apt-get install -y {' '.join(PACKAGES)}"
# Chromium's own network (updates, safe browsing, sync) is refused on a closed machine, many connections
# at a time; headless, no GPU, no first-run, and /dev/shm is small in containers.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


class BrowserUnavailable(DevstackError):
    """Chromium or ChromeDriver is missing and cannot be installed here; the message says how."""


@dataclass(frozen=True)
class Browser:
    chromium: Path
    chromedriver: Path


def _found() -> Browser | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and driver:
        return Browser(Path(chromium), Path(driver))
    return None


def _apt_get(*args: str) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        log.info("apt-get %s failed: %s", " ".join(args), result.stderr.strip()[-500:])
    return result.returncode == 0


def ensure_browser() -> Browser:
    """Chromium and ChromeDriver, installing Debian's packages when missing and allowed."""
    found = _found()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BrowserUnavailable(f"Chromium and ChromeDriver are not installed; as root run: {INSTALL}")
    log.info("installing %s with apt-get (once)", " and ".join(PACKAGES))
    if not _apt_get("install", "-y", "-q", *PACKAGES) and not (
        _apt_get("update", "-q") and _apt_get("install", "-y", "-q", *PACKAGES)
    ):
        raise BrowserUnavailable(f"apt-get could not install {' '.join(PACKAGES)}; try: apt-get update && {INSTALL}")
    found = _found()
    if found is None:
        raise BrowserUnavailable(f"{' '.join(PACKAGES)} installed, but chromium or chromedriver is not on PATH")
    return found
