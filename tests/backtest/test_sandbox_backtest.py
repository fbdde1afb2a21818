"""Backtest and report against both sandboxes, from the sync's own state store."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.backtest import BacktestOptions, run_backtest
from scheduler.cli_backtest import store_report
from scheduler.outcomes import OutcomeStore, StoreHistory, sync_outcomes
from tests.backtest.sandbox_world import synced_world


@pytest.mark.slow
@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_backtest_and_report_from_a_synced_sandbox(crm: str, tmp_path: Path) -> None:
    with synced_world(crm, tmp_path) as w:
        now = w.clock.datetime()
        summary = sync_outcomes(w.store, w.connector, pipeline="default", started=now)
        assert summary.full and summary.deals > 0
        if crm == "salesforce":
            assert summary.conversions > 0
        deals = OutcomeStore(w.store).deals_frame()
        assert set(deals.get_column("outcome").unique()) >= {"won", "lost"}
        data = StoreHistory(w.store, source=crm, read_at=now).load(w.models)
        assert data.contacts.height > 0 and data.events.height > 0
        result = run_backtest([(m.name, m) for m in w.models], data, BacktestOptions(resamples=50))
        doc = result.to_json()
        assert doc["source"] == crm
        # Fields the CRM changes at conversion are rebuilt or reported, never trusted.
        rebuilt = data.reconstruction.rebuilt
        for note in doc["left_out_fields"]:
            assert note["field"] not in rebuilt
        path = store_report(
            w.config, w.store, w.connector, w.models, now=now, path=tmp_path / "r.html"
        )
        assert path.read_text().startswith("<!DOCTYPE html>")


LEAKY = """
models:
  - name: leaky
    score_field: leaky_score
    bands: {{hot: 50, warm: 25}}
    rules:
      - {{id: stage, kind: fit, field: lifecycle_stage, match: {{in: [{stages}]}}, points: 60}}
      - {{id: converted, kind: fit, field: converted, match: true, points: 30}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_signal_only_in_fields_set_at_conversion_scores_one_half_on_the_sandbox(
    crm: str, tmp_path: Path
) -> None:
    """A model whose only rules read what the CRM sets at conversion (the deal stages,
    not the qualification stages marketing and sales reach before it): today's values
    would rank the buyers almost perfectly; rebuilt as of each snapshot (or left out
    and reported), they carry no signal."""
    from scheduler.backtest import HistoryData
    from scoring.model import load_models
    from tests.backtest.test_backtest_engine import _Trusting

    # The stages the CRM sets at conversion: HubSpot moves a contact to opportunity and
    # customer with the deal (its qualification stages come before, from marketing and
    # sales, and are honest signal); a converted Salesforce Lead lives on as a Contact,
    # which the connector reads as salesqualifiedlead.
    stages = "customer, opportunity" + (", salesqualifiedlead" if crm == "salesforce" else "")
    model = load_models(LEAKY.format(stages=stages), "leaky.yaml").models[0]
    with synced_world(crm, tmp_path, contacts=1500) as w:
        now = w.clock.datetime()
        sync_outcomes(w.store, w.connector, pipeline="default", started=now)
        data = StoreHistory(w.store, source=crm, read_at=now).load([model])
    # HubSpot's stage-entry dates come with every contact read and are kept by the
    # sync, so the stage is rebuilt as of each snapshot; Salesforce's from ConvertedDate.
    assert "lifecycle_stage" in data.reconstruction.rebuilt
    options = BacktestOptions(resamples=0)
    honest = run_backtest([("leaky", model)], data, options).runs[0].figures
    assert honest["positives"] >= 20
    assert honest["auc"] == pytest.approx(0.5, abs=0.05)
    naive_data = HistoryData(
        data.contacts, data.events, data.deals, data.data_end, crm, _Trusting()
    )
    naive = run_backtest([("leaky", model)], naive_data, options).runs[0].figures
    assert naive["auc"] > 0.8, "the control: current values do leak the answer"
