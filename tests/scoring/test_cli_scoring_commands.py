"""``leadsync score``, ``check`` and ``explain`` as users run them: exit statuses,
one-line errors on stderr, JSON lines on stdout, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from scheduler.cli import app

ROOT = Path(__file__).resolve().parents[2]
STARTER = str(ROOT / "examples" / "models" / "starter.yaml")
AS_OF = "2026-06-30T00:00:00Z"

MODEL = textwrap.dedent(
    """\
    models:
      - name: web
        score_field: web_score
        bands: {hot: 20, warm: 10}
        rules:
          - {id: director, kind: fit, field: job_title, match: {contains: director}, points: 5}
          - id: pricing
            kind: behavior
            event: page_view
            match: {url: {glob: "*/pricing*"}}
            points: 10
            max_points: 30
            window_days: 30
          - {id: demo, kind: behavior, event: form_submit, match: {form: demo}, points: 0,
             immediate: true, window_days: 30}
    """
)


def run(*args: str) -> Result:
    # A wide terminal so that Rich does not wrap the explain table in the middle of values.
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def lines_of(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "model.yaml").write_text(MODEL)
    (tmp_path / "contacts.csv").write_text(
        "id,job_title,created_at\n"
        "a,Director of IT,2026-01-01T00:00:00Z\n"
        "b,Engineer,2026-01-01T00:00:00Z\n"
    )
    (tmp_path / "events.jsonl").write_text(
        '{"contact_id": "a", "type": "page_view", "occurred_at": "2026-06-20T10:00:00Z", "url": "/pricing"}\n'
        '{"contact_id": "a", "type": "form_submit", "occurred_at": "2026-06-21T10:00:00+02:00", "form": "demo", "id": "f1"}\n'
        '{"contact_id": "b", "type": "page_view", "occurred_at": "2026-06-25T10:00:00Z", "url": "/pricing/team"}\n'
        '{"contact_id": "b", "type": "page_view", "occurred_at": "2026-07-05T10:00:00Z", "url": "/pricing"}\n'
    )
    return {name: str(tmp_path / name) for name in ("model.yaml", "contacts.csv", "events.jsonl")}


def score_args(files: dict[str, str], *extra: str) -> list[str]:
    return [
        "score",
        "--model",
        files["model.yaml"],
        "--contacts",
        files["contacts.csv"],
        "--events",
        files["events.jsonl"],
        *extra,
    ]


def test_score_writes_one_json_line_per_contact_and_model(files: dict[str, str]) -> None:
    result = run(*score_args(files, "--as-of", AS_OF))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    by_id = {line["contact_id"]: line for line in lines_of(result.stdout)}
    assert set(by_id) == {"a", "b"}
    a = by_id["a"]
    assert set(a) == {
        "contact_id", "model", "score", "band", "immediate", "immediate_event",
        "last_activity_at", "reasons",
    }  # fmt: skip
    assert (a["model"], a["score"], a["band"], a["immediate"]) == ("web", 15.0, "warm", True)
    assert a["immediate_event"] == {
        "type": "form_submit",
        "occurred_at": "2026-06-21T08:00:00Z",
        "id": "f1",
    }
    assert {r["rule"]: r["points"] for r in a["reasons"]} == {
        "director": 5.0,
        "pricing": 10.0,
        "demo": 0.0,
    }
    # the event after --as-of is ignored: b has one pricing view, not two
    assert by_id["b"]["score"] == 10.0 and by_id["b"]["band"] == "warm"


def test_as_of_moves_the_window(files: dict[str, str]) -> None:
    later = run(*score_args(files, "--as-of", "2026-07-06T00:00:00+00:00"))
    by_id = {line["contact_id"]: line for line in lines_of(later.stdout)}
    assert by_id["b"]["score"] == 20.0 and by_id["b"]["band"] == "hot"
    assert by_id["a"]["immediate"] is True


def test_as_of_defaults_to_now(files: dict[str, str]) -> None:
    result = run(*score_args(files))
    assert result.exit_code == 0
    assert len(lines_of(result.stdout)) == 2


def test_out_writes_the_same_lines_to_a_file(files: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    result = run(*score_args(files, "--as-of", AS_OF, "--out", str(out)))
    assert result.exit_code == 0 and result.stdout == ""
    plain = run(*score_args(files, "--as-of", AS_OF))
    assert out.read_text() == plain.stdout


def test_bad_rows_are_reported_and_the_rest_is_scored(
    tmp_path: Path, files: dict[str, str]
) -> None:
    contacts = tmp_path / "bad_contacts.csv"
    contacts.write_text(
        "id,job_title,created_at\n"
        "a,Director,2026-01-01\n"
        ",Director,2026-01-01\n"
        "c,Director,someday\n"
        "d,Director\n"
        "e,Director,2026-01-01\n"
    )
    events = tmp_path / "bad_events.jsonl"
    events.write_text(
        '{"contact_id": "a", "type": "page_view", "occurred_at": "2026-06-20T25:00:00Z", "url": "/pricing"}\n'
        "{not json\n"
        '{"contact_id": "e", "type": "page_view", "occurred_at": "2026-06-20T10:00:00Z", "url": "/pricing"}\n'
    )
    result = run(
        "score", "--model", files["model.yaml"], "--contacts", str(contacts),
        "--events", str(events), "--as-of", AS_OF,
    )  # fmt: skip
    assert result.exit_code == 1
    scored = {line["contact_id"]: line["score"] for line in lines_of(result.stdout)}
    assert scored == {"a": 5.0, "e": 15.0}
    assert result.stderr.splitlines() == [
        f"{contacts}:3: id: missing",
        f"{contacts}:4: created_at: not a timestamp: 'someday' "
        "(expected ISO 8601 such as 2026-06-30T12:00:00Z)",
        f"{contacts}:5: (csv): expected 3 columns as in the header, got 2",
        f"{events}:1: occurred_at: not a timestamp: '2026-06-20T25:00:00Z' (hour must be in 0..23)",
        f"{events}:2: (json): broken JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        "5 rows rejected; the other rows were scored",
    ]


def test_invalid_model_exits_2_with_one_line_per_problem(
    tmp_path: Path, files: dict[str, str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        MODEL.replace("points: 5", "points: five").replace(
            "window_days: 30\n", "window_dayz: 30\n", 1
        )
    )
    result = run(
        "score", "--model", str(bad), "--contacts", files["contacts.csv"],
        "--events", files["events.jsonl"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}:6: models[0].rules[0].points: expected a number, got text 'five'",
        f"{bad}:13: models[0].rules[1].window_dayz: unknown key 'window_dayz' "
        "(did you mean 'window_days'?)",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"--contacts": "missing.csv"}, "missing.csv: no such file"),
        (
            {"--events": "events.xlsx"},
            "events.xlsx: unknown file type (expected one of .jsonl, .ndjson, .csv)",
        ),
        ({"--model": "nowhere.yaml"}, "nowhere.yaml: no such file"),
        ({"--as-of": "tomorrow"}, "--as-of: not a timestamp: 'tomorrow'"),
    ],
)
def test_usage_problems_exit_2_with_one_line(
    files: dict[str, str], change: dict[str, str], expected: str, tmp_path: Path
) -> None:
    args = {
        "--model": files["model.yaml"],
        "--contacts": files["contacts.csv"],
        "--events": files["events.jsonl"],
    }
    for key, value in change.items():
        args[key] = str(tmp_path / value) if key != "--as-of" else value
    flat = [item for pair in args.items() for item in pair]
    result = run("score", *flat)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.endswith(expected) or line.startswith(expected), line


def test_model_that_is_a_directory_or_not_utf8(tmp_path: Path, files: dict[str, str]) -> None:
    result = run("check", "--model", str(tmp_path))
    assert result.exit_code == 2 and result.stderr == f"{tmp_path}: is a directory, not a file\n"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("models: # caf\xe9\n".encode("latin-1"))
    result = run("check", "--model", str(latin))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{latin}: not UTF-8 text")


def test_events_file_that_is_not_utf8_is_one_line(tmp_path: Path, files: dict[str, str]) -> None:
    events = tmp_path / "events.csv"
    events.write_bytes(b"contact_id,type,occurred_at,url\na,page_view,2026-06-01,/caf\xe9\n")
    result = run(
        "score", "--model", files["model.yaml"], "--contacts", files["contacts.csv"],
        "--events", str(events), "--as-of", AS_OF,
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{events}: not UTF-8 text")


def test_odd_values_in_rows_are_scored_not_crashed(tmp_path: Path, files: dict[str, str]) -> None:
    contacts = tmp_path / "odd.jsonl"
    contacts.write_text(
        '{"id": "x", "job_title": ["director", 1], "created_at": "2026-01-01"}\n'
        '{"id": 7, "job_title": 12345678901234567890123, "extra": {"a": null}}\n'
        '{"id": "z", "job_title": "Directör 🚀", "created_at": 1767225600}\n'
    )
    events = tmp_path / "odd.csv"
    events.write_text(
        "contact_id,type,occurred_at,url,form\n"
        "x,page_view,2026-06-29T23:59:59.999999Z,/pricing,\n"
        "7,form_submit,2026-06-01,,demo\n"
    )
    result = run(
        "score", "--model", files["model.yaml"], "--contacts", str(contacts),
        "--events", str(events), "--as-of", AS_OF,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {line["contact_id"] for line in lines_of(result.stdout)} == {"x", "7", "z"}


def test_check_valid_model_and_warnings(tmp_path: Path, files: dict[str, str]) -> None:
    result = run("check", "--model", files["model.yaml"])
    assert result.exit_code == 0
    assert result.stdout == f"{files['model.yaml']}: valid, 1 model (web)\n"
    assert result.stderr == ""
    unbounded = tmp_path / "unbounded.yaml"
    unbounded.write_text(
        MODEL.replace("        max_points: 30\n", "").replace("        window_days: 30\n", "", 1)
    )
    result = run("check", "--model", str(unbounded))
    assert result.exit_code == 0
    assert result.stderr == (
        f"warning: {unbounded}:7: models[0].rules[1]: behaviour rule 'pricing' has no "
        "max_points and no window_days: its points grow without limit as events pile up\n"
    )
    assert result.stdout.endswith("valid, 1 model (web), 1 warning\n")


def test_check_invalid_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: web\n    name: again\n")
    result = run("check", "--model", str(bad))
    assert result.exit_code == 2
    assert result.stderr == (
        f"{bad}:3: (file): duplicate key 'name' (a key may appear only once in a mapping)\n"
    )


@pytest.mark.parametrize("command", ["check", "explain"])
def test_exactly_one_of_model_or_config(command: str, files: dict[str, str]) -> None:
    extra = ["--contact", "a"] if command == "explain" else []
    neither = run(command, *extra)
    assert neither.exit_code == 2 and neither.stderr == "give exactly one of --model or --config\n"
    both = run(command, "--model", files["model.yaml"], "--config", "x.yaml", *extra)
    assert both.exit_code == 2 and both.stderr == "give exactly one of --model or --config\n"


def test_config_form_is_handed_to_the_sync_and_fails_cleanly(tmp_path: Path) -> None:
    missing = str(tmp_path / "leadsync.yaml")
    for args in (
        ["check", "--config", missing],
        ["explain", "--config", missing, "--contact", "a"],
    ):
        result = run(*args)
        assert result.exit_code == 2, result.output
        assert len(result.stderr.splitlines()) == 1
        assert missing in result.stderr


def test_explain_shows_each_rule_the_score_and_the_band(files: dict[str, str]) -> None:
    result = run(
        "explain", "--model", files["model.yaml"], "--contacts", files["contacts.csv"],
        "--events", files["events.jsonl"], "--contact", "a", "--as-of", AS_OF,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = result.stdout
    for expected in (
        "director",
        "pricing",
        "demo",
        "+5",
        "+10",
        "15",
        "warm",
        "form_submit at 2026-06-21T08:00:00Z",
    ):
        assert expected in text, (expected, text)


def test_explain_unknown_or_unscored_contact(tmp_path: Path, files: dict[str, str]) -> None:
    base = [
        "--contacts",
        files["contacts.csv"],
        "--events",
        files["events.jsonl"],
        "--as-of",
        AS_OF,
    ]
    result = run("explain", "--model", files["model.yaml"], *base, "--contact", "nobody")
    assert result.exit_code == 2
    assert result.stderr == f"{files['contacts.csv']}: no contact with id 'nobody'\n"
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(
        MODEL.replace(
            "score_field: web_score\n",
            "score_field: web_score\n    applies_to: [{field: job_title, match: {contains: director}}]\n",
        )
    )
    result = run("explain", "--model", str(narrow), *base, "--contact", "b")
    assert result.exit_code == 0
    assert "not scored by this model" in result.stdout


def test_explain_needs_data_files_with_model(files: dict[str, str]) -> None:
    result = run("explain", "--model", files["model.yaml"], "--contact", "a")
    assert result.exit_code == 2 and result.stderr == "missing option --contacts\n"


def test_end_to_end_in_a_subprocess(files: dict[str, str], tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text(
        "contact_id,type,occurred_at,url\n"
        "a,page_view,2026-06-20T10:00:00Z,/pricing\n"
        "b,page_view,not-a-time,/pricing\n"
    )
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from scheduler.cli import main; main()",
            "score",
            "--model",
            files["model.yaml"],
            "--contacts",
            files["contacts.csv"],
            "--events",
            str(events),
            "--as-of",
            AS_OF,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stderr.splitlines()[0] == (
        f"{events}:3: occurred_at: not a timestamp: 'not-a-time' "
        "(expected ISO 8601 such as 2026-06-30T12:00:00Z)"
    )
    scores = {line["contact_id"]: line["score"] for line in lines_of(completed.stdout)}
    assert scores == {"a": 15.0, "b": 0.0}


def test_closed_pipe_ends_quietly(files: dict[str, str], tmp_path: Path) -> None:
    contacts = tmp_path / "many.csv"
    contacts.write_text(
        "id,job_title\n" + "".join(f"p{i},Director of Things {i}\n" for i in range(20_000))
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from scheduler.cli import main; main()",
            "score",
            "--model",
            files["model.yaml"],
            "--contacts",
            str(contacts),
            "--events",
            files["events.jsonl"],
            "--as-of",
            AS_OF,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    assert json.loads(first)["contact_id"] == "p0"
    process.stdout.close()  # like `| head -1`
    errors = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=120) == 0
    assert errors == ""
