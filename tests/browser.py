"""Helpers for the browser tests: a JupyterLab server on loopback, headless chromium, screenshots."""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from assignment.nbgrader_cli import nbgrader_env
from assignment.screenshot import CHROMIUM, CHROMIUM_ARGS, chromium_available

TOKEN = "pa2-browser-tests"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(root, scratch, timeout=60):
    """Run ``jupyter lab`` on 127.0.0.1 with ``root`` as course and server root; yield its URL.

    Jupyter's config, data and runtime folders live in ``scratch``, so the user's own settings
    (say a ~/.jupyter/nbgrader_config.py of another course) cannot leak in. The server is
    stopped when the block ends.
    """
    port = free_port()
    env = nbgrader_env({name: str(scratch / name.lower()) for name in
                        ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                         "JUPYTERLAB_WORKSPACES_DIR")})
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
               "--ServerApp.port_retries=0"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = open(scratch / "jupyter.log", "w")
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not start:\n{(scratch / 'jupyter.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@contextlib.contextmanager
def chromium():
    """A headless Debian chromium driven by Playwright (skips the test when chromium is missing)."""
    if not chromium_available():
        pytest.skip("chromium is not installed (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def artefacts_dir(tmp_path_factory):
    """Where the screenshots go: $PA2_ARTEFACTS if set (CI keeps it), else a pytest temp folder."""
    folder = Path(os.environ["PA2_ARTEFACTS"]) if os.environ.get("PA2_ARTEFACTS") else \
        tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
