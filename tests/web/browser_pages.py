"""The browser side of the browser tests: Debian's Chromium (Playwright never downloads one),
logging in through the form, and what a page must never do with hostile text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, sync_playwright

from tests.web.browser_support import Site
from tests.web.signin import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = json.loads((Path(__file__).parent / "hostile_posts.json").read_text("utf-8"))["posts"]


@dataclass
class Watch:
    """What must never happen in a page: a dialog, an uncaught script error, a script or
    style the content security policy had to block (it means markup got through)."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        def on_page(page: Page) -> None:
            page.on("pageerror", lambda exc: self.errors.append(str(exc)))
            page.on("console", on_console)

        def on_console(message: Any) -> None:
            if "Content Security Policy" in message.text:
                self.blocked.append(message.text)

        context.on("dialog", on_dialog)
        context.on("page", on_page)

    def assert_clean(self) -> None:
        assert self.dialogs == [], "a dialog opened"
        assert self.errors == [], "a page script failed"
        assert self.blocked == [], "the content security policy blocked something"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; each launch has a temporary profile of its own."""
    if not CHROMIUM.exists():
        pytest.fail(f"no browser at {CHROMIUM}: scripts/install installs Debian's chromium")
    with sync_playwright() as playwright:
        # Scrollbars take their room, as in a desktop browser (Playwright hides them headless):
        # a page that only fits without one would scroll sideways for its users.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            ignore_default_args=["--hide-scrollbars"],
        )
        try:
            yield browser
        finally:
            browser.close()


def log_in(browser: Browser, site: Site, watch: Watch, handle: str) -> Page:
    """A fresh browser context (its own cookies) logged in through the login form."""
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    watch.attach(context)
    page = context.new_page()
    page.goto("/login")
    page.fill("form.login input[name=handle]", handle)
    page.fill("form.login input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{site.url}/")
    return page


def check_inert(page: Page, where: str) -> None:
    """No hostile markup came alive: no payload set window.pwned, and the page holds no inline
    script, frame, svg, image or style element, no on* attribute, no javascript: link, and
    nothing wider than the window."""
    assert page.evaluate("typeof window.pwned") == "undefined", where
    injected = page.evaluate(
        """() => ({
            inline: document.querySelectorAll("script:not([src])").length,
            frames: document.querySelectorAll("iframe, svg, main img, style").length,
            handlers: [...document.querySelectorAll("*")].filter(
                el => [...el.attributes].some(a => a.name.startsWith("on"))).length,
            links: document.querySelectorAll("a[href^='javascript:' i]").length,
            wide: document.documentElement.scrollWidth > document.documentElement.clientWidth,
        })"""
    )
    assert injected == {
        "inline": 0,
        "frames": 0,
        "handlers": 0,
        "links": 0,
        "wide": False,
    }, where


MARK = re.compile(r"\[(?:[A-Z]+|U\+[0-9A-F]{4,6})\]")


def marks_in(post: dict[str, Any]) -> int:
    """How many visible marks (``[RLO]``, ``[U+E0041]``...) the post's `shows` name."""
    return sum(len(MARK.findall(shown)) for shown in post["shows"])


def visible_marks(where: Locator) -> list[dict[str, Any]]:
    """The marks shown inside where: each one's text, size and whether it is drawn (read in one
    script, so a live refresh of the part cannot come between finding and measuring them)."""
    found: list[dict[str, Any]] = where.evaluate(
        """root => [...root.querySelectorAll(".ctl")].map(el => {
            const box = el.getBoundingClientRect(), style = getComputedStyle(el);
            return {text: el.textContent, width: box.width, height: box.height,
                    drawn: style.visibility === "visible" && style.display !== "none"
                           && Number(style.opacity) > 0 && style.color !== style.backgroundColor};
        })"""
    )
    return found


def hostile_text(post: dict[str, Any]) -> str:
    if "repeat" in post:
        return str(post["repeat"]["text"]) * int(post["repeat"]["times"])
    return str(post["text"])
