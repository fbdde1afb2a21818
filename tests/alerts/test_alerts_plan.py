"""Planning: one alert per (event, destination), under a key that a rerun, a retry
or another process deciding the same crossing plans again and the ledger keeps once."""

from __future__ import annotations

from alert_helpers import alerts, event, plan_and_store

from scheduler.alerts.deliver import pending_alerts


def test_one_entry_per_event_and_destination(store, clock) -> None:
    config = alerts(
        {"type": "slack", "url": "https://hooks.test/a", "on": ["crossing"]},
        {"type": "teams", "url": "https://hooks.test/b", "on": ["immediate"]},
        {
            "type": "email",
            "name": "mail",
            "smtp": {"host": "smtp.test"},
            "from": "ls@x.test",
            "to": "owner",
        },
    )
    entries = plan_and_store(store, config, [event(1), event(2, kind="immediate")], clock.now())
    keys = sorted(e.key for e in entries)
    assert keys == [
        "fit:c1:c1:alert:mail",
        "fit:c1:c1:alert:slack",
        "fit:c2:e:ev2:alert:mail",
        "fit:c2:e:ev2:alert:teams",
    ]
    assert {e.kind for e in entries} == {"alert"}
    mail = next(e for e in entries if e.key == "fit:c1:c1:alert:mail")
    assert mail.spec is not None
    assert mail.spec["to"] == ["ana@example.com"]
    assert mail.spec["owner_name"] == "Ana Reyes"
    assert mail.spec["link"] == "https://crm.test/contact/c1"
    assert mail.spec["reasons"][0] == ["visited pricing", 20.0]
    assert mail.spec["name"] == "Lee Number1"


def test_rerun_and_retry_never_plan_a_second_alert(store, clock) -> None:
    config = alerts({"type": "slack", "url": "https://hooks.test/a"})
    plan_and_store(store, config, [event(1)], clock.now(), run_id="run1")
    # The same crossing decided again (a rerun after a crash, a real-time pass):
    plan_and_store(store, config, [event(1)], clock.now(), run_id="run2")
    assert [e.key for e in pending_alerts(store)] == ["fit:c1:c1:alert:slack"]
    # The next crossing of the same contact is a new alert.
    plan_and_store(store, config, [event(1, token="c2")], clock.now(), run_id="run3")
    assert len(pending_alerts(store)) == 2


def test_owner_email_destination_skips_an_owner_without_email(store, clock) -> None:
    config = alerts(
        {"type": "email", "smtp": {"host": "smtp.test"}, "from": "ls@x.test", "to": "owner"}
    )
    assert (
        plan_and_store(store, config, [event(1, owner="o2"), event(2, owner=None)], clock.now())
        == []
    )


def test_models_filter_and_triggers(store, clock) -> None:
    config = alerts(
        {"type": "slack", "url": "https://hooks.test/a", "on": ["immediate"], "models": ["intent"]}
    )
    assert plan_and_store(store, config, [event(1), event(2, kind="immediate")], clock.now()) == []
    hit = plan_and_store(store, config, [event(3, kind="immediate", model="intent")], clock.now())
    assert [e.key for e in hit] == ["intent:c3:e:ev3:alert:slack"]
