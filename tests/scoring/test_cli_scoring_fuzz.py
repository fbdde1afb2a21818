"""Random data files through ``leadsync score``: exit 0 or 1, never a traceback, and
every rejected row reported as one ``FILE:LINE: field: problem`` line."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from scheduler.cli import app

MODEL = """\
models:
  - name: fuzz
    score_field: s
    bands: {hot: 20, warm: 10}
    rules:
      - {id: size, kind: fit, field: company_size, match: {gte: 50, lt: 1000}, points: 5}
      - {id: title, kind: fit, group: t, field: job_title, match: {regex: '(?i)dir'}, points: 3}
      - {id: any-title, kind: fit, group: t, field: job_title, match: {exists: true}, points: 1}
      - {id: free, kind: fit, field: email, match: {free_email: false}, points: 2}
      - id: pricing
        kind: behavior
        group: pages
        event: page_view
        match: {url: {glob: "*pricing*"}}
        points: 9
        max_per_day: 1
        max_points: 27
        window_days: 30
        half_life_days: 10
      - {id: page, kind: behavior, group: pages, event: page_view, points: 2, max_points: 10}
      - {id: unsub, kind: behavior, event: unsubscribe, points: -5, window_days: 365}
      - {id: demo, kind: behavior, event: form_submit, match: {form: {in: [demo, 1, true]}},
         points: 0, immediate: true, window_days: 30}
    decay:
      - {inactive_days: 5, points: -3}
      - {inactive_days: 20, points: -8}
"""

ROW_ERROR = re.compile(r"^\S+:\d+: \S[^\n]*: [^\n]+$")

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "pricing",
            "/pricing/x",
            "demo",
            "Director",
            "a@gmail.com",
            "b@acme.io",
            "50",
            "1e3",
        ]
    ),
    st.lists(st.integers(), max_size=2),
)
stamps = st.one_of(
    st.sampled_from(
        [
            "2026-06-29T23:59:59.999999Z",
            "2026-06-30T00:00:00Z",
            "2026-06-01T00:00:00+14:00",
            "2026-05-31T12:00:00",
            "2026-06-15",
            "not a time",
            "",
        ]
    ),
    st.integers(min_value=1_700_000_000, max_value=1_800_000_000),
    st.text(max_size=6),
)
ids = st.sampled_from(["a", "b", "c", "", "a "]) | st.integers(min_value=0, max_value=3)


def contact_line() -> st.SearchStrategy[str]:
    return st.fixed_dictionaries(
        {"id": ids},
        optional={
            "job_title": values,
            "email": values,
            "company_size": values,
            "created_at": stamps,
        },
    ).map(json.dumps)


def event_line() -> st.SearchStrategy[str]:
    return st.fixed_dictionaries(
        {
            "contact_id": ids,
            "type": st.sampled_from(["page_view", "form_submit", "unsubscribe", "x"]),
        },
        optional={
            "occurred_at": stamps,
            "id": st.sampled_from(["e1", "e2"]) | st.integers(0, 2),
            "url": values,
            "form": values,
        },
    ).map(json.dumps)


junk = st.sampled_from(["{", "[]", "null", '"text"', "{'single': 1}"])


@settings(
    max_examples=int(os.environ.get("LEADSYNC_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    contacts=st.lists(st.one_of(contact_line(), junk), max_size=6),
    events=st.lists(st.one_of(event_line(), junk), max_size=10),
)
def test_random_rows_never_crash_the_command(
    tmp_path_factory: Any, contacts: list[str], events: list[str]
) -> None:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    (folder / "m.yaml").write_text(MODEL)
    (folder / "c.jsonl").write_text("\n".join(contacts) + "\n")
    (folder / "e.jsonl").write_text("\n".join(events) + "\n")
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--model",
            str(folder / "m.yaml"),
            "--contacts",
            str(folder / "c.jsonl"),
            "--events",
            str(folder / "e.jsonl"),
            "--as-of",
            "2026-06-30T00:00:00Z",
        ],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code in (0, 1), result.output
    stderr = result.stderr.splitlines()
    if result.exit_code == 1:
        assert stderr[-1].endswith("rejected; the other rows were scored")
        for line in stderr[:-1]:
            assert ROW_ERROR.match(line), line
    else:
        assert stderr == []
    for line in result.stdout.splitlines():
        scored = json.loads(line)
        assert scored["band"] in ("hot", "warm", "cold")
        assert 0 <= scored["score"] <= 100
