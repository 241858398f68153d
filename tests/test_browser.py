"""The report in a real browser: headless Chromium renders it with no console message, no request, not blank.

Needs Debian's ``chromium`` on PATH (``apt-get install -y chromium``); skipped cleanly otherwise. Requests are
read from Chromium's own network log (``--log-net-log``): a request made by the page carries the page's
``file://`` isolation key, while the browser's background services (update checks, ...) carry
``initiator: "not an origin"`` and are ignored. Console messages (errors and CSP violations included) are read
from ``--enable-logging=stderr``. A control page with a remote image and a console error proves both detectors
can fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _open(page: Path, tmp: Path, *, screenshot: Path | None = None) -> tuple[list[str], list[str]]:
    """Load ``page`` in headless Chromium; return (console messages, URLs requested by the page)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not on PATH (apt-get install -y chromium)")
    netlog = tmp / f"{page.stem}.netlog.json"
    profile = tmp / f"{page.stem}.profile"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
        "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        f"--log-net-log={netlog}", "--window-size=1200,2000",
    ]  # fmt: skip
    cmd += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    proc = subprocess.run(cmd + [page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] != start_job or "url" not in params:
            continue
        from_page = params.get("initiator") != "not an origin" or "file://" in params.get("network_isolation_key", "")
        if from_page and not params["url"].startswith(("file:", "data:")):
            requests.append(params["url"])
    return console, requests


@pytest.mark.timeout(300)
def test_report_renders_offline_without_errors(tmp_path: Path) -> None:
    from tests.report._builders import make_result

    result = make_result(n=1200, text="<script>alert(1)</script>", dp={"epsilon": 8.0, "delta": 1e-5})
    paths = result.save(tmp_path / "out")
    shot = tmp_path / "report.png"
    console, requests = _open(paths["report"], tmp_path, screenshot=shot)
    assert console == []
    assert requests == []

    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    gray = img[..., :3].mean(axis=-1)
    assert gray.var() > 1e-3  # not blank
    assert (gray < 0.5).mean() > 0.005  # real text and plots, not a near-empty page



@pytest.mark.timeout(300)
def test_detectors_catch_a_bad_page(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><p>x</p>'
        '<img src="http://198.51.100.7/x.png"><script>console.error("boom")</script></body></html>'
    )
    console, requests = _open(bad, tmp_path)
    assert any('"boom"' in line for line in console)
    assert any(re.match(r"http://198\.51\.100\.7/x\.png", u) for u in requests)
