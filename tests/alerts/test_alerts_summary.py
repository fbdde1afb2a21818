"""The daily summary: once a local day, at or after the configured time."""

from __future__ import annotations

from datetime import UTC, datetime

from alert_helpers import alerts, event, plan_and_store

from scheduler.alerts.deliver import deliver


def test_summary_once_a_day_at_the_local_time(store, clock, catcher) -> None:
    clock.t = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 08:00 in Paris
    config = alerts(
        {
            "type": "slack",
            "url": catcher.url("/s"),
            "on": ["crossing", "digest"],
            "daily_summary": {"at": "08:30", "timezone": "Europe/Paris"},
        }
    )
    plan_and_store(store, config, [event(1), event(2)], clock.now())
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert (report.sent, report.summaries) == (2, 0)  # too early
    clock.t = datetime(2026, 3, 2, 7, 45, tzinfo=UTC)  # 08:45 in Paris
    assert deliver(store, None, config=config, now=clock.now, sleep=clock.sleep).summaries == 1
    summary = catcher.bodies()[-1]
    assert summary["blocks"][0]["text"]["text"] == "leadsync daily summary 2026-03-02: 2 hot leads"
    assert "Number2" in summary["blocks"][1]["text"]["text"]
    # later the same day: nothing; the next day after 08:30 Paris: again
    clock.t = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    assert deliver(store, None, config=config, now=clock.now, sleep=clock.sleep).summaries == 0
    clock.t = datetime(2026, 3, 3, 7, 31, tzinfo=UTC)
    assert deliver(store, None, config=config, now=clock.now, sleep=clock.sleep).summaries == 1
    assert catcher.bodies()[-1]["blocks"][0]["text"]["text"].endswith("2026-03-03: 0 hot leads")
