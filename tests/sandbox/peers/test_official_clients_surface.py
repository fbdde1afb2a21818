"""The official clients over real loopback sockets, no stand-in in between: every
record the sandbox holds comes back through ``simple-salesforce``'s REST
``query_all_iter`` on the API versions ELT tools pin and its Bulk API 2.0 queries,
and Bulk 2.0 upserts by Id and by Email land. (``hubspot-api-client``'s ``get_all``
over a loopback server is in the HubSpot surface tests.) Counts come from the
sandbox's own store."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import simple_salesforce.bulk2
from simple_salesforce import Salesforce

from connectors.sandbox import SandboxApp, generate_world, serve
from connectors.sandbox.framework import RunningServer
from connectors.sandbox.salesforce import SalesforceSandbox

OBJECTS = ("Lead", "Contact", "Account", "Opportunity", "OpportunityContactRole", "Task", "Event",
           "Campaign", "CampaignMember", "User", "Group")  # fmt: skip


class _Pinned(requests.Session):
    """Trusts the sandbox's CA even when REQUESTS_CA_BUNDLE is set in the environment."""

    def __init__(self, ca: str) -> None:
        super().__init__()
        self.verify = ca

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        settings["verify"] = self.verify
        return settings


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simple_salesforce.bulk2, "sleep", lambda _s: None)


@pytest.fixture(scope="module")
def box() -> SalesforceSandbox:
    return SalesforceSandbox(world=generate_world(300, seed=23))


@pytest.fixture(scope="module")
def server(box: SalesforceSandbox) -> Iterator[RunningServer]:
    with serve(SandboxApp(box), tls=True) as running:
        yield running


def client(server: RunningServer, version: str) -> Salesforce:
    return Salesforce(
        session_id="sandbox-session",
        instance_url=server.base_url,
        version=version,
        session=_Pinned(str(server.ca_path)),
    )


def held(box: SalesforceSandbox, sobject: str, where: str = "") -> list[dict[str, Any]]:
    return list(box.store.query(f"SELECT Id FROM {sobject} {where}", all_rows=False, page_size=10**9)["records"])  # fmt: skip


@pytest.mark.parametrize("version", ["59.0", "62.0"])
@pytest.mark.parametrize("sobject", OBJECTS)
def test_query_all_iter_reads_every_record(server: RunningServer, box: SalesforceSandbox, sobject: str, version: str) -> None:  # fmt: skip
    got = [r["Id"] for r in client(server, version).query_all_iter(f"SELECT Id FROM {sobject}")]
    expected = [r["Id"] for r in held(box, sobject)]
    assert len(got) == len(expected) and set(got) == set(expected)


@pytest.mark.parametrize("sobject", ["Lead", "Contact", "Opportunity", "Task"])
def test_bulk2_query_reads_every_record(server: RunningServer, box: SalesforceSandbox, sobject: str) -> None:  # fmt: skip
    sf = client(server, "62.0")
    rows: list[dict[str, str]] = []
    for page in getattr(sf.bulk2, sobject).query(f"SELECT Id FROM {sobject}", max_records=250):
        rows.extend(csv.DictReader(io.StringIO(page)))
    expected = {r["Id"] for r in held(box, sobject)}
    assert len(rows) == len(expected) and {r["Id"] for r in rows} == expected


def test_bulk2_upserts_by_id_and_by_email(server: RunningServer, box: SalesforceSandbox) -> None:
    sf = client(server, "62.0")
    leads = box.store.query("SELECT Id, Email FROM Lead WHERE Email != null", all_rows=False, page_size=10**9)["records"]  # fmt: skip
    before = len(held(box, "Lead"))
    by_id = sf.bulk2.Lead.upsert(
        records=[{"Id": r["Id"], "Title": "Via Bulk Id"} for r in leads[:5]], external_id_field="Id"
    )
    assert by_id[0]["numberRecordsProcessed"] == 5 and by_id[0]["numberRecordsFailed"] == 0
    unique = [r for r in leads if len(held(box, "Lead", f"WHERE Email = '{r['Email']}'")) == 1][:3]
    by_email = sf.bulk2.Lead.upsert(
        records=[{"Email": r["Email"], "Title": "Via Bulk Email"} for r in unique]
        + [{"Email": "new.person@bulk-upsert.example", "LastName": "Person", "Company": "New"}],
        external_id_field="Email",
    )
    assert by_email[0]["numberRecordsProcessed"] == len(unique) + 1
    assert by_email[0]["numberRecordsFailed"] == 0
    assert len(held(box, "Lead")) == before + 1
    titles = {r["Id"]: sf.Lead.get(r["Id"])["Title"] for r in unique}
    assert set(titles.values()) == {"Via Bulk Email"}
    assert all(
        sf.Lead.get(r["Id"])["Title"] in ("Via Bulk Id", "Via Bulk Email") for r in leads[:5]
    )
