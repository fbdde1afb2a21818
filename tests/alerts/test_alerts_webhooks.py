"""Slack and Teams delivery against a real local HTTP server: the payload shapes,
the pause between messages, 429 with Retry-After, back-off, giving up, digests."""

from __future__ import annotations

from alert_helpers import alerts, event, plan_and_store

from scheduler.alerts.catcher import Reply
from scheduler.alerts.deliver import deliver, given_up_alerts, pending_alerts
from scheduler.alerts.render import Message, card_problems, teams_payload


def _slack(catcher, **kw):
    return alerts({"type": "slack", "url": catcher.url("/slack"), **kw})


def test_slack_block_kit_payload(store, clock, catcher) -> None:
    config = _slack(catcher)
    plan_and_store(store, config, [event(1)], clock.now())
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert report.sent == 1
    [body] = catcher.bodies("/slack")
    assert body["text"] == "Lee Number1: fit score 81 (hot, crossed the threshold)"
    types = [b["type"] for b in body["blocks"]]
    assert types == ["header", "section", "section", "actions"]
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert fields == ["*Score*\n81", "*Band*\nhot", "*Model*\nfit", "*Owner*\nAna Reyes"]
    assert body["blocks"][1]["text"]["text"] == "*<https://crm.test/contact/c1|Lee Number1>*"
    assert "• visited pricing: +20" in body["blocks"][2]["text"]["text"]
    assert body["blocks"][3]["elements"][0]["url"] == "https://crm.test/contact/c1"
    assert [e.status for e in store.ledger_for("c1")] == ["done"]
    assert pending_alerts(store) == []


def test_slack_paced_one_a_second_and_retry_after_honoured(store, clock, catcher) -> None:
    config = _slack(catcher)
    plan_and_store(store, config, [event(1), event(2), event(3)], clock.now())
    catcher.script = [
        Reply(200),
        Reply(429, "rate_limited", {"Retry-After": "7"}),
        Reply(200),
        Reply(200),
    ]
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert report.sent == 3 and report.failed == 0
    assert len(catcher.requests) == 4
    # 1 s after the first, 7 s as Slack asked after its 429, then 1 s again.
    assert 7.0 in clock.slept
    assert sum(1 for s in clock.slept if 0.9 <= s <= 1.0) >= 2
    assert all(e.status == "done" for n in (1, 2, 3) for e in store.ledger_for(f"c{n}"))


def test_transient_failures_back_off_then_give_up_after_bounded_passes(
    store, clock, catcher
) -> None:
    config = _slack(catcher)
    plan_and_store(store, config, [event(1), event(2)], clock.now())
    catcher.default = Reply(503, "unavailable")
    for n in range(1, 5):
        report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
        assert report.failed == 1  # the second waits: the destination is failing
        [entry] = store.ledger_for("c1")
        assert (entry.status, entry.attempts) == ("failed", n)
    assert [s for s in clock.slept[:2]] == [1.0, 2.0]  # exponential back-off in a pass
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert report.gave_up == 1
    [given] = given_up_alerts(store)
    assert given.key == "fit:c1:c1:alert:slack"
    assert "HTTP 503" in (given.error or "")
    assert store.ledger_counts()["alert:gave_up"] == 1
    # the service is back: the other alert goes, the given-up one does not
    catcher.default = Reply(200)
    n_before = len(catcher.requests)
    deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert len(catcher.requests) == n_before + 1
    assert store.ledger_for("c2")[0].status == "done"


def test_a_deleted_webhook_is_given_up_at_once_and_the_url_never_shows(
    store, clock, catcher, caplog
) -> None:
    secret_url = catcher.url("/services/T000/B000/XXXXsecretXXXX")
    config = alerts({"type": "slack", "url": secret_url})
    plan_and_store(store, config, [event(1)], clock.now())
    catcher.default = Reply(404, f"no_service for {secret_url}")
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert report.gave_up == 1
    [entry] = store.ledger_for("c1")
    assert entry.status == "gave_up"
    assert "HTTP 404" in (entry.error or "")
    assert "XXXXsecretXXXX" not in (entry.error or "")
    assert "XXXXsecretXXXX" not in " ".join(report.errors)
    assert "XXXXsecretXXXX" not in repr(config)
    assert "HTTP 404" in caplog.text and "XXXXsecretXXXX" not in caplog.text
    from connectors.runtime import Redactor
    from scheduler.alerts.senders import SlackSender

    assert "XXXXsecretXXXX" not in repr(SlackSender("slack", secret_url, redactor=Redactor()))


def test_unreachable_webhook_error_has_no_url(store, clock) -> None:
    config = alerts({"type": "slack", "url": "http://127.0.0.1:9/services/T1/B1/topSECRETtoken"})
    plan_and_store(store, config, [event(1)], clock.now())
    deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    [entry] = store.ledger_for("c1")
    assert entry.status == "failed"
    assert "topSECRETtoken" not in (entry.error or "")


