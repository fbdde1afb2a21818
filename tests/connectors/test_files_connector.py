"""The ``files`` connector: exports read as a CRM, fingerprint cursor, read-only."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import (
    Budget,
    Connector,
    ConnectorConfigError,
    DealSpec,
    FieldCheck,
    FieldSpec,
    ReadBatch,
    RuntimeContext,
    ScoreUpdate,
    TaskSpec,
)
from connectors.files import FilesConnector
from connectors.registry import create
from connectors.sandbox.framework import ManualClock

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 6, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def context() -> RuntimeContext:
    clock = ManualClock()
    return RuntimeContext(
        now=lambda: datetime.fromtimestamp(clock.now(), tz=UTC), sleep=clock.sleep
    )


def write_exports(tmp_path: Path, contacts: int = 3) -> tuple[Path, Path]:
    contacts_file = tmp_path / "contacts.csv"
    rows = ["id,email,company_size,created_at,kind"]
    rows += [f"c{i},p{i}@acme.io,{i * 10},2026-01-0{1 + i % 9}T08:00:00Z," for i in range(contacts)]
    contacts_file.write_text("\n".join(rows) + "\n")
    events_file = tmp_path / "events.jsonl"
    events_file.write_text(
        '{"contact_id": "c0", "type": "page_view", "occurred_at": "2026-06-01T10:00:00Z", "url": "/pricing"}\n'
        '{"contact_id": "c0", "type": "page_view", "occurred_at": "2026-06-01T10:00:00Z", "url": "/pricing"}\n'
        '{"id": "e9", "contact_id": "c1", "type": "form_submit", "occurred_at": "2026-01-01T12:00:00+02:00", "form": "demo"}\n'
    )
    return contacts_file, events_file


def connector(tmp_path: Path, **settings: object) -> FilesConnector:
    write_exports(tmp_path)
    config = {"contacts": "contacts.csv", "events": "events.jsonl", "base_dir": str(tmp_path)}
    config.update(settings)  # type: ignore[arg-type]
    return FilesConnector.from_config(config, context=context())


def read_all(
    conn: FilesConnector, cursor: object = None, since: datetime = EPOCH
) -> list[ReadBatch]:
    return list(conn.read_changes(cursor, until=UNTIL, events_since=since))  # type: ignore[arg-type]


def test_is_registered_and_implements_the_protocol(tmp_path: Path) -> None:
    write_exports(tmp_path)
    conn = create(
        "files",
        {"contacts": str(tmp_path / "contacts.csv"), "events": str(tmp_path / "events.jsonl")},
        context=context(),
    )
    assert isinstance(conn, FilesConnector)
    assert isinstance(conn, Connector)
    assert conn.name == "files"


def test_contacts_and_events_are_normalised(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    (batch,) = read_all(conn)
    assert [c.id for c in batch.contacts] == ["c0", "c1", "c2"]
    c1 = batch.contacts[1]
    assert c1.fields == {
        "email": "p1@acme.io",
        "company_size": 10,
        "created_at": datetime(2026, 1, 2, 8, tzinfo=UTC),
    }
    assert c1.kind == "contact"
    events = {e.contact_id + ":" + e.type: e for e in batch.events}
    demo = events["c1:form_submit"]
    assert demo.id == "e9"
    assert demo.occurred_at == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert demo.occurred_at.tzinfo is not None
    assert demo.attributes == {"form": "demo"}
    assert conn.rejected == []


def test_events_without_ids_get_stable_distinct_ids(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    first = [e.id for e in read_all(conn)[0].events if e.contact_id == "c0"]
    again = [e.id for e in read_all(conn)[0].events if e.contact_id == "c0"]
    assert len(first) == 2 and len(set(first)) == 2
    assert first == again


def test_events_older_than_events_since_are_left_out(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    (batch,) = read_all(conn, since=datetime(2026, 3, 1, tzinfo=UTC))
    assert {e.contact_id for e in batch.events} == {"c0"}
    assert len(batch.contacts) == 3  # contacts are a snapshot: all of them


def test_unchanged_export_yields_nothing_and_a_changed_one_everything(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    batches = read_all(conn)
    cursor = batches[-1].cursor
    assert cursor is not None
    assert read_all(conn, cursor) == []
    # touched but identical: still unchanged (content decides)
    contacts_file = tmp_path / "contacts.csv"
    stat = contacts_file.stat()
    os.utime(contacts_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert read_all(conn, cursor) == []
    with contacts_file.open("a") as handle:
        handle.write("c9,new@acme.io,5,,\n")
    changed = read_all(conn, cursor)
    assert [c.id for c in changed[-1].contacts][-1] == "c9"
    assert changed[-1].cursor is not None and changed[-1].cursor != cursor
    events_file = tmp_path / "events.jsonl"
    newer = changed[-1].cursor
    events_file.write_text(events_file.read_text().replace("demo", "pricing"))
    assert len(read_all(conn, newer)) == 1


def test_batches_hold_about_batch_size_contacts_and_only_the_last_has_the_cursor(
    tmp_path: Path,
) -> None:
    contacts_file, _ = write_exports(tmp_path, contacts=7)
    conn = FilesConnector(contacts_file, tmp_path / "events.jsonl", batch_size=3)
    batches = read_all(conn)
    assert [len(b.contacts) for b in batches] == [3, 3, 1]
    assert [b.cursor is not None for b in batches] == [False, False, True]
    assert {e.contact_id for e in batches[0].events} == {"c0", "c1"}
    assert batches[1].events == () and batches[2].events == ()
    exact = FilesConnector(contacts_file, None, batch_size=7)
    (only,) = read_all(exact)
    assert len(only.contacts) == 7 and only.cursor is not None and only.events == ()


def test_empty_export_still_gives_a_cursor(tmp_path: Path) -> None:
    empty = tmp_path / "contacts.jsonl"
    empty.write_text("")
    (batch,) = read_all(FilesConnector(empty))
    assert batch.contacts == () and batch.cursor is not None


def test_bad_rows_are_skipped_and_listed(tmp_path: Path) -> None:
    contacts_file = tmp_path / "contacts.csv"
    contacts_file.write_text("id,email\nc1,a@x.io\n,b@x.io\nc3,c@x.io\nc1,dup@x.io\n")
    events_file = tmp_path / "events.csv"
    events_file.write_text(
        "contact_id,type,occurred_at,url\n"
        "c1,page_view,2026-06-01T10:00:00Z,/a\n"
        "c3,page_view,june,/b\n"
        "ghost,page_view,2026-06-01T10:00:00Z,/c\n"
    )
    conn = FilesConnector(contacts_file, events_file)
    (batch,) = read_all(conn)
    assert [c.id for c in batch.contacts] == ["c1", "c3"]
    assert [e.contact_id for e in batch.events] == ["c1"]
    assert conn.rejected == [
        f"{events_file}:3: occurred_at: not a timestamp: 'june' "
        "(expected ISO 8601 such as 2026-06-30T12:00:00Z)",
        f"{contacts_file}:3: id: missing",
        f"{contacts_file}:5: id: duplicate contact id 'c1'",
    ]
    assert conn.orphan_events == 1
    read_all(conn)
    assert len(conn.rejected) == 3  # reset per read, not accumulated


def test_kind_column_routes_leads(tmp_path: Path) -> None:
    contacts_file = tmp_path / "people.jsonl"
    contacts_file.write_text(
        '{"id": "l1", "kind": "lead"}\n{"id": "c1", "kind": "Contact"}\n{"id": "x", "kind": "vip"}\n'
    )
    (batch,) = read_all(FilesConnector(contacts_file))
    assert [(c.id, c.kind) for c in batch.contacts] == [
        ("l1", "lead"),
        ("c1", "contact"),
        ("x", "contact"),
    ]
    assert batch.contacts[2].fields == {"kind": "vip"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "files.contacts: missing; give the path of the contacts export"),
        ({"contacts": "nope.csv"}, "files.contacts: {tmp}/nope.csv: no such file"),
        ({"contacts": "contacts.xlsx"}, "files.contacts: {tmp}/contacts.xlsx: unknown file type"),
        ({"contacts": "contacts.csv", "events": "."}, "files.events: . : unknown file type"),
        ({"contacts": "contacts.csv", "events": 3}, "files.events: expected a file path, got int"),
        (
            {"contacts": "contacts.csv", "batch_size": 0},
            "files.batch_size: expected a whole number",
        ),
        ({"contacts": "contacts.csv", "token": "x"}, "files.token: unknown setting"),
    ],
)
def test_configuration_errors_are_one_clear_line(
    tmp_path: Path, config: dict[str, object], message: str
) -> None:
    write_exports(tmp_path)
    with pytest.raises(ConnectorConfigError) as info:
        FilesConnector.from_config({**config, "base_dir": str(tmp_path)}, context=context())
    text = str(info.value)
    assert "\n" not in text
    expected = message.replace("{tmp}", str(tmp_path))
    if expected.startswith("files.events: . :"):
        assert text.startswith("files.events:") and "unknown file type" in text
    else:
        assert text.startswith(expected), text


def test_directory_given_as_export(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ConnectorConfigError, match="is a directory, not a file"):
        FilesConnector.from_config({"contacts": str(tmp_path / "dir.csv")}, context=context())


def test_non_utf8_export_stops_the_read_with_a_config_error(tmp_path: Path) -> None:
    contacts_file = tmp_path / "contacts.csv"
    contacts_file.write_bytes(b"id,name\nc1,Andr\xe9\n")
    with pytest.raises(
        ConnectorConfigError, match=r"files\.contacts: .*contacts\.csv: not UTF-8 text"
    ):
        read_all(FilesConnector(contacts_file))


def test_read_side_extras_and_read_only_writes(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    assert conn.list_owners() == ()
    assert conn.open_deals(["c1"]) == {}
    assert list(conn.read_deal_outcomes(None)) == []
    assert conn.budget() == Budget(calls=0)
    assert conn.ensure_fields([FieldSpec("leadsync_score")]) == FieldCheck()
    calls = [
        lambda: conn.write_scores([ScoreUpdate("c1", {"leadsync_score": 50})]),
        lambda: conn.create_deal(
            DealSpec("k", "c1", "Deal", None, "new", datetime(2026, 7, 1).date())
        ),
        lambda: conn.create_task(
            TaskSpec("k", "c1", None, "Call", "Call them", datetime(2026, 7, 1, tzinfo=UTC))
        ),
        lambda: conn.set_owner("c1", "o1"),
    ]
    for call in calls:
        with pytest.raises(ConnectorConfigError, match="the files connector is read-only"):
            call()
    conn.close()


def test_reads_the_shipped_examples(tmp_path: Path) -> None:
    data = ROOT / "examples" / "data"
    conn = FilesConnector.from_config(
        {"contacts": "contacts.csv", "events": "events.jsonl", "base_dir": str(data)},
        context=context(),
    )
    (batch,) = read_all(conn)
    assert len(batch.contacts) == 20 and conn.rejected == [] and conn.orphan_events == 0
    assert len(batch.events) == len((data / "events.jsonl").read_text().splitlines())
    assert all(e.occurred_at.utcoffset() is not None for e in batch.events)
    sizes = [c.fields.get("company_size") for c in batch.contacts]
    assert all(size is None or isinstance(size, int) for size in sizes)


def test_outcomes_export_is_read_with_bad_rows_listed(tmp_path: Path) -> None:
    (tmp_path / "deals.csv").write_text(
        "contact_id,deal_id,created_at,closed_at,outcome,amount\n"
        "c0,d1,2026-02-01T00:00:00Z,2026-03-01T00:00:00Z,won,1200\n"
        "c1,d2,2026-02-02,,open,\n"
        "c2,d3,2026-02-03,2026-02-20,lost,\n"
        "c2,d4,2026-02-03,,won,5\n"
        "c2,d5,yesterday,2026-02-20,lost,\n"
        "c2,d6,2026-02-03,2026-02-20,maybe,\n"
        "c2,d7,2026-02-03,2026-02-01,lost,\n"
        "c2,d8,2026-02-03,2026-02-04,lost,lots\n"
        ",d9,2026-02-03,2026-02-04,lost,\n"
    )
    conn = connector(tmp_path, outcomes="deals.csv")
    deals = list(conn.read_deal_outcomes(None))
    assert [(d.id, d.contact_id, d.is_open, d.is_won, d.amount) for d in deals] == [
        ("d1", "c0", False, True, 1200.0),
        ("d2", "c1", True, None, None),
        ("d3", "c2", False, False, None),
    ]
    assert deals[0].created_at == datetime(2026, 2, 1, tzinfo=UTC)
    assert deals[0].closed_at == datetime(2026, 3, 1, tzinfo=UTC)
    path = tmp_path / "deals.csv"
    assert conn.rejected_outcomes == [
        f"{path}:5: closed_at: missing for a won deal",
        f"{path}:6: created_at: not a date and time: 'yesterday'",
        f"{path}:7: outcome: expected won, lost or open, got 'maybe'",
        f"{path}:8: closed_at: before created_at",
        f"{path}:9: amount: not a number: 'lots'",
        f"{path}:10: contact_id: missing",
    ]


def test_outcomes_as_jsonl_and_a_header_without_a_column(tmp_path: Path) -> None:
    (tmp_path / "deals.jsonl").write_text(
        '{"contact_id": "c0", "deal_id": 7, "created_at": "2026-02-01", "outcome": "open"}\n'
        "not json\n"
    )
    conn = connector(tmp_path, outcomes="deals.jsonl")
    assert [d.id for d in conn.read_deal_outcomes(None)] == ["7"]
    assert len(conn.rejected_outcomes) == 1
    assert conn.rejected_outcomes[0].startswith(
        f"{tmp_path / 'deals.jsonl'}:2: (json): broken JSON"
    )
    (tmp_path / "bad.csv").write_text("contact,deal_id,created_at,closed_at,outcome\n")
    conn = connector(tmp_path, outcomes="bad.csv")
    with pytest.raises(ConnectorConfigError, match=r"bad.csv:1: contact_id: the header has no"):
        list(conn.read_deal_outcomes(None))


def test_events_header_without_contact_id_is_one_error_naming_the_header(
    tmp_path: Path,
) -> None:
    (tmp_path / "events.csv").write_text(
        "person,type,occurred_at\nc0,page_view,2026-06-01T10:00:00Z\n"
    )
    conn = connector(tmp_path, events="events.csv")
    with pytest.raises(ConnectorConfigError) as caught:
        read_all(conn)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'events.csv'}:1: contact_id: the header has no")
    assert "\n" not in message and "rejected" not in message


def test_check_says_read_only_when_write_back_creates_deals(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    lines = conn.check_deal_settings(pipeline=None, stage="new", lead_status=None)
    assert len(lines) == 1 and "read-only" in lines[0] and "--dry-run" in lines[0]


def test_an_unversioned_cursor_of_an_earlier_release_keeps_working(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    state = read_all(conn)[-1].state
    assert state is not None and conn.checkpoint() == state
    stored = state.to_json()
    assert stored["version"] == 1
    legacy = stored["files"]  # what earlier releases stored: the fingerprints alone
    assert isinstance(legacy, dict)
    loaded = conn.load_state(legacy)
    assert loaded == state
    assert read_all(conn, loaded) == []
    assert conn.bucket == "files:local"
