"""Finding or installing Debian's Chromium for the browser tests (never a browser download)."""

from __future__ import annotations

import pytest

from devstack import browser


def _which(found: dict[str, str]) -> object:
    return lambda name: found.get(name)


def test_an_installed_chromium_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "devstack.browser.shutil.which", _which({"chromium": "/usr/bin/chromium", "chromedriver": "/d"})
    )
    found = browser.ensure_browser()
    assert (str(found.chromium), str(found.chromedriver)) == ("/usr/bin/chromium", "/d")


def test_without_root_the_message_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("devstack.browser.shutil.which", _which({"apt-get": "/usr/bin/apt-get"}))
    monkeypatch.setattr("devstack.browser.os.geteuid", lambda: 1000)
    with pytest.raises(browser.BrowserUnavailable, match="apt-get install -y chromium chromium-driver"):
        browser.ensure_browser()


def test_as_root_the_packages_are_installed_then_found(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: dict[str, str] = {"apt-get": "/usr/bin/apt-get"}
    calls: list[tuple[str, ...]] = []

    def apt_get(*args: str) -> bool:
        calls.append(args)
        installed.update(chromium="/usr/bin/chromium", chromedriver="/usr/bin/chromedriver")
        return True

    monkeypatch.setattr("devstack.browser.shutil.which", lambda name: installed.get(name))
    monkeypatch.setattr("devstack.browser.os.geteuid", lambda: 0)
    monkeypatch.setattr(browser, "_apt_get", apt_get)
    assert browser.ensure_browser().chromedriver.name == "chromedriver"
    assert calls == [("install", "-y", "-q", "chromium", "chromium-driver")]