def test_past_max_per_minute_the_rest_fold_into_one_digest(store, clock, catcher) -> None:
    config = _slack(catcher, on=["crossing", "digest"], max_per_minute=2)
    plan_and_store(store, config, [event(n) for n in range(1, 7)], clock.now())
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert (report.sent, report.digests, report.folded) == (2, 1, 4)
    bodies = catcher.bodies()
    assert len(bodies) == 3
    digest = bodies[2]
    assert digest["blocks"][0]["text"]["text"] == "4 more hot leads (past 2 a minute)"
    listed = digest["blocks"][1]["text"]["text"]
    assert all(f"Number{n}" in listed for n in (3, 4, 5, 6))
    folded = [store.ledger_for(f"c{n}")[0] for n in (3, 4, 5, 6)]
    assert {e.status for e in folded} == {"done"}
    assert len({e.result_id for e in folded}) == 1 and folded[0].result_id.startswith("digest:")


def test_without_digest_the_rest_wait_for_the_next_minute(store, clock, catcher) -> None:
    config = _slack(catcher, max_per_minute=2)
    plan_and_store(store, config, [event(n) for n in range(1, 4)], clock.now())
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert report.sent == 3 and report.digests == 0
    assert any(s > 50 for s in clock.slept)  # waited into the next minute


def test_teams_adaptive_card_accepted_with_202(store, clock, catcher) -> None:
    config = alerts({"type": "teams", "url": catcher.url("/teams")})
    plan_and_store(store, config, [event(1)], clock.now())
    catcher.default = Reply(202, "")
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert report.sent == 1
    [body] = catcher.bodies("/teams")
    assert body["type"] == "message"
    [att] = body["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert [b["type"] for b in card["body"]] == ["TextBlock", "FactSet", "TextBlock", "TextBlock"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts == {
        "Lead": "Lee Number1",
        "Score": "81",
        "Band": "hot",
        "Model": "fit",
        "Owner": "Ana Reyes",
    }
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open in CRM", "url": "https://crm.test/contact/c1"}
    ]
    assert card_problems(body) == []


def test_card_validation_names_each_problem() -> None:
    spec = {"name": "X", "score": 1, "band": "hot", "model": "m", "reasons": []}
    good = teams_payload(Message(kind="alert", key="k", alerts=(spec,)))
    card = good["attachments"][0]["content"]
    card["version"] = "2.0"
    card["body"].append({"type": "Fancy"})
    card["body"][1]["facts"].append({"title": "t"})
    card["actions"] = [{"type": "Action.OpenUrl", "title": "go"}]
    assert card_problems(good) == [
        "card.version: '2.0' is not an Adaptive Card version 1.0-1.6",
        "card.body[1].facts[5]: needs text title and value",
        "card.body[2].type: 'Fancy' is not one of ColumnSet, Container, FactSet, Image, TextBlock",
        "card.actions[0].url: required (str)",
    ]
    assert card_problems({"type": "message", "attachments": []}) == [
        "attachments: exactly one attachment expected"
    ]


def test_an_invalid_card_is_never_posted(store, clock, catcher, monkeypatch) -> None:
    from scheduler.alerts import senders

    config = alerts({"type": "teams", "url": catcher.url("/teams")})
    plan_and_store(store, config, [event(1)], clock.now())

    def broken(message):
        payload = teams_payload(message)
        payload["attachments"][0]["content"]["body"] = []
        return payload

    monkeypatch.setattr(senders, "teams_payload", broken)
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert report.gave_up == 1
    assert catcher.requests == []
    assert "card.body: must be a non-empty list" in (store.ledger_for("c1")[0].error or "")


def test_status_shows_owed_and_given_up_alerts(store, clock, catcher) -> None:
    from scheduler.alerts.deliver import alerts_status

    config = _slack(catcher)
    plan_and_store(store, config, [event(1), event(2)], clock.now())
    catcher.script = [Reply(400, "invalid_blocks")]
    deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert alerts_status(store) == {
        "owed": 0,
        "given_up": 1,
        "given_up_recent": [
            {
                "key": "fit:c1:c1:alert:slack",
                "destination": "slack",
                "attempts": 1,
                "error": "slack slack: HTTP 400 invalid_blocks",
            }
        ],
    }


def test_a_retry_after_longer_than_a_run_should_wait_leaves_it_to_the_next_run(
    store, clock, catcher
) -> None:
    config = _slack(catcher)
    plan_and_store(store, config, [event(1)], clock.now())
    catcher.script = [Reply(429, "rate_limited", {"Retry-After": "3600"})]
    report = deliver(store, None, config=config, now=clock.now, sleep=clock.sleep)
    assert report.failed == 1
    assert len(catcher.requests) == 1 and clock.slept == []
    assert deliver(store, None, config=config, now=clock.now, sleep=clock.sleep).sent == 1
