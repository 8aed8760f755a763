"""Headless Chromium from the system packages (the Makefile's `browser` target), for the pages'
tests: the served page and the run report."""

import os
import shutil


def chromium_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path, chromium = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path and chromium, "Chromium and chromedriver missing: `make browser`"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def screenshot(driver, name: str, tmp_path, full_page: bool = False) -> None:
    """Into RECSYS_SCREENSHOTS when set (`make serve-check`, `make report-check`), else the
    test's own folder; full_page: the whole page's height, not the window's."""
    folder = os.environ.get("RECSYS_SCREENSHOTS") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    if full_page:
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(height + 100, 12000))
    assert driver.save_screenshot(os.path.join(folder, f"{name}.png"))
    if full_page:
        driver.set_window_size(1400, 1000)
