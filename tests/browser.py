"""A real browser for console tests: Debian's chromium, headless, driven by selenium through chromium-driver.

Each browser gets a fresh profile directory and none of Chromium's background traffic (no network here)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def missing_browser() -> str:
    """Why browser tests cannot run here, or "" when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-test.txt)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"Debian package {package} is not installed (dev/bootstrap installs it as root)"
    return ""


def start_chromium(profile_dir: Path, width: int = 1400, height: int = 1000, extra: tuple[str, ...] = (),
                   env: dict[str, str] | None = None) -> Any:
    """Chromium with a fresh profile in `profile_dir`; `env` adds to the browser's environment (e.g. a HOME
    whose NSS database trusts a test CA)."""
    from selenium import webdriver

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile_dir}", f"--window-size={width},{height}", *extra):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    profile_dir.mkdir(parents=True, exist_ok=True)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER, log_output=str(profile_dir / "driver.log"),
                                      env={**os.environ, **(env or {})})
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


def console_errors(driver: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """SEVERE browser console entries since the last call (reading the log empties it)."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(text in e["message"] for text in ignore)]
