"""The sync against the HubSpot sandbox over loopback HTTP, through the real connector."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sync_e2e import E2E_MODEL_V2, HubSpotWorld

from scheduler.state import StateStore
from scheduler.sync import RunOptions


@pytest.fixture
def w(tmp_path: Path) -> Iterator[HubSpotWorld]:
    world = HubSpotWorld(tmp_path)
    yield world
    world.close()


def _settle(w: HubSpotWorld) -> None:
    """Baseline, then one run that reads back the baseline's own score writes."""
    s = w.run()
    assert s.exit_code == 0, s.error
    assert w.run().exit_code == 0


def _with_owner(w: HubSpotWorld) -> str:
    ids = w.contact_ids()
    for cid in ids:
        if w.contact(cid).get("hubspot_owner_id"):
            return cid
    cid = ids[0]
    w.set_owner(cid, w.owners()[0])
    return cid


def test_baseline_then_runs_with_nothing_changed(w: HubSpotWorld) -> None:
    s = w.run()
    assert s.exit_code == 0 and s.baseline_models == ["main"]
    kept = w.store.count_contacts()
    assert kept > 0 and s.scores_written == kept
    assert s.deals == s.tasks == 0
    some = w.store.contact_ids()[0]
    assert w.contact(some)["leadsync_score"] not in (None, "")
    # The baseline's writes bumped the contacts' modification stamps; the connector
    # knows its own writes, so the next run neither reads them back nor writes.
    s2 = w.run()
    assert s2.exit_code == 0 and s2.scores_written == 0 and s2.deals == 0
    assert w.writes() == 0
    assert s2.api_calls <= 3
    s3 = w.run()
    assert s3.exit_code == 0 and s3.contacts_read == 0 and s3.scores_written == 0
    assert w.writes() == 0 and s3.api_calls <= 3


def test_incremental_run_reads_and_writes_only_the_change(w: HubSpotWorld) -> None:
    _settle(w)
    cid = w.contact_ids()[3]
    w.set_title(cid, "zzwarm analyst")
    s = w.run()
    assert s.contacts_read == 1 and s.scores_written == 1
    assert 55 <= float(w.contact(cid)["leadsync_score"]) <= 65


def test_crossing_creates_one_deal_and_one_task_for_the_owner(w: HubSpotWorld) -> None:
    _settle(w)
    cid = _with_owner(w)
    owner = w.contact(cid)["hubspot_owner_id"]
    w.set_title(cid, "zzbuyer")
    s = w.run()
    assert (s.crossings, s.deals, s.tasks) == (1, 1, 1)
    for _ in range(2):
        assert w.run().deals == 0
    (deal,) = w.deals_of(cid)
    (task,) = w.tasks_of(cid)
    assert deal["hubspot_owner_id"] == task["hubspot_owner_id"] == owner
    assert deal["dealname"].endswith(" - main")
    assert task["hs_task_subject"].startswith("Follow up:")
    assert "buyer" in task["hs_task_body"]


def test_contact_without_owner_gets_one_from_the_pool(w: HubSpotWorld) -> None:
    pool = w.owners()[:2]
    w.writeback = {"on_cross": {"owners": {"pool": pool}}}
    _settle(w)
    a, b = w.contact_ids()[5:7]
    for cid in (a, b):
        w.set_owner(cid, None)
        w.set_title(cid, "zzbuyer")
    s = w.run()
    assert s.owners_assigned == 2 and s.deals == 2
    owners = sorted(w.deals_of(c)[0]["hubspot_owner_id"] for c in (a, b))
    assert owners == sorted(pool)
    assert sorted(w.contact(c)["hubspot_owner_id"] for c in (a, b)) == sorted(pool)


def test_oscillation_creates_nothing_new(w: HubSpotWorld) -> None:
    _settle(w)
    cid = _with_owner(w)
    for title in ["zzbuyer", "zzwarm", "zzbuyer", "zzwarm", "zzbuyer"]:
        w.set_title(cid, title)
        w.run()
    assert len(w.deals_of(cid)) == 1 and len(w.tasks_of(cid)) == 1
    # Re-armed by falling below rearm_below, but our own deal is still open.
    w.set_title(cid, "zzcool")
    w.run()
    w.set_title(cid, "zzbuyer")
    s = w.run()
    assert s.skipped_open_deal == 1 and len(w.deals_of(cid)) == 1


def test_a_reps_open_deal_blocks_a_new_one(w: HubSpotWorld) -> None:
    _settle(w)
    cid = _with_owner(w)
    w.rep_deal(cid)
    w.set_title(cid, "zzbuyer")
    s = w.run()
    assert s.skipped_open_deal == 1 and s.deals == 0 and s.tasks == 0
    assert [d["dealname"] for d in w.deals_of(cid)] == ["Rep's own deal"]
    assert w.tasks_of(cid) == []


