"""The backtest engine: snapshots, eligibility, labels, leakage, crossings, comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from scheduler import backtest as bt
from scheduler.backtest import BacktestOptions, HistoryData, plan_snapshots, run_backtest
from scoring import evaluation as ev
from tests.backtest.worlds import END, model, world

# One world per scenario and module: each takes a few seconds to backtest.
_cache: dict[tuple[str, str], bt.BacktestResult] = {}


def _run(signal: str, crm: str) -> bt.BacktestResult:
    key = (signal, crm)
    if key not in _cache:
        data = world(signal, crm=crm)  # type: ignore[arg-type]
        _cache[key] = run_backtest([("current", model().models[0])], data)
    return _cache[key]


def _auc_and_se(result: bt.BacktestResult) -> tuple[float, float]:
    pairs = result.runs[0].pairs
    scores = pairs.get_column("score").to_numpy()
    labels = pairs.get_column("label").to_numpy()
    contacts = pairs.get_column("contact_id").to_numpy()
    boot = ev.auc_difference(np.zeros(len(scores)), scores, labels, contacts, resamples=200, seed=5)
    assert boot.low is not None and boot.high is not None
    auc = ev.roc_auc(scores, labels)
    assert auc is not None
    return auc, (boot.high - boot.low) / (2 * 1.96)


@pytest.mark.slow
def test_sizes_make_the_tolerance_three_standard_errors() -> None:
    _, se = _auc_and_se(_run("after", "hubspot"))
    assert 3 * se <= 0.05


@pytest.mark.slow
def test_signal_only_after_the_deal_scores_one_half() -> None:
    result = _run("after", "hubspot")
    auc = result.runs[0].figures["auc"]
    assert auc == pytest.approx(0.5, abs=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_signal_only_in_a_field_set_at_conversion_scores_one_half(crm: str) -> None:
    result = _run("field", crm)
    assert result.runs[0].figures["auc"] == pytest.approx(0.5, abs=0.05)
    # Rebuilt, so not left out: the stage at the snapshot was never "customer".
    assert result.left_out == []


@pytest.mark.slow
def test_field_that_cannot_be_rebuilt_is_left_out_and_reported() -> None:
    result = _run("field", "files")
    assert result.runs[0].figures["auc"] == pytest.approx(0.5, abs=0.05)
    fields = {(note["field"], tuple(note["rules"]), note["applies_to"]) for note in result.left_out}
    assert fields == {("lifecycle_stage", ("customer",), 1)}
    assert result.to_json()["left_out_fields"][0]["model"] == "current"


@pytest.mark.slow
def test_current_value_of_the_field_would_have_leaked() -> None:
    """The control: scored on today's lifecycle stage, the same world looks predictive,
    which is exactly what rebuilding the field prevents."""
    data = world("field", crm="files")
    leaky = HistoryData(
        contacts=data.contacts,
        events=data.events,
        deals=data.deals,
        data_end=data.data_end,
        source="files",
        reconstruction=_Trusting(),
    )
    result = run_backtest([("current", model().models[0])], leaky)
    assert result.runs[0].figures["auc"] > 0.6


class _Trusting:
    """Pretends current values are past values (what a naive backtest does)."""

    rebuilt = bt.CHANGED_AT_CONVERSION

    def as_of(self, contacts: pl.DataFrame, t: datetime) -> pl.DataFrame:
        return contacts

    def change_times(self, contacts: pl.DataFrame) -> pl.DataFrame:
        return bt.NoReconstruction().change_times(contacts)


@pytest.mark.slow
def test_signal_before_the_deal_is_recovered() -> None:
    result = _run("before", "hubspot")
    figures = result.runs[0].figures
    assert figures["auc"] > 0.7
    hot = figures["bands"][0]
    assert hot["name"] == "hot" and hot["lift"] > 2
    filled = [d for d in figures["deciles"] if d["count"]]
    assert filled[0]["lift"] > filled[-1]["lift"]
    assert figures["leads_per_week"] > 0
    assert 0 < figures["median_days_to_deal"] < 45


def test_default_window_and_dropped_snapshots() -> None:
    options = BacktestOptions()
    start, end, kept, dropped = plan_snapshots(options, END)
    assert end == datetime(2025, 10, 3, tzinfo=UTC)  # midnight at or before END - 90 days
    assert start == end - timedelta(weeks=26)
    assert len(kept) == 27 and kept[-1] == end and dropped == []
    late = BacktestOptions(end=END - timedelta(days=20), start=END - timedelta(days=130))
    _, _, kept, dropped = plan_snapshots(late, END)
    assert all(t + timedelta(days=90) <= END for t in kept)
    assert (len(kept), len(dropped)) == (6, 10)  # 16 weekly dates, the last 10 too late
    assert "after the data" in dropped[0]["reason"]


def test_eligibility_and_labels_at_a_snapshot() -> None:
    t = datetime(2025, 6, 1, tzinfo=UTC)
    day = timedelta(days=1)
    contacts = pl.DataFrame(
        {
            "id": ["new", "old", "dealt", "converted", "later", "lostlate"],
            "created_at": [t + day, t - day, t - 9 * day, t - 9 * day, t - 9 * day, t - 9 * day],
            "converted_at": [None, None, None, t, None, None],
            "lifecycle_stage": ["lead"] * 6,
        },
        schema_overrides={"created_at": bt._UTC_DT, "converted_at": bt._UTC_DT},
    )
    deals = pl.DataFrame(
        {
            "deal_id": ["d1", "d2", "d3", "d4"],
            "contact_id": ["dealt", "later", "old", "lostlate"],
            "created_at": [t, t + 10 * day, t + 89 * day, t + 5 * day],
            "closed_at": [t + day, t + 20 * day, t + 91 * day, t + 6 * day],
            "outcome": ["won", "won", "won", "lost"],
            "amount": [1.0, 1.0, 1.0, 1.0],
        },
        schema=bt.DEALS_SCHEMA,
    )
    data = HistoryData(
        contacts=contacts,
        events=pl.DataFrame(
            {"contact_id": ["old"], "type": ["page_view"], "occurred_at": [t]},
            schema_overrides={"occurred_at": bt._UTC_DT},
        ),
        deals=deals,
        data_end=t + 200 * day,
        source="salesforce",
        reconstruction=bt.SalesforceConversion(),
    )
    options = BacktestOptions(start=t, end=t)
    won = run_backtest([("current", model().models[0])], data, options).runs[0].pairs
    labels = dict(won.select("contact_id", "label").iter_rows())
    # created after t, deal at t, converted at t: not eligible.
    assert labels == {"old": 0, "later": 1, "lostlate": 0}
    dealt = (
        run_backtest(
            [("current", model().models[0])],
            data,
            BacktestOptions(start=t, end=t, milestone="deal"),
        )
        .runs[0]
        .pairs
    )
    assert dict(dealt.select("contact_id", "label").iter_rows()) == {
        "old": 1,
        "later": 1,
        "lostlate": 1,
    }
    # The same eligibility and labels, without a model, for other consumers.
    plain = bt.labelled_snapshots(data, [t], horizon=timedelta(days=90))
    assert dict(plain.select("contact_id", "label").iter_rows()) == labels


def test_sparse_daily_replay_equals_scoring_every_day() -> None:
    data = world("before", crm="hubspot", contacts=300, seed=3)
    m = model().models[0]
    usable = [("current", m, m)]
    contacts = bt._prepare_contacts(data)
    start = END - timedelta(days=160)
    end = start + timedelta(days=60)
    sparse = bt._daily_observations(contacts, data, usable, start, end)["current"]
    dense = bt._daily_observations(contacts, data, usable, start, end, every_day=True)["current"]
    assert sparse.height < dense.height
    for threshold in (30.0, 40.0, 50.0, 60.0):
        a = bt._crossings(sparse, m, threshold).select("contact_id", "day").sort(pl.all())
        b = bt._crossings(dense, m, threshold).select("contact_id", "day").sort(pl.all())
        assert a.height > 0 or threshold >= 60
        assert a.equals(b)


@pytest.mark.slow
def test_two_models_side_by_side() -> None:
    data = world("before", crm="hubspot", contacts=2000, seed=12)
    result = run_backtest(
        [
            ("current", model("current", 5).models[0]),
            ("candidate", model("candidate", 30).models[0]),
        ],
        data,
        BacktestOptions(resamples=300),
    )
    comparison = result.comparison
    assert comparison is not None
    assert comparison["models"] == ["current", "candidate"]
    auc = {run.name: run.figures["auc"] for run in result.runs}
    assert comparison["auc_diff"] == pytest.approx(auc["candidate"] - auc["current"])
    low, high = comparison["ci95"]
    assert 0 < low < comparison["auc_diff"] < high
    document = result.to_json()
    assert set(document["models"]) == {"current", "candidate"}
    assert document["comparison"]["ci95"] == [low, high]


@pytest.mark.slow
def test_threshold_advice_f1_and_capacity() -> None:
    data = world("before", crm="hubspot", contacts=2000, seed=13)
    result = run_backtest([("current", model().models[0])], data, BacktestOptions(capacity=5))
    advice = result.to_json()["threshold_advice"]
    pairs = result.runs[0].pairs
    scores = pairs.get_column("score").to_numpy()
    labels = pairs.get_column("label").to_numpy()
    best = ev.max_f1_threshold(scores, labels)
    assert advice["f1"] == {
        "threshold": best.threshold,
        "precision": best.precision,
        "recall": best.recall,
    }
    capacity = advice["capacity"]
    assert capacity["crossings_per_week"] <= 5
    obs = result.runs[0].observations
    m = result.runs[0].model
    weeks = (result.end - result.start) / timedelta(weeks=1)
    lower = bt._crossings(obs, m, capacity["threshold"] - 1).height / weeks
    assert lower > 5
    at = ev.precision_recall_at(scores, labels, capacity["threshold"])
    assert (capacity["precision"], capacity["recall"]) == (at.precision, at.recall)
