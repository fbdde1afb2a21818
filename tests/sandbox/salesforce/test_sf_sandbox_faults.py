"""Faults, stats and reset through ``/__sandbox/`` with the official client."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest

from connectors.sandbox.framework import ManualClock, Request, SandboxApp
from connectors.sandbox.salesforce import SalesforceSandbox

CONTROL = "https://acme.my.salesforce.example/__sandbox"


def _faults(payload: dict[str, Any]) -> None:
    answer = requests.post(f"{CONTROL}/faults", json=payload, timeout=5)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("status", "code"), [(503, "SERVER_UNAVAILABLE"), (500, "UNKNOWN_EXCEPTION")]
)
def test_injected_errors_have_salesforce_shape(sf: Salesforce, status: int, code: str) -> None:
    _faults({"error_rate": 1.0, "error_status": status})
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert caught.value.status == status
    assert caught.value.content[0]["errorCode"] == code
    _faults({})
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1


def test_rate_limit_storm_is_request_limit_exceeded(sf: Salesforce) -> None:
    _faults({"rate_limit_storm": True})
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.Lead.create({"LastName": "x", "Company": "y"})
    assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_commit_then_drop_applies_the_write(sf: Salesforce) -> None:
    _faults({"commit_then_drop": 1.0})
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.Lead.create({"LastName": "Ghost", "Company": "DropCo"})
    _faults({})
    found = sf.query("SELECT LastName FROM Lead WHERE Company = 'DropCo'")
    assert [r["LastName"] for r in found["records"]] == ["Ghost"]


def test_reads_are_not_dropped(sf: Salesforce) -> None:
    _faults({"commit_then_drop": 1.0})
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] > 0


def test_latency_uses_the_injected_sleeper(sf: Salesforce, clock: ManualClock) -> None:
    before = clock.now()
    _faults({"latency_ms": 250})
    sf.query("SELECT COUNT() FROM Lead")
    assert clock.now() - before == pytest.approx(0.25)


def test_stats_count_routes_with_ids_replaced(sf: Salesforce, rsps: responses.RequestsMock) -> None:
    requests.delete(f"{CONTROL}/stats", timeout=5)
    lead = sf.Lead.create({"LastName": "S", "Company": "StatCo"})
    sf.Lead.update(lead["id"], {"Title": "x"})
    sf.Lead.get(lead["id"])
    page = sf.query("SELECT Id FROM Task")
    sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    sf.restful("composite/sobjects", method="POST", json={"records": []})
    sf.Lead.describe()
    stats = requests.get(f"{CONTROL}/stats", timeout=5).json()
    base = "/services/data/v59.0"
    assert stats["by_route"] == {
        f"POST {base}/sobjects/Lead": 1,
        f"PATCH {base}/sobjects/Lead/{{id}}": 1,
        f"GET {base}/sobjects/Lead/{{id}}": 1,
        f"GET {base}/query": 1,
        f"GET {base}/query/{{id}}": 1,
        f"POST {base}/composite/sobjects": 1,
        f"GET {base}/sobjects/Lead/describe": 1,
    }
    assert stats["total"] == 7
    assert stats["by_status"] == {"201": 1, "204": 1, "200": 5}


def test_route_key_for_external_ids(box: SalesforceSandbox) -> None:
    request = Request("PATCH", "/services/data/v59.0/sobjects/Lead/Ext__c/A%2F1")
    assert box.route_key(request) == "PATCH /services/data/v59.0/sobjects/Lead/Ext__c/{value}"
    upsert = Request("PATCH", "/services/data/v59.0/composite/sobjects/Task/Key__c/")
    assert box.route_key(upsert) == "PATCH /services/data/v59.0/composite/sobjects/Task/Key__c"


def test_reset_restores_the_seeded_state(sf: Salesforce, app: SandboxApp) -> None:
    count = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    first = sf.query("SELECT Id, Title FROM Lead WHERE IsConverted = false ORDER BY Id LIMIT 1")
    record = first["records"][0]
    sf.Lead.update(record["Id"], {"Title": "Changed"})
    sf.Lead.create({"LastName": "New", "Company": "ResetCo"})
    assert requests.post(f"{CONTROL}/reset", timeout=5).json() == {"reset": True}
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == count
    again = sf.query(f"SELECT Id, Title FROM Lead WHERE Id = '{record['Id']}'")["records"][0]
    assert again["Title"] == record["Title"]
    assert sf.api_usage["api-usage"].used == 2  # the allocation starts afresh too


def test_commit_then_drop_over_tls(tls_sf: Salesforce, app: SandboxApp) -> None:
    app(Request("POST", "/__sandbox/faults", body=b'{"commit_then_drop": 1.0}'))
    with pytest.raises(requests.exceptions.ConnectionError):
        tls_sf.Lead.create({"LastName": "Ghost", "Company": "TlsDropCo"})
    app(Request("POST", "/__sandbox/faults", body=b"{}"))
    found = tls_sf.query("SELECT COUNT() FROM Lead WHERE Company = 'TlsDropCo'")
    assert found["totalSize"] == 1