def test_immediate_event_is_acted_on_once(w: HubSpotWorld) -> None:
    _settle(w)
    # Page views, e-mails and, for a few per cent of the people active, a demo request:
    # enough simulated activity for some to ask.
    active = list(
        dict.fromkeys(
            cid for seed in range(3, 15) for cid in w.sandbox.simulate_activity(25, seed=seed)
        )
    )
    s = w.run()
    requested = [
        cid
        for cid in active
        if any(e.key.startswith(f"main:{cid}:e:") for e in w.store.ledger_for(cid))
    ]
    assert s.immediate == len(requested) >= 1
    assert s.deals == s.tasks == len(requested)
    w.clock.advance(86400)
    assert w.run().immediate == 0  # the same requests, still in their window
    for cid in requested:
        assert len(w.tasks_of(cid)) == 1 and len(w.deals_of(cid)) == 1


def test_merged_contact_state_moves_to_the_survivor(w: HubSpotWorld) -> None:
    _settle(w)
    before = set(w.store.contact_ids())
    keep, gone = w.contact_ids()[8:10]
    w.merge(keep, gone)
    s = w.run()
    assert s.exit_code == 0 and s.merges >= 1
    after = set(w.store.contact_ids())
    # The sandbox, like HubSpot, may give the merged record a new id: either way the
    # merged-away id is gone, one record remains, and its state is the only one.
    assert gone not in after and len(after) == len(before) - 1
    (survivor,) = after - before or {keep}
    assert w.store.model_states([gone]) == {}
    assert (survivor, "main") in w.store.model_states([survivor])


def test_model_change_re_baselines_without_actions(w: HubSpotWorld) -> None:
    _settle(w)
    cid = _with_owner(w)
    w.set_title(cid, "zzbuyer")
    w.run()
    assert len(w.deals_of(cid)) == 1
    w.model_text = E2E_MODEL_V2
    s = w.run()
    # The one hot contact was acted on already: nothing for --act-on-baseline to do.
    assert s.baseline_models == ["main"] and s.baseline_above_threshold == 0
    assert s.deals == 0 and s.crossings == 0
    assert w.run().baseline_models == []


def test_time_passing_moves_scores_and_writes_follow(w: HubSpotWorld) -> None:
    _settle(w)
    w.clock.advance(timedelta(days=4).total_seconds())
    s = w.run()
    assert s.contacts_read == 0
    assert s.scores_written > 0  # page views decay with their 5-day half-life
    routes = w.app.stats()["by_route"]
    assert routes.get("POST /crm/v3/objects/contacts/batch/update", 0) >= 1


def test_two_concurrent_runs_one_gets_exit_4(w: HubSpotWorld, tmp_path: Path) -> None:
    _settle(w)
    other: list[int] = []

    def during_first_run(stage: str, n: int) -> None:
        if other:
            return
        store = StateStore(f"sqlite:///{tmp_path / 'e2e.db'}", clock=w.clock.now)
        try:
            second = w.sync(store=store, connector=w.make_connector()).run(RunOptions())
            other.append(second.exit_code)
        finally:
            store.close()

    w.set_title(w.contact_ids()[2], "zzwarm")
    w.clock.advance(10)
    first = w.sync(progress=during_first_run).run(RunOptions())
    assert other == [4] and first.exit_code == 0


def test_records_the_crm_rejects_are_reported_and_kept(w: HubSpotWorld) -> None:
    victim = w.contact_ids()[0]
    archived: list[str] = []

    def archive_after_reading(stage: str, n: int) -> None:
        if stage == "read" and not archived:
            w.archive(victim)
            archived.append(victim)

    w.clock.advance(10)
    s = w.sync(progress=archive_after_reading).run(RunOptions())
    assert s.exit_code == 1 and s.rejected == 1
    assert s.scores_written == w.store.count_contacts() - 1
    assert [r["contact_id"] for r in w.store.rejected()] == [victim]


def test_check_config_connects_and_reports_what_is_missing(
    w: HubSpotWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scheduler.cli_sync import check_config

    (w.tmp_path / "e2e.yaml").write_text(w.model_text)
    cfg = w.tmp_path / "leadsync.yaml"
    owner = w.owners()[0]
    cfg.write_text(
        "crm:\n  type: hubspot\n"
        f"  hubspot: {{access_token: '${{HS_TOKEN}}', base_url: '{w.url}', tier: pro}}\n"
        "models: e2e.yaml\nstate: sqlite:///check.db\n"
        f"writeback: {{on_cross: {{owners: {{pool: ['{owner}', nobody@example.com]}}}}}}\n"
    )
    monkeypatch.setenv("HS_TOKEN", "sandbox-token")
    assert check_config(str(cfg)) == 2
    out = capsys.readouterr()
    assert "configuration is valid (1 model(s): main)" in out.out
    assert "ok: credentials accepted" in out.out
    assert "leadsync_score" in out.out  # present or created
    assert "missing: owner 'nobody@example.com'" in out.err
    assert "sandbox-token" not in out.out + out.err
    monkeypatch.setenv("HS_TOKEN", "wrong-token-123456")
    assert check_config(str(cfg)) == 3
    assert "wrong-token-123456" not in capsys.readouterr().err
