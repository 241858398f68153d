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


def _open(page: Path, tmp: Path, *, screenshot: Path | None = None, width: int = 1200,
          dump: bool = False) -> tuple[list[str], list[str]] | tuple[list[str], list[str], str]:
    """Load ``page`` in headless Chromium; return (console messages, URLs requested by the page)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not on PATH (apt-get install -y chromium)")
    netlog = tmp / f"{page.stem}.netlog.json"
    profile = tmp / f"{page.stem}.profile"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
        "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        f"--log-net-log={netlog}", f"--window-size={width},2000",
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
    if dump:
        return console, requests, proc.stdout
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


# --------------------------------------------------------------------------- layout at 1280 and 390 px wide

#: Run on a copy of the page (its CSP forbids scripts): once loaded, measure what sticks out, write it into the
#: DOM, which --dump-dom prints. A card (section) overflows when its content is wider than it; tables that
#: may scroll sit in .scroll containers, whose overflow stays inside them.
PROBE = """<script>
window.addEventListener('load', () => {
  // headless Chromium's window is at least 500 px wide: narrower targets are laid out in an html element of
  // that width (the page's narrow-screen rules, max-width 600px, apply either way)
  const doc = document.documentElement, target = WIDTH;
  if (window.innerWidth > target) doc.style.width = target + 'px';
  const w = Math.min(window.innerWidth, target);
  const cards = [...document.querySelectorAll('section')].map((s, i) => ({i, id: s.id || (s.querySelector('h2') || {}).textContent,
    over: s.scrollWidth - s.clientWidth})).filter(c => c.over > 1);
  const out = document.createElement('pre');
  out.id = 'probe';
  let right = 0;  // the right edge of everything, but what scrolls inside a .scroll container
  for (const el of document.body.querySelectorAll('*')) {
    if (el.parentElement.closest('.scroll')) continue;
    right = Math.max(right, el.getBoundingClientRect().right);
  }
  const scrollWidth = Math.max(window.innerWidth > target ? 0 : doc.scrollWidth, Math.ceil(right));
  out.textContent = JSON.stringify({width: w, scrollWidth, cards});
  document.body.appendChild(out);
});
</script>"""


def _layout(page: Path, tmp: Path, width: int) -> dict:
    probe = tmp / f"{page.stem}.probe{width}.html"
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"))
    probe.write_text(html.replace("</body>", PROBE.replace("WIDTH", str(width)) + "</body>"), encoding="utf-8")
    _, _, dom = _open(probe, tmp, width=width, dump=True)  # type: ignore[misc]
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, dom[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def _levers_page(tmp: Path) -> Path:
    from miaudit.levers import run_levers

    cfg = {
        "data": {"kind": "digits", "max_examples": 400, "seed": 0},
        "model": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 200}},
        "game": {"n_references": 2, "n_targets": 2, "seed": 0},
        "attacks": ["loss", "lira_online"],
        "metrics": {"fprs": [0.001, 0.01, 0.1]},
        "output": {"dir": str(tmp / "lev")},
        "levers": {"values": {"model.params.C": [0.001, 0.1, 10.0], "train_size": [50, 100]}},
    }
    return run_levers(cfg, jobs=1, budget="tpr@0.1=0.9").save(tmp / "lev")["levers.html"]


def _report_page(tmp: Path) -> Path:
    from tests.report._builders import make_result

    names = ("loss", "confidence", "entropy", "modified_entropy", "scaled_logit", "lira_online", "lira_offline",
             "rmia", "rmia_offline", "attack_r", "calibrated_loss", "trained_lr", "trained_gb", "shokri")
    result = make_result(n=1200, attacks=names, strength=tuple(0.1 * i for i in range(len(names))),
                         text="a-very-long-dataset-name-without-any-space-" * 3, targets=4, spread=True)
    return result.save(tmp / "report")["report"]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if CHROMIUM is None:
        pytest.skip("chromium is not on PATH (apt-get install -y chromium)")
    tmp = tmp_path_factory.mktemp("pages")
    return _report_page(tmp), _levers_page(tmp)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_the_window_and_no_card_overflows(pages: tuple[Path, Path], tmp_path: Path, width: int) -> None:
    for page in pages:
        layout = _layout(page, tmp_path, width)
        assert layout["width"] == width
        assert layout["scrollWidth"] <= width, (page.name, layout)  # no horizontal scrolling of the page
        assert layout["cards"] == [], (page.name, layout)  # nothing sticks out of its card
        console, requests = _open(page, tmp_path, width=width, screenshot=tmp_path / f"{page.stem}{width}.png")
        assert console == [] and requests == []


@pytest.mark.timeout(300)
def test_layout_probe_catches_an_overflowing_card(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not on PATH (apt-get install -y chromium)")
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><style>section{width:300px}</style></head><body>'
                   '<section id="wide"><table><tr>' + "<td>cell_without_breaks_0123456789</td>" * 12
                   + "</tr></table></section></body></html>")
    layout = _layout(bad, tmp_path, 1280)
    assert [c["id"] for c in layout["cards"]] == ["wide"] and layout["scrollWidth"] > 1280

