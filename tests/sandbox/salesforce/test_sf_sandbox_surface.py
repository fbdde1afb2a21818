"""The API surface ELT tools rely on beyond leadsync's own calls: every API version,
Bulk API 2.0 and 1.0, composite/batch, list views, upserts by a standard idLookup
field. Counts are taken from the sandbox's own store, never fixed numbers."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
import requests
import responses
import simple_salesforce.bulk2
from simple_salesforce import Salesforce

from connectors.sandbox.salesforce import SalesforceSandbox
from connectors.sandbox.salesforce import versions as sf_versions

AUTH = {"Authorization": "Bearer sandbox-session"}
INSTANCE = "https://acme.my.salesforce.example"  # where the conftest mounts the sandbox


def held(box: SalesforceSandbox, sobject: str, where: str = "") -> list[dict[str, Any]]:
    """What the sandbox holds, asked of its own store."""
    page = box.store.query(
        f"SELECT Id, Email FROM {sobject} {where}", all_rows=False, page_size=10**9
    )
    return list(page["records"])


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simple_salesforce.bulk2, "sleep", lambda _s: None)


def client(version: str) -> Salesforce:
    return Salesforce(
        session_id="sandbox-session",
        instance_url=INSTANCE,
        version=version,
        session=requests.Session(),
    )


# ----------------------------------------------------------------- versions


def test_versions_listed_oldest_first_with_release_names(rsps: responses.RequestsMock) -> None:
    listing = requests.get(f"{INSTANCE}/services/data/", timeout=5).json()
    versions = [v["version"] for v in listing]
    assert versions[0] == "31.0" and versions == sorted(versions, key=float)
    assert {"59.0", "60.0", "61.0", "62.0"} <= set(versions)
    by_version = {v["version"]: v for v in listing}
    assert by_version["59.0"]["label"] == "Winter '24"
    assert by_version["62.0"] == {
        "label": "Winter '25",
        "url": "/services/data/v62.0",
        "version": "62.0",
    }
    assert sf_versions.label(58) == "Summer '23"


@pytest.mark.parametrize("version", ["60.0", "61.0", "62.0"])
def test_every_listed_version_serves_the_same_records(
    rsps: responses.RequestsMock, box: SalesforceSandbox, version: str
) -> None:
    sf = client(version)
    records = list(sf.query_all_iter("SELECT Id, Email FROM Lead"))
    assert len(records) == len(held(box, "Lead"))
    assert all(r["attributes"]["url"].startswith(f"/services/data/v{version}/") for r in records)


def test_next_records_url_keeps_the_requested_version(
    rsps: responses.RequestsMock, box: SalesforceSandbox
) -> None:
    first = requests.get(
        f"{INSTANCE}/services/data/v62.0/query",
        params={"q": "SELECT Id FROM Lead"},
        headers={**AUTH, "Sforce-Query-Options": "batchSize=200"},
        timeout=5,
    ).json()
    if len(held(box, "Lead")) <= 200:
        pytest.skip("the seeded world holds too few Leads for a second page")
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/")


@pytest.mark.parametrize("version", ["30.0", "65.0", "62.5"])
def test_unsupported_versions_are_not_found(rsps: responses.RequestsMock, version: str) -> None:
    answer = requests.get(f"{INSTANCE}/services/data/v{version}/limits", headers=AUTH, timeout=5)
    assert answer.status_code == 404
    assert answer.json()[0]["errorCode"] == "NOT_FOUND"


# ---------------------------------------------------------------- Bulk API 2.0


def test_bulk2_query_reads_every_lead(rsps: responses.RequestsMock, box: SalesforceSandbox) -> None:
    sf = client("62.0")
    rows: list[dict[str, str]] = []
    for page in sf.bulk2.Lead.query("SELECT Id, Email, IsConverted FROM Lead", max_records=100):
        rows.extend(csv.DictReader(io.StringIO(page)))
    expected = held(box, "Lead")
    assert len(rows) == len(expected)
    assert {r["Id"] for r in rows} == {r["Id"] for r in expected}
    assert {r["IsConverted"] for r in rows} <= {"true", "false"}


def test_bulk2_query_job_shape_and_empty_result(rsps: responses.RequestsMock) -> None:
    base = f"{INSTANCE}/services/data/v61.0/jobs/query"
    job = requests.post(
        base, json={"operation": "query", "query": "SELECT Id, Email FROM Lead WHERE Email = 'nobody@x.invalid'"},
        headers=AUTH, timeout=5,
    ).json()  # fmt: skip
    assert job["state"] == "UploadComplete" and job["id"].startswith("750")
    status = requests.get(f"{base}/{job['id']}", headers=AUTH, timeout=5).json()
    assert status["state"] == "JobComplete" and status["numberRecordsProcessed"] == 0
    page = requests.get(f"{base}/{job['id']}/results", headers=AUTH, timeout=5)
    assert page.headers["Sforce-Locator"] == "null"
    assert page.headers["Sforce-NumberOfRecords"] == "0"
    assert page.text.strip() == '"Id","Email"'


def test_bulk2_bad_query_is_refused_at_creation(rsps: responses.RequestsMock) -> None:
    answer = requests.post(
        f"{INSTANCE}/services/data/v62.0/jobs/query",
        json={"operation": "query", "query": "SELECT Nope__c FROM Lead"},
        headers=AUTH,
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "INVALID_FIELD"


def test_bulk2_upsert_by_id_updates(rsps: responses.RequestsMock, box: SalesforceSandbox) -> None:
    sf = client("62.0")
    count_before = len(held(box, "Lead"))
    target = held(box, "Lead")[:3]
    result = sf.bulk2.Lead.upsert(
        records=[{"Id": r["Id"], "Title": "Bulk Title"} for r in target], external_id_field="Id"
    )
    assert result[0]["numberRecordsProcessed"] == 3 and result[0]["numberRecordsFailed"] == 0
    for r in target:
        assert sf.Lead.get(r["Id"])["Title"] == "Bulk Title"
    assert len(held(box, "Lead")) == count_before  # updated, nothing created


def test_bulk2_upsert_by_email_updates_and_creates(
    rsps: responses.RequestsMock, box: SalesforceSandbox
) -> None:
    sf = client("62.0")
    before = held(box, "Lead", "WHERE Email != null")
    emails: dict[str, list[str]] = {}
    for r in before:
        emails.setdefault(r["Email"].lower(), []).append(r["Id"])
    existing = next(e for e, ids in emails.items() if len(ids) == 1)
    result = sf.bulk2.Lead.upsert(
        records=[
            {"Email": existing, "Title": "By Email"},
            {"Email": "brand.new@bulk.example", "LastName": "New", "Company": "Bulk Co"},
        ],
        external_id_field="Email",
    )
    assert result[0]["numberRecordsProcessed"] == 2 and result[0]["numberRecordsFailed"] == 0
    assert sf.Lead.get(emails[existing][0])["Title"] == "By Email"
    assert len(held(box, "Lead", "WHERE Email != null")) == len(before) + 1
    done = sf.bulk2.Lead.get_successful_records(result[0]["job_id"])
    created = {row["Email"]: row["sf__Created"] for row in csv.DictReader(io.StringIO(done))}
    assert created == {existing: "false", "brand.new@bulk.example": "true"}


def test_bulk2_upsert_on_a_field_that_is_no_lookup_is_refused(rsps: responses.RequestsMock) -> None:
    answer = requests.post(
        f"{INSTANCE}/services/data/v62.0/jobs/ingest",
        json={
            "object": "Lead",
            "operation": "upsert",
            "externalIdFieldName": "Title",
            "contentType": "CSV",
        },
        headers=AUTH,
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "INVALIDJOB"


# ------------------------------------------------------------ REST upsert, views


def test_rest_upsert_by_email_updates_creates_and_refuses_ambiguity(
    rsps: responses.RequestsMock, box: SalesforceSandbox
) -> None:
    sf = client("59.0")
    lead = next(r for r in held(box, "Lead", "WHERE Email != null"))
    matches = held(box, "Lead", f"WHERE Email = '{lead['Email']}'")
    if len(matches) == 1:
        assert sf.Lead.upsert(f"Email/{lead['Email']}", {"Title": "Upserted"}) == 200
        assert sf.Lead.get(lead["Id"])["Title"] == "Upserted"
    assert sf.Lead.upsert("Email/fresh@upsert.example", {"LastName": "F", "Company": "C"}) == 201
    assert len(held(box, "Lead", "WHERE Email = 'fresh@upsert.example'")) == 1
    sf.Lead.create({"LastName": "G", "Company": "C", "Email": "fresh@upsert.example"})
    answer = requests.patch(
        f"{INSTANCE}/services/data/v59.0/sobjects/Lead/Email/fresh@upsert.example",
        json={"Title": "x"},
        headers=AUTH,
        timeout=5,
    )
    assert answer.status_code == 300 and len(answer.json()) == 2


def test_upsert_on_a_field_without_idlookup_stays_refused(rsps: responses.RequestsMock) -> None:
    answer = requests.patch(
        f"{INSTANCE}/services/data/v59.0/sobjects/Lead/Title/Boss", json={}, headers=AUTH, timeout=5
    )
    assert answer.status_code == 404
    assert "external ID field does not exist" in answer.json()[0]["message"]


def test_listviews_are_listed_not_taken_for_an_external_id(rsps: responses.RequestsMock) -> None:
    answer = requests.get(
        f"{INSTANCE}/services/data/v62.0/sobjects/Lead/listviews", headers=AUTH, timeout=5
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["sobjectType"] == "Lead" and body["size"] == len(body["listviews"]) > 0
    assert all(v["id"].startswith("00B") for v in body["listviews"])
    assert body["listviews"][0]["url"].startswith("/services/data/v62.0/sobjects/Lead/listviews/")


# ------------------------------------------------------------- composite/batch


def test_composite_batch_runs_each_subrequest(
    rsps: responses.RequestsMock, box: SalesforceSandbox
) -> None:
    lead = held(box, "Lead")[0]
    answer = requests.post(
        f"{INSTANCE}/services/data/v62.0/composite/batch",
        json={"batchRequests": [
            {"method": "GET", "url": f"v62.0/sobjects/Lead/{lead['Id']}?fields=Id,Email"},
            {"method": "PATCH", "url": f"v62.0/sobjects/Lead/{lead['Id']}", "richInput": {"Title": "Batched"}},
            {"method": "GET", "url": "v62.0/sobjects/Lead/00Q000000000000AAA"},
        ]},
        headers=AUTH, timeout=5,
    )  # fmt: skip
    assert answer.status_code == 200
    body = answer.json()
    assert [r["statusCode"] for r in body["results"]] == [200, 204, 404]
    assert body["hasErrors"] is True
    assert body["results"][0]["result"]["Id"] == lead["Id"]
    assert box.store.get("Lead", lead["Id"], ["Title"])["Title"] == "Batched"


def test_composite_batch_caps_at_25(rsps: responses.RequestsMock) -> None:
    answer = requests.post(
        f"{INSTANCE}/services/data/v62.0/composite/batch",
        json={"batchRequests": [{"method": "GET", "url": "v62.0/limits"}] * 26},
        headers=AUTH,
        timeout=5,
    )
    assert answer.status_code == 400


# ------------------------------------------------------------------- composite


def test_composite_runs_queries_in_one_call_and_follows_references(
    rsps: responses.RequestsMock, box: SalesforceSandbox
) -> None:
    leads = held(box, "Lead")
    used_before, _limit = box.api_usage()
    q = "SELECT+Id+FROM+Lead+ORDER+BY+Id"
    answer = requests.post(
        f"{INSTANCE}/services/data/v62.0/composite",
        json={"allOrNone": False, "compositeRequest": [
            {"method": "GET", "url": f"/services/data/v62.0/query/?q={q}", "referenceId": "first",
             "httpHeaders": {"Sforce-Query-Options": "batchSize=200"}},
            {"method": "GET", "url": "@{first.nextRecordsUrl}", "referenceId": "second"},
            {"method": "GET", "url": "/services/data/v62.0/queryAll/?q=SELECT+Id+FROM+Contact",
             "referenceId": "contacts"},
            {"method": "GET", "url": "@{nowhere.nextRecordsUrl}", "referenceId": "dangling"},
        ]},
        headers=AUTH, timeout=5,
    )  # fmt: skip
    assert answer.status_code == 200
    results = answer.json()["compositeResponse"]
    assert [r["referenceId"] for r in results] == ["first", "second", "contacts", "dangling"]
    assert [r["httpStatusCode"] for r in results] == [200, 200, 200, 400]
    first, second = results[0]["body"], results[1]["body"]
    assert len(first["records"]) == 200 and first["totalSize"] == len(leads)
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/")
    ids = [r["Id"] for r in first["records"] + second["records"]]
    assert ids == sorted(r["Id"] for r in leads)[: len(ids)] and len(set(ids)) == len(ids)
    assert results[3]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    used_after, _limit = box.api_usage()
    assert used_after - used_before == 1  # the whole request is one call


@pytest.mark.parametrize(
    ("subrequests", "why"),
    [
        ([{"method": "GET", "url": "/services/data/v62.0/query/?q=SELECT+Id+FROM+Lead",
           "referenceId": f"q{i}"} for i in range(6)], "six query operations"),
        ([{"method": "GET", "url": "/services/data/v62.0/limits", "referenceId": f"r{i}"}
          for i in range(26)], "26 subrequests"),
        ([{"method": "GET", "url": "/services/data/v62.0/limits", "referenceId": "same"}] * 2,
         "a repeated referenceId"),
        ([{"method": "GET", "url": "/services/data/v62.0/limits"}], "no referenceId"),
    ],
)  # fmt: skip
def test_composite_refuses_a_malformed_request_whole(
    rsps: responses.RequestsMock, box: SalesforceSandbox, subrequests: list[Any], why: str
) -> None:
    lead = held(box, "Lead")[0]
    body = {"compositeRequest": [
        *subrequests,
        {"method": "PATCH", "url": f"/services/data/v62.0/sobjects/Lead/{lead['Id']}",
         "referenceId": "write", "body": {"Title": "Must not land"}},
    ]}  # fmt: skip
    if why == "26 subrequests":
        body["compositeRequest"] = body["compositeRequest"][1:]
    answer = requests.post(
        f"{INSTANCE}/services/data/v62.0/composite", json=body, headers=AUTH, timeout=5
    )
    assert answer.status_code == 400, why
    assert box.store.get("Lead", lead["Id"], ["Title"])["Title"] != "Must not land"


def test_composite_writes_and_refuses_all_or_none_it_cannot_roll_back(
    rsps: responses.RequestsMock, box: SalesforceSandbox
) -> None:
    lead = held(box, "Lead")[0]
    write = {"method": "PATCH", "url": f"/services/data/v62.0/sobjects/Lead/{lead['Id']}",
             "referenceId": "write", "body": {"Title": "Composed"}}  # fmt: skip
    refused = requests.post(
        f"{INSTANCE}/services/data/v62.0/composite",
        json={"allOrNone": True, "compositeRequest": [write]},
        headers=AUTH, timeout=5,
    )  # fmt: skip
    assert refused.status_code == 400
    assert box.store.get("Lead", lead["Id"], ["Title"])["Title"] != "Composed"
    done = requests.post(
        f"{INSTANCE}/services/data/v62.0/composite",
        json={"compositeRequest": [write]}, headers=AUTH, timeout=5,
    )  # fmt: skip
    assert done.json()["compositeResponse"][0]["httpStatusCode"] == 204
    assert box.store.get("Lead", lead["Id"], ["Title"])["Title"] == "Composed"


# ---------------------------------------------------------------- Bulk API 1.0


def test_bulk1_query_job_reads_every_lead(
    rsps: responses.RequestsMock, box: SalesforceSandbox
) -> None:
    import xml.etree.ElementTree as ET

    ns = {"a": "http://www.force.com/2009/06/asyncapi/dataload"}
    base = f"{INSTANCE}/services/async/61.0/job"
    headers = {"X-SFDC-Session": "sandbox-session", "Content-Type": "application/json"}
    job = requests.post(
        base, data=json.dumps({"operation": "queryAll", "object": "Lead", "contentType": "CSV"}),
        headers=headers, timeout=5,
    )  # fmt: skip
    assert job.status_code == 201
    job_id = job.json()["id"]
    batch = requests.post(
        f"{base}/{job_id}/batch", data="SELECT Id, Email FROM Lead",
        headers={**headers, "Content-Type": "text/csv"}, timeout=5,
    )  # fmt: skip
    batch_id = ET.fromstring(batch.content).findtext("a:id", namespaces=ns)
    status = ET.fromstring(requests.get(f"{base}/{job_id}/batch/{batch_id}", headers=headers, timeout=5).content)  # fmt: skip
    assert status.findtext("a:state", namespaces=ns) == "Completed"
    results = ET.fromstring(requests.get(f"{base}/{job_id}/batch/{batch_id}/result", headers=headers, timeout=5).content)  # fmt: skip
    result_id = results.findtext("a:result", namespaces=ns)
    data = requests.get(f"{base}/{job_id}/batch/{batch_id}/result/{result_id}", headers=headers, timeout=5)  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(data.text)))
    all_rows = box.store.query("SELECT Id FROM Lead", all_rows=True, page_size=10**9)["records"]
    assert len(rows) == len(all_rows)
    closed = requests.post(f"{base}/{job_id}", data=json.dumps({"state": "Closed"}), headers=headers, timeout=5)  # fmt: skip
    assert closed.json()["state"] == "Closed"


def test_bulk_ids_are_one_stats_key(box: SalesforceSandbox) -> None:
    from connectors.sandbox.framework import Request
    from connectors.sandbox.salesforce.bulk import mint

    job, batch = mint("750", 1), mint("751", 2)
    path = f"/services/async/61.0/job/{job}/batch/{batch}/result/{batch}-r"
    assert box.route_key(Request("GET", path)) == "GET /services/async/61.0/job/{id}/batch/{id}/result/{id}"  # fmt: skip
    query_job = Request("GET", f"/services/data/v62.0/jobs/query/{job}/results")
    assert box.route_key(query_job) == "GET /services/data/v62.0/jobs/query/{id}/results"


def test_bulk1_refuses_a_bad_session(rsps: responses.RequestsMock) -> None:
    answer = requests.post(
        f"{INSTANCE}/services/async/61.0/job",
        data="{}",
        headers={"X-SFDC-Session": "nope", "Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["exceptionCode"] == "InvalidSessionId"
