"""The dashboard in a real headless Chromium (Debian's package, driven by Selenium).

A real worker with a scripted LLM feeds it: the counters must move within seconds of a cycle
ending, and a click on the cycle must show its code and review. Screenshots are saved under
`test-artifacts/` for a person to look at.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from testbed.mesh import Worker
from tests.test_mesh import new_task, send

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
UPDATE_S = 10  # for the page to load, or for what it shows after a click
LIVE_S = 2.5  # the 2 s from an archived cycle to the counters, plus a poll of slack


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if CHROMIUM is None or DRIVER is None:
        pytest.fail("needs Debian's chromium and chromium-driver (make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def _counter(driver: WebDriver, name: str) -> int:
    """Read in one script call: the page may redraw between two WebDriver calls."""
    script = f"const b = document.querySelector('#counter-{name} b'); return b ? b.textContent : ''"
    value = driver.execute_script(script)
    return int(value) if value.isdigit() else 0


def _wait(driver: WebDriver, seconds: float, condition: Any, what: str) -> None:
    """Wait for `condition`; an element redrawn under it (stale) just means: look again."""
    WebDriverWait(
        driver, seconds, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, message=what)


def _click(driver: WebDriver, selector: str) -> bool:
    driver.find_element(By.CSS_SELECTOR, selector).click()
    return True


def test_the_counters_move_and_a_clicked_cycle_shows_its_code_and_review(
    browser: WebDriver, worker: Worker, broker_url: str
) -> None:
    worker.wait_cycle(send(worker, broker_url, new_task("[fix]")))  # a failure to recall later
    browser.get(f"{worker.web}/dashboard")
    _wait(browser, UPDATE_S, lambda d: "live" in d.find_element(By.ID, "connection").text, "live")
    passed_before = _counter(browser, "passed")
    cycle_id = send(worker, broker_url, new_task("[fix]"))
    worker.wait_cycle(cycle_id)  # its row is in the archive now
    _wait(
        browser,
        LIVE_S,
        lambda d: _counter(d, "passed") > passed_before,
        "the passed counter to move",
    )
    row = f'tr.cycle-row[data-cycle-id="{cycle_id}"]'
    _wait(browser, UPDATE_S, lambda d: d.find_elements(By.CSS_SELECTOR, row), "the cycle's row")
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    _wait(browser, UPDATE_S, lambda d: _click(d, row), "a click on the cycle's row")
    _wait(
        browser,
        UPDATE_S,
        lambda d: (
            d.find_element(By.ID, "detail").get_attribute("data-cycle-id") == cycle_id
            and d.find_elements(By.CSS_SELECTOR, "#detail .attempt")
        ),
        "the cycle's detail",
    )
    attempts = browser.find_elements(By.CSS_SELECTOR, "#detail .attempt")
    assert len(attempts) == 2  # the failed first try, then the fix
    assert "return a + b" in attempts[-1].find_element(By.CSS_SELECTOR, "pre.code").text
    assert "passed" in attempts[-1].text and "failed" in attempts[0].text
    assert "Clear and correct." in attempts[-1].find_element(By.CSS_SELECTOR, ".review").text
    assert attempts[-1].find_elements(By.CSS_SELECTOR, ".memories li")  # what was recalled
    browser.save_screenshot(str(ARTIFACTS / "dashboard-cycle.png"))
    # the dataset panel: what `aimesh export` would write, and its SFT file as a download
    counts = browser.find_element(By.ID, "dataset-counts")
    _wait(browser, UPDATE_S, lambda d: "SFT records" in counts.text, "the dataset's counts")
    assert int(counts.text.split(" SFT records")[0]) >= 1
    link = browser.find_element(By.ID, "dataset-download").get_attribute("href")
    records = [json.loads(line) for line in httpx.get(link, timeout=10).text.splitlines()]
    assert records and all(r["verdict_mode"] == "split" for r in records)
    assert all("return a + b" in r["messages"][-1]["content"] for r in records)


def test_the_header_shows_parts_and_sandbox_layers_and_telemetry_filters(
    browser: WebDriver, worker: Worker
) -> None:
    browser.get(f"{worker.web}/dashboard")
    _wait(browser, UPDATE_S, lambda d: d.find_elements(By.CSS_SELECTOR, ".part"), "the parts")
    parts = {
        p.get_attribute("data-part"): p for p in browser.find_elements(By.CSS_SELECTOR, ".part")
    }
    assert set(parts) == {"broker", "llm", "memory", "sandbox"}
    assert all("up" in p.get_attribute("class") for p in parts.values())
    broker = parts["broker"].text  # kind and guarantee: Tansu, or Kafka via AIMESH_TEST_BROKER_URL
    assert "tansu, at-least-once" in broker or "kafka, at-least-once" in broker, broker
    assert "seccomp" in browser.find_element(By.ID, "layers").text
    agent = browser.find_element(By.ID, "filter-agent")
    _wait(
        browser, UPDATE_S, lambda d: len(agent.find_elements(By.TAG_NAME, "option")) > 1, "agents"
    )
    _wait(browser, UPDATE_S, lambda d: _click(d, '#filter-agent option[value="sandbox"]'), "filter")
    _wait(
        browser,
        UPDATE_S,
        lambda d: {r.find_elements(By.TAG_NAME, "td")[1].text for r in _rows(d)} == {"sandbox"},
        "only the sandbox's telemetry",
    )
    browser.save_screenshot(str(ARTIFACTS / "dashboard-telemetry.png"))


def _rows(driver: WebDriver) -> list:
    return driver.find_elements(By.CSS_SELECTOR, "#telemetry tr")
