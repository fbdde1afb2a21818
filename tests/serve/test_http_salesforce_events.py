"""Salesforce Outbound Messages and product events on the real service."""

from __future__ import annotations

import json
from datetime import timedelta

from serve_helpers import SF_ORG, T0, Live
from serve_soap import envelope

ACK = "<Ack>true</Ack>"


def _lead(nid: str, lead: str, email: str = "ada@example.com") -> tuple[str, str, dict[str, str]]:
    fields = {"Id": lead, "Email": email, "SystemModstamp": "2026-03-02T10:00:00.000Z"}
    return nid, "Lead", fields


# ------------------------------------------------------------------------ Salesforce


def test_an_outbound_message_is_stored_and_acknowledged(live: Live) -> None:
    answer = live.salesforce(
        envelope(
            [
                _lead("04l000000000001AAA", "00Q000000000001AAA"),
                ("04l000000000002AAA", "Contact", {"Id": "003000000000001AAA"}),
                ("04l000000000003AAA", "Account", {"Id": "001000000000001AAA"}),
            ]
        )
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert ACK in answer.text
    assert live.inbox.counts() == {"pending": 2}
    live.drainer.run_once()
    by_id = {i.contact_id: i for i in live.processor.seen}
    assert by_id["00Q000000000001AAA"].payload["kind"] == "lead"
    assert by_id["00Q000000000001AAA"].email == "ada@example.com"
    assert by_id["00Q000000000001AAA"].occurred_at.isoformat() == "2026-03-02T10:00:00+00:00"
    assert by_id["003000000000001AAA"].payload["kind"] == "contact"


def test_a_wrong_path_token_or_org_is_refused_and_nothing_is_stored(live: Live) -> None:
    body = envelope([_lead("04l000000000001AAA", "00Q000000000001AAA")])
    assert live.salesforce(body, token="guessed-token-0000000000").status_code == 401
    other_org = envelope([_lead("04l1", "00Q1")], org="00D000000000001AAA")
    answer = live.salesforce(other_org)
    assert answer.status_code == 401 and ACK not in answer.text
    assert live.inbox.counts() == {}


def test_the_15_character_org_id_matches_the_18_character_one(live: Live) -> None:
    body = envelope([_lead("04l000000000001AAA", "00Q1")], org=SF_ORG[:15])
    assert live.salesforce(body).status_code == 200


def test_a_redelivered_message_is_acknowledged_once_stored(live: Live) -> None:
    body = envelope([_lead("04l000000000001AAA", "00Q000000000001AAA")])
    assert ACK in live.salesforce(body).text
    assert ACK in live.salesforce(body).text
    assert live.inbox.counts() == {"pending": 1}


def test_entities_and_malformed_soap_are_refused(live: Live) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><soapenv:Envelope '
        b'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">&lol2;</soapenv:Envelope>'
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>'
    )
    for body in (laughs, external, b"<not-closed>", b"\xff\xfe", b"<a/>", b""):
        answer = live.salesforce(body)
        assert answer.status_code == 400, body
        assert "faultstring" in answer.text
    assert live.inbox.counts() == {}


# ------------------------------------------------------------------------- events


def _event(eid: str, **extra: object) -> dict[str, object]:
    event: dict[str, object] = {
        "id": eid,
        "email": "Ada@Example.com",
        "name": "Project Created",
        "occurred_at": "2026-03-02T09:59:00Z",
        "attributes": {"plan": "trial"},
    }
    event.update(extra)
    return event


def test_product_events_json_and_json_lines(live: Live) -> None:
    one = live.events([_event("e1"), _event("e2", type="form_submit", contact_id="101")])
    lines = b"\n".join(json.dumps(_event(f"e{i}")).encode() for i in (3, 4)) + b"\n"
    two = live.events(lines)
    assert (one.status_code, one.json()) == (202, {"accepted": 2, "duplicates": 0})
    assert two.json() == {"accepted": 2, "duplicates": 0}
    live.drainer.run_once()
    seen = {i.key: i for i in live.processor.seen}
    assert seen["events:e1"].email == "ada@example.com"
    assert seen["events:e1"].payload["type"] == "app_event"
    assert seen["events:e2"].payload["type"] == "form_submit"
    assert seen["events:e2"].contact_id == "101"


def test_event_signatures_are_checked(live: Live) -> None:
    wrong = live.events([_event("e1")], secret="another-secret-0123456789")
    stale = live.events([_event("e2")], stamp=T0 - timedelta(minutes=6))
    missing = live.client.post(live.url + "/v1/events", content=json.dumps(_event("e3")))
    assert [r.status_code for r in (wrong, stale, missing)] == [401, 401, 401]
    assert [r.json()["error"] for r in (wrong, stale, missing)] == [
        "bad_signature",
        "stale",
        "missing_signature",
    ]
    assert live.inbox.counts() == {}


def test_a_bad_event_refuses_the_whole_request_with_one_line(live: Live) -> None:
    answer = live.events([_event("e1"), _event("e2", type="page_veiw")])
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith('event 2: type: "page_veiw" is not an event type')
    assert "page_view" in answer.json()["detail"]
    naive = live.events([_event("e3", occurred_at="2026-03-02T09:59:00")])
    nobody = live.events([{"id": "e4", "occurred_at": "2026-03-02T09:59:00Z"}])
    assert "time zone" in naive.json()["detail"]
    assert nobody.json()["detail"] == "event 1: give contact_id or email"
    assert live.inbox.counts() == {}


def test_metrics_count_refusals_by_reason(live: Live) -> None:
    live.events([_event("e1")], secret="another-secret-0123456789")
    live.events(b"{not json")
    text = live.client.get(live.url + "/metrics").text
    assert 'leadsync_events_refused_total{reason="bad_signature"} 1.0' in text
    assert 'leadsync_events_refused_total{reason="malformed"} 1.0' in text
    assert "leadsync_inbox_depth 0.0" in text
    assert "leadsync_event_to_score_seconds_bucket" in text
    assert live.client.get(live.url + "/healthz").json() == {"status": "ok", "inbox_depth": 0}


def test_a_database_failure_is_503_never_a_2xx(live: Live) -> None:
    with live.inbox.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE leadsync_inbox")
    answer = live.events([_event("e1")])
    soap = live.salesforce(envelope([_lead("04l000000000001AAA", "00Q1")]))
    assert answer.status_code == 503 and answer.json() == {"error": "unavailable"}
    assert soap.status_code == 503 and ACK not in soap.text
    assert live.client.get(live.url + "/healthz").status_code == 503
    assert "leadsync_inbox_depth NaN" in live.client.get(live.url + "/metrics").text
    live.inbox.create()  # the database is back: the service takes requests again
    assert live.events([_event("e1")]).status_code == 202
    assert live.inbox.counts() == {"pending": 1}
