"""The operator console in a real browser: Debian's chromium, driven by Playwright, against the
three services and the console as separate processes on the real Kafka and Redis.

Every test that fails leaves a screenshot of its page in CONSOLE_SCREENSHOTS_DIR (default
.local/screenshots/). With CONSOLE_DOC_IMAGES set to a folder, the segment builder and the
sync report tests also save the README's screenshots there.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cohort_shared.testing import ServiceProcesses, free_port

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS_DIR", ".local/screenshots"))


@pytest.fixture(scope="module")
def console_url(stack: ServiceProcesses) -> Iterator[str]:
    """The console as its own process, pointed at the stack's services (delivery included)."""
    stack.start("delivery")
    port = free_port()
    stack.urls["console"] = f"http://127.0.0.1:{port}"
    stack.logs["console"] = stack.logs["ingest"].with_name("console.log")
    stack.start("console", CONSOLE_PORT=str(port), CONSOLE_INGEST_URL=stack.urls["ingest"],
                CONSOLE_IDENTITY_URL=stack.urls["identity_resolution"], CONSOLE_SEGMENT_URL=stack.urls["segment_store"],
                CONSOLE_DELIVERY_URL=stack.urls["delivery"], CONSOLE_DEFAULT_WORKSPACE="default")
    stack.wait_ready("delivery")
    stack.wait_ready("console")
    yield stack.urls["console"]
    stack.stop("console")
    stack.stop("delivery")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: `deploy/local/stack.sh install` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser, console_url: str, request) -> Iterator:
    """A fresh browser context (no cookies) on the console; a screenshot if the test fails."""
    context = browser.new_context(base_url=console_url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    failed = getattr(request.node, "report_call", None)
    if failed is None or failed.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        opened.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.fixture
def admin(stack: ServiceProcesses) -> Iterator[httpx.Client]:
    """The operator APIs directly, to set up and to check what the console shows."""
    with httpx.Client(headers=stack.admin, timeout=30) as client:
        yield client


def doc_image(page, name: str) -> None:
    """Save a README screenshot of the page when CONSOLE_DOC_IMAGES names a folder."""
    folder = os.environ.get("CONSOLE_DOC_IMAGES")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)
