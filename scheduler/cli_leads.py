"""``leadsync leads``: contacts by their last written score, read from the state store.

The score shown is the one the CRM holds (the last the sync wrote), not a fresh
computation; the reasons are worked out again from the local copy of the contact as
of the last run, which is the run that decided the score (or one that found it moved
by less than ``writeback.min_change``). Everything here only reads the store, through
its engine and tables, so that it never competes with a running sync for the lock.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from scheduler.cli_common import stdout
from scheduler.cli_sync import UsageError, _guard, _load, _out, load_model_files, open_store
from scheduler.state import StateStore, from_epoch, loads

if TYPE_CHECKING:
    from scoring.model import ScoringModel

BANDS = ("hot", "warm", "cold")
_EVENT_KEYS = frozenset({"id", "contact_id", "type", "occurred_at"})
NOTE = (
    "score: the last score written to the CRM; reasons: recomputed from the local copy "
    "as of the last run"
)


class LeadReason(TypedDict):
    """A non-zero reason of a lead's score, rounded as shown."""

    rule: str
    points: float


class LeadsData(TypedDict):
    """What ``leadsync leads --json`` prints."""

    note: str
    as_of: str | None
    band_counts: dict[str, dict[str, int]]
    # Each: contact_id, name, model, score, band, last_crossing_at, owner_id, reasons
    # (a list of LeadReason). Plain dicts while the demo's result declares them so.
    leads: list[dict[str, Any]]


def band_counts(store: StateStore, models: Sequence[str] = ()) -> dict[str, dict[str, int]]:
    """``{model: {hot, warm, cold}}`` of the last written bands; ``models`` are listed
    even when nothing was written for them yet."""
    ms = store.t["model_state"]
    out: dict[str, dict[str, int]] = {m: dict.fromkeys(BANDS, 0) for m in models}
    with store.tx() as conn:
        rows = conn.execute(
            sa.select(ms.c.model, ms.c.written_band, sa.func.count())
            .where(ms.c.written_score.is_not(None))
            .group_by(ms.c.model, ms.c.written_band)
        ).all()
    for model, band, n in rows:
        counts = out.setdefault(str(model), dict.fromkeys(BANDS, 0))
        counts[str(band)] = counts.get(str(band), 0) + int(n)
    return out


def last_run_at(store: StateStore) -> datetime | None:
    """When the newest run started: the time the written scores were computed at."""
    runs = store.last_runs(1)
    started = runs[0]["started_at"] if runs else None
    return started if isinstance(started, datetime) else None


def _crossings_at(store: StateStore, ids: Sequence[str]) -> dict[tuple[str, str], datetime]:
    """When the newest crossing acted on was recorded, per (contact, model). A crossing's
    ledger group ends in ``:c<N>``; immediate events (``:e:...``) are not crossings."""
    led = store.t["ledger"]
    out: dict[tuple[str, str], datetime] = {}
    if not ids:
        return out
    with store.tx() as conn:
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            rows = conn.execute(
                sa.select(led.c.contact_id, led.c.model, led.c.group_key, led.c.created_at).where(
                    led.c.contact_id.in_(chunk)
                )
            ).all()
            for cid, model, group, created in rows:
                token = str(group)[len(f"{model}:{cid}:") :]
                if not token.startswith("c"):
                    continue
                at = from_epoch(created)
                key = (str(cid), str(model))
                if at is not None and (key not in out or at > out[key]):
                    out[key] = at
    return out


def _owners_assigned(store: StateStore, ids: Sequence[str]) -> dict[str, tuple[float, str]]:
    """The newest owner leadsync gave each contact, with when: the local copy learns of
    it only when the next run reads the contact again."""
    led = store.t["ledger"]
    out: dict[str, tuple[float, str]] = {}
    with store.tx() as conn:
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            rows = conn.execute(
                sa.select(led.c.contact_id, led.c.result_id, led.c.updated_at).where(
                    led.c.contact_id.in_(chunk), led.c.kind == "owner", led.c.status == "done"
                )
            ).all()
            for cid, owner, at in rows:
                if owner and (cid not in out or at > out[cid][0]):
                    out[str(cid)] = (float(at), str(owner))
    return out


