"""The web monitor in a real browser (Debian's chromium, headless, driven by playwright) while an experiment runs.

CI installs chromium and sets XPM_REQUIRE_BROWSER=1 (a missing browser fails there);
elsewhere the test skips without /usr/bin/chromium. playwright's own browsers are never
downloaded: the system's is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.monitor.runs import TwoRuns
from tests.web.conftest import Experiment, require_chromium
from xpm.web.serve import WebMonitor

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
#: Where the screenshot of the jobs page goes (docs/monitor.md shows it)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "monitor-web.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def row(page: Any, key: str) -> Any:
    return page.locator("#jobs tbody tr", has_text=f"key={key}")


def test_follow_filter_read_and_kill_in_the_browser(page: Any, server: WebMonitor, running: Experiment) -> None:
    from playwright.sync_api import expect

    # The experiment appears in the list (the printed URL; its token becomes a cookie).
    page.goto(server.url)
    assert "token=" not in page.url
    expect(page.locator("#experiments tr[data-experiment=watched]")).to_contain_text("running")
    expect(page.locator("#live")).to_have_text("live")

    # Its jobs, with their states; a running job turns DONE without a reload.
    page.click("text=watched")
    expect(row(page, "slow").locator(".state")).to_have_text("RUNNING")
    expect(row(page, "quick").locator(".progress")).to_contain_text("100%")
    if os.environ.get("XPM_SCREENSHOT") == "1":  # (refreshes the picture of docs/monitor.md)
        page.screenshot(path=str(SCREENSHOT))
    page.evaluate("window.notReloaded = true")
    running.go.write_text("go")
    expect(row(page, "slow").locator(".state")).to_have_text("DONE")
    assert page.evaluate("window.notReloaded") is True

    # The filter narrows the list; a bad filter shows its error, with the column, in place.
    page.fill("#filter", "@state = error")
    page.press("#filter", "Enter")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(row(page, "bad")).to_be_visible()
    page.fill("#filter", "key = ")
    page.press("#filter", "Enter")
    expect(page.locator("#filter-error")).to_contain_text("bad filter at column 7")
    expect(page.locator("#filter-error pre")).to_contain_text("^")

    # The compare view shows the tags and parameters that differ.
    page.fill("#filter", "@name = test.record")
    page.press("#filter", "Enter")
    expect(page.locator("#filter-error")).to_be_hidden()
    page.click("#compare-toggle")
    expect(page.locator("#compare thead")).to_contain_text("key")
    page.click("#compare-toggle")

    # A job's page shows its log, followed live.
    row(page, "quick").locator("a").click()
    page.click("button[data-stream=stdout]")
    expect(page.locator("#log")).to_contain_text("record quick")
    expect(page.locator("#folder")).to_contain_text(str(running.ws))
    page.go_back()

    # Kill, after a confirmation that names the job.
    row(page, "doomed").locator("a").click()
    name = page.locator("#job-header .mono").inner_text()
    asked: list[str] = []

    def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    page.click("#kill")
    expect(page.locator("#job-header .state")).to_have_text("ERROR")
    assert asked and name in asked[0] and asked[0].startswith("Kill job")

    # The runs of the experiment.
    page.goto(f"http://127.0.0.1:{server.port}/#/experiments/watched/runs")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    expect(page.locator("#runs")).to_contain_text("(current)")


def test_open_an_older_run_in_the_browser(page: Any, twice_server: WebMonitor, twice: TwoRuns) -> None:
    from playwright.sync_api import expect

    page.goto(twice_server.url)
    page.goto(f"http://127.0.0.1:{twice_server.port}/#/experiments/twice/runs")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    old = page.locator(f'#runs tbody tr[data-run="{twice.runs[0]}"]')
    expect(old).to_contain_text("baseline")
    old.locator("a").click()
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    expect(page.locator("#run-note")).to_have_text(f"run {twice.runs[0]} (not the current run)")
    expect(row(page, "old-bad").locator(".state")).to_have_text("ERROR")
    # The experiment's page: its current run.
    page.locator("#crumbs a", has_text="twice").click()
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator("#run-note")).to_have_text(f"run {twice.runs[1]}")


def test_a_page_without_the_token_is_refused(page: Any, server: WebMonitor) -> None:
    response = page.goto(f"http://127.0.0.1:{server.port}/")
    assert response.status == 401
    assert "needs its token" in page.content()
    stale = page.goto(f"http://127.0.0.1:{server.port}/?token=not-the-token")
    assert stale.status == 403
