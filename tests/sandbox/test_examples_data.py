"""The example data is one story told relative to a moment: the committed files are
that story at 2026-06-30, and the script tells it at any other moment."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from typer.testing import CliRunner

from scheduler.cli import app

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"
MODEL = ROOT / "scoring" / "data" / "models" / "starter.yaml"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_examples", DATA / "make_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scores(folder: Path, as_of: str | None) -> list[tuple[str, str, float, str]]:
    args = ["score", "--model", str(MODEL), "--contacts", str(folder / "contacts.csv"),
            "--events", str(folder / "events.jsonl")]  # fmt: skip
    if as_of is not None:
        args += ["--as-of", as_of]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines() if line.startswith("{")]
    return [(r["contact_id"], r["model"], r["score"], r["band"]) for r in rows]


def test_the_committed_files_are_the_story_at_their_date(tmp_path: Path) -> None:
    script = _script()
    script.main(tmp_path)
    for name in ("contacts.csv", "events.jsonl", "events.csv"):
        assert (tmp_path / name).read_text() == (DATA / name).read_text(), name


def test_the_same_story_a_year_on_scores_the_same_at_its_own_date(tmp_path: Path) -> None:
    script = _script()
    later = script.parse_as_of("now", now=datetime(2027, 7, 1, 15, 30, tzinfo=UTC))
    assert later == datetime(2027, 7, 1, tzinfo=UTC)
    script.main(tmp_path, later)
    committed = _scores(DATA, "2026-06-30T00:00:00Z")
    assert committed and any(band == "hot" for *_, band in committed)
    assert _scores(tmp_path, "2027-07-01T00:00:00Z") == committed
