"""Real-browser fixtures: a `streamlit run app.py` subprocess on a small workspace, and Debian's
Chromium driven by playwright's python package (no browser download; CI installs `chromium`).

The workspace starts with only a slice of the demo notes, so the first page load goes through the
app's first-start build (progress bar) exactly like `streamlit run app.py` on a fresh clone.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200 and resp.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"streamlit not healthy after {START_TIMEOUT_S}s; log:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def e2e_workspace(tmp_path_factory) -> dict[str, str]:
    """Environment for a workspace holding 20 demo notes per category and nothing else."""
    return small_workspace(tmp_path_factory.mktemp("e2e-workspace"))


@pytest.fixture(scope="session")
def fresh_workspace(tmp_path_factory):
    """``fresh_workspace(name)``: the environment of another small workspace (for tests that change it)."""
    return lambda name: small_workspace(tmp_path_factory.mktemp(name))


def small_workspace(root: Path) -> dict[str, str]:
    """Ingest 20 demo notes per category into a new workspace under ``root``; its MINER_* variables."""
    from miner.config import MinerConfig
    from miner.ingest import ingest_file
    from miner.schema import NOTES

    env = {"MINER_MODELS_DIR": str(root / "models"), "MINER_WORKSPACE_DIR": str(root / "workspace"),
           "MINER_EMBEDDING_MODEL": "hashing", "MINER_N_TOPICS": "12"}
    notes = pd.read_parquet(REPO / "data" / "demo" / "notes.parquet")
    notes.groupby("category", sort=False).head(20).to_parquet(root / "notes_small.parquet", index=False)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        ingest_file(root / "notes_small.parquet", NOTES, MinerConfig.load())
    return env


@contextmanager
def serve(env_extra: dict[str, str], name: str = "e2e"):
    """Yield the base URL of a headless `streamlit run app.py` on a free localhost port."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium fonts-noto-cjk (CI installs them)")
    port = _free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"streamlit-{name}.log"
    env = {**os.environ, **env_extra}
    for key in ("MINER_APP_PASSWORD", "MINER_AUTH_FILE"):
        if key not in env_extra:
            env.pop(key, None)
    env["HOME"] = env_extra.get("HOME", str(Path(env_extra["MINER_WORKSPACE_DIR"]).parent / "home"))
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def streamlit_server():
    """``with streamlit_server(env, name) as url:`` — another server (e.g. with accounts configured)."""
    return serve


@pytest.fixture(scope="session")
def app_url(e2e_workspace):
    """An open app (no accounts: local use)."""
    with serve(e2e_workspace) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium fonts-noto-cjk (CI installs them)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN",
                                  accept_downloads=True)
    context.set_default_timeout(60_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def shot():
    """``shot(page, name)`` saves a full-page PNG under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        # Streamlit scrolls inside its main section, so grow the viewport to the content first.
        size = page.viewport_size
        height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 0")
        if height > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 8000)})
            page.wait_for_timeout(500)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        page.set_viewport_size(size)
        return path

    return save
