"""Save a screenshot of a running dashboard, with one cycle opened, for the README.

    .venv/bin/python scripts/screenshot.py [--url http://127.0.0.1:6066/]
        [--out web/dashboard-screenshot.png] [--cycle-status passed]

Opens the page in headless Chromium (Debian's `chromium` and `chromium-driver`, which
`make test` installs), waits for the counters, clicks the newest finished cycle whose outcome is
`--cycle-status`, and saves the page.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:6066/")
    parser.add_argument("--out", default="web/dashboard-screenshot.png")
    parser.add_argument("--cycle-status", default="passed")
    args = parser.parse_args()
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        print("screenshot.py: needs chromium and chromium-driver", file=sys.stderr)
        return 2
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(args.url)
        time.sleep(4)  # a few polls: counters, charts and the cycle list filled in
        rows = [
            row
            for row in driver.find_elements(By.CSS_SELECTOR, "#cycles tr")
            if args.cycle_status in row.text
        ]
        if rows:
            rows[0].click()
            time.sleep(2)
        driver.save_screenshot(args.out)
    finally:
        driver.quit()
    print(f"saved {args.out}" + ("" if rows else f" (no {args.cycle_status} cycle to open)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
