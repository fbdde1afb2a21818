"""The HTML reports, opened in a real browser (Debian's chromium through Playwright).

The browser, not a parser, says that the file asks no host for anything, logs no
error, shows every chart, and paints something.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scheduler.cli import app
from tests.backtest.worlds import MODEL, world, write_project

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,  # a browser start each; CI runs the slow tests too
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
    ),
]


def png_colors(data: bytes) -> int:
    """Distinct colours of an 8-bit RGB(A) PNG, decoded with the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colors: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        previous = line
        for i in range(0, stride, channels * 7):  # a sample of pixels is plenty
            colors.add(bytes(line[i : i + 3]))
    return len(colors)


def open_in_browser(path: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_load_state("networkidle")
            charts = page.eval_on_selector_all(
                "figure.chart",
                """els => els.map(f => {
                    const svg = f.querySelector('svg');
                    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                    return {id: f.id, title: f.querySelector('h3').textContent,
                            width: box.width, height: box.height,
                            marks: svg ? svg.querySelectorAll('rect.bar, polyline.series').length : 0,
                            axes: svg ? svg.querySelectorAll('text.axis').length : 0};
                })""",
            )
            shots = [
                png_colors(page.locator(f'figure[id="{c["id"]}"] svg').screenshot()) for c in charts
            ]
            blank = page.evaluate("document.body.innerText.length")
        finally:
            browser.close()
    return {"requests": requests, "errors": errors, "charts": charts, "shots": shots, "text": blank}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    models = {
        "current.yaml": MODEL.format(name="platform", meeting=5),
        "candidate.yaml": MODEL.format(name="platform", meeting=30),
    }
    config = write_project(world("before", contacts=800, seed=21), root, models)
    # The sync runs one version; the candidate is only given to the backtest.
    config.write_text(
        config.read_text().replace(
            "models: [current.yaml, candidate.yaml]", "models: [current.yaml]"
        )
    )
    return config


def _assert_clean(seen: dict[str, Any], report: Path, expected: set[str]) -> None:
    assert seen["requests"] == [report.as_uri()], "the report asked for something else"
    assert seen["errors"] == []
    ids = {c["id"] for c in seen["charts"]}
    assert expected <= ids
    for chart, colors in zip(seen["charts"], seen["shots"], strict=True):
        assert chart["width"] > 200 and chart["height"] > 100, chart
        assert chart["marks"] > 0, chart
        assert chart["axes"] == 2, chart
        assert colors >= 3, f"chart {chart['id']} looks blank"


def test_backtest_report_in_a_real_browser(project: Path) -> None:
    report = project.parent / "backtest.html"
    root = project.parent
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--config",
            str(project),
            "--model",
            str(root / "current.yaml"),
            "--model",
            str(root / "candidate.yaml"),
            "--capacity",
            "3",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    seen = open_in_browser(report)
    expected = {
        "distribution-current/platform",
        "bands-current/platform",
        "deciles-current/platform",
        "distribution-candidate/platform",
        "roc",
        "tradeoff",
        "leads-per-week",
        "velocity",
        "comparison",
    }
    _assert_clean(seen, report, expected)
    for words in ("data window", "Caveats", "Threshold advice", "advised: max F1"):
        assert words in text


def test_state_report_in_a_real_browser(project: Path) -> None:
    report = project.parent / "state.html"
    result = CliRunner().invoke(app, ["report", "--config", str(project), "--out", str(report)])
    assert result.exit_code == 0, result.output
    seen = open_in_browser(report)
    _assert_clean(seen, report, {"weekly", "distribution-platform", "rules-platform"})


def test_backtest_report_shows_a_predictive_model_beside_its_rules_model(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from tests.predictive.predictive_world import MODEL_FILE

    root = tmp_path_factory.mktemp("predictive-report")
    config = write_project(
        world("before", contacts=1500, seed=21), root, {"model.yaml": MODEL_FILE}
    )
    runner = CliRunner()
    trained = runner.invoke(
        app, ["train", "--config", str(config), "--model", "learned", "--horizon", "30d"]
    )
    assert trained.exit_code == 0, trained.output
    report = root / "backtest.html"
    result = runner.invoke(
        app,
        ["backtest", "--config", str(config), "--horizon", "30d", "--report", str(report)],
    )
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "Predictive model learned beside current" in text
    for words in ("top-decile lift", "calibration error", "advised (max F1)"):
        assert words in text
    seen = open_in_browser(report)
    _assert_clean(seen, report, {"roc", "reliability-learned"})
    (curve,) = [c for c in seen["charts"] if c["id"] == "reliability-learned"]
    assert curve["marks"] == 3  # the predictive model, the rules model, the diagonal