def _events_of(store: StateStore, ids: Sequence[str]) -> list[dict[str, object]]:
    """The kept events of these contacts, shaped as the scorer reads them (as
    ``StateStore.get_contact`` gives them), a few hundred contacts a query."""
    ev = store.t["events"]
    out: list[dict[str, object]] = []
    with store.tx() as conn:
        for i in range(0, len(ids), 500):
            q = sa.select(ev).where(ev.c.contact_id.in_(list(ids[i : i + 500])))
            for e in conn.execute(q.order_by(ev.c.contact_id, ev.c.occurred_at, ev.c.event_id)):
                attrs = loads(e.attributes) or {}
                item: dict[str, object] = {k: v for k, v in attrs.items() if k not in _EVENT_KEYS}
                item.update(
                    id=e.event_id,
                    contact_id=e.contact_id,
                    type=e.type,
                    occurred_at=from_epoch(e.occurred_at),
                )
                out.append(item)
    return out


def lead_rows(
    store: StateStore,
    models: Sequence[ScoringModel],
    *,
    as_of: datetime,
    band: str | None = None,
    model: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Contacts by last written score, highest first (ties by id), each with
    ``contact_id, name, model, score, band, last_crossing_at, owner_id, reasons``."""
    from scoring.engine import score

    ms, c = store.t["model_state"], store.t["contacts"]
    q = (
        sa.select(ms.c.contact_id, ms.c.model, ms.c.written_score, ms.c.written_band)
        .where(ms.c.written_score.is_not(None))
        .order_by(ms.c.written_score.desc(), ms.c.contact_id, ms.c.model)
    )
    if band:
        q = q.where(ms.c.written_band == band)
    if model:
        q = q.where(ms.c.model == model)
    if limit is not None and limit > 0:
        q = q.limit(limit)
    with store.tx() as conn:
        rows = conn.execute(q).all()
        ids = sorted({str(r.contact_id) for r in rows})
        kept: dict[str, tuple[dict[str, object], float]] = {}
        for i in range(0, len(ids), 500):
            for k in conn.execute(
                sa.select(c.c.contact_id, c.c.fields, c.c.updated_at).where(
                    c.c.contact_id.in_(ids[i : i + 500])
                )
            ):
                kept[str(k.contact_id)] = (loads(k.fields) or {}, float(k.updated_at or 0.0))
    events = _events_of(store, ids)
    by_name = {m.name: m for m in models}
    wanted = [by_name[n] for n in sorted({str(r.model) for r in rows}) if n in by_name]
    reasons: dict[tuple[str, str], list[LeadReason]] = {}
    if wanted and kept:
        contacts = [{"id": cid, **fields} for cid, (fields, _) in kept.items()]
        for result in score(wanted, contacts, events, as_of=as_of):
            ranked = sorted(result.reasons, key=lambda x: (-abs(float(x.points)), x.rule))
            reasons[(result.contact_id, result.model)] = [
                {"rule": x.rule, "points": round(float(x.points), 2)}
                for x in ranked
                if float(x.points) != 0
            ]
    crossed = _crossings_at(store, ids)
    assigned = _owners_assigned(store, ids)
    out: list[dict[str, Any]] = []
    for r in rows:
        cid, mname = str(r.contact_id), str(r.model)
        fields, seen_at = kept.get(cid, ({}, 0.0))
        owner = fields.get("owner_id")
        if cid in assigned and assigned[cid][0] >= seen_at:
            owner = assigned[cid][1]
        at = crossed.get((cid, mname))
        out.append(
            {
                "contact_id": cid,
                "name": " ".join(
                    str(fields.get(k) or "") for k in ("first_name", "last_name")
                ).strip(),
                "model": mname,
                "score": float(r.written_score),
                "band": r.written_band,
                "last_crossing_at": at.isoformat() if at else None,
                "owner_id": None if owner is None else str(owner),
                "reasons": reasons.get((cid, mname), []),
            }
        )
    return out


def reasons_cell(reasons: Sequence[LeadReason], limit: int = 3, sep: str = ", ") -> str:
    return sep.join(f"{x['rule']} {x['points']:+g}" for x in reasons[:limit])


def short_time(iso: str | None) -> str:
    """``2026-06-30 12:00:00`` (UTC) for tables; JSON keeps the full ISO 8601 stamp."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def print_leads(data: LeadsData, *, fmt: str, console: Console | None = None) -> None:
    if fmt == "json":
        _out(json.dumps(data, default=str, separators=(",", ":")))
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["contact_id", "name", "model", "score", "band", "last_crossing_at",
                    "owner_id", "reasons"])  # fmt: skip
        for x in data["leads"]:
            w.writerow(
                [
                    x["contact_id"],
                    x["name"],
                    x["model"],
                    f"{x['score']:g}",
                    x["band"],
                    x["last_crossing_at"] or "",
                    x["owner_id"] or "",
                    "; ".join(f"{r['rule']}:{r['points']:+g}" for r in x["reasons"]),
                ]
            )
        _out(buf.getvalue())
        return
    con = console or stdout
    ids = [x["contact_id"] for x in data["leads"]] or [""]
    t = Table(title="Leads by last written score")
    t.add_column("contact", no_wrap=True, min_width=max(len(i) for i in ids))
    t.add_column("name", overflow="fold")
    t.add_column("model", overflow="fold")
    t.add_column("score", justify="right", no_wrap=True)
    t.add_column("band", no_wrap=True)
    t.add_column("last crossing", overflow="fold")
    t.add_column("owner", no_wrap=True)
    cells = [reasons_cell(x["reasons"], sep="\n") for x in data["leads"]]
    t.add_column(
        "top reasons", min_width=max([len(line) for c in cells for line in c.splitlines()] + [11])
    )
    for x, cell in zip(data["leads"], cells, strict=True):
        t.add_row(
            x["contact_id"],
            x["name"],
            x["model"],
            f"{x['score']:.1f}",
            x["band"],
            short_time(x["last_crossing_at"]),
            x["owner_id"] or "",
            cell,
        )
    with con.capture() as cap:
        con.print(t)
        counts = "; ".join(
            f"{m}: " + ", ".join(f"{n} {b}" for b, n in c.items())
            for m, c in data["band_counts"].items()
        )
        con.print(f"bands: {counts or 'no score written yet'}")
        when = f"{short_time(data['as_of'])} UTC" if data["as_of"] else "no run yet"
        con.print(f"{data['note']} ({when})")
    _out(cap.get())


