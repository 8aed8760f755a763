"""The end-to-end tests' browser: one headless Chromium per module that asks for it."""

import pytest

from tests.end_to_end.chromium import chromium_driver


@pytest.fixture(scope="module")
def browser():
    driver = chromium_driver()
    yield driver
    driver.quit()