def leads_data(
    store: StateStore,
    models: Sequence[ScoringModel],
    *,
    band: str | None = None,
    model: str | None = None,
    limit: int | None = None,
    as_of: datetime | None = None,
) -> LeadsData:
    when = as_of or last_run_at(store)
    rows = lead_rows(
        store,
        models,
        as_of=when or datetime.now(UTC),
        band=band,
        model=model,
        limit=limit,
    )
    return {
        "note": NOTE,
        "as_of": when.isoformat() if when else None,
        "band_counts": band_counts(store, [m.name for m in models]),
        "leads": rows,
    }


def register(app: typer.Typer) -> None:
    """Add ``leads`` to the ``leadsync`` app."""

    @app.command()
    def leads(
        config: str = typer.Option(..., "--config", help="leadsync.yaml"),
        band: str | None = typer.Option(None, "--band", help="hot, warm or cold"),
        model: str | None = typer.Option(None, "--model", help="only this model"),
        limit: int = typer.Option(20, "--limit", min=0, help="at most this many (0: all)"),
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="CSV, one row a lead.")] = False,
    ) -> None:
        """Contacts by the last score written to the CRM, with their reasons.

        Read from the state store (no API call): band, owner, last crossing, and the
        reasons recomputed from the local copy as of the last run; and the number of
        contacts per band and model."""
        with _guard():
            if as_json and as_csv:
                raise UsageError(["--json and --csv: choose one"])
            if band is not None and band not in BANDS:
                raise UsageError([f"--band: expected hot, warm or cold, got {band!r}"])
            cfg = _load(config)
            models = load_model_files(cfg.model_paths())
            if model is not None and model not in {m.name for m in models}:
                names = ", ".join(m.name for m in models)
                raise UsageError([f"--model: no model {model!r} in {config} (it has {names})"])
            store = open_store(cfg)
            try:
                data = leads_data(store, models, band=band, model=model, limit=limit or None)
            finally:
                store.close()
            print_leads(data, fmt="json" if as_json else "csv" if as_csv else "table")
