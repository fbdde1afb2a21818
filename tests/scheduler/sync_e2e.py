"""A sandbox CRM on loopback, the real connector, a real state store and one clock for
all three, plus small helpers that change the CRM the way a user of it would (through
its HTTP API), so that end-to-end tests read as stories."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from connectors import registry
from connectors.base import Connector, RuntimeContext
from connectors.sandbox import HubSpotSandbox, ManualClock, SandboxApp, serve
from scheduler.config import config_from_mapping
from scheduler.state import StateStore
from scheduler.sync import RunOptions, RunSummary, Sync
from scoring.model import load_models

# Title tokens no generated person has, so that only the tests make anyone hot.
E2E_MODEL = """\
models:
  - name: main
    score_field: leadsync_score
    bands: {hot: 70, warm: 40}
    rules:
      - {id: buyer, kind: fit, group: title, field: job_title, match: {contains: zzbuyer}, points: 75}
      - {id: warm, kind: fit, group: title, field: job_title, match: {contains: zzwarm}, points: 55}
      - {id: cool, kind: fit, group: title, field: job_title, match: {contains: zzcool}, points: 20}
      - {id: pages, kind: behavior, event: page_view, points: 4, max_points: 20, window_days: 30, half_life_days: 2}
      - {id: demo, kind: behavior, event: form_submit, match: {form: {glob: "demo*request"}}, points: 1, max_points: 3, window_days: 20, immediate: true}
"""

E2E_MODEL_V2 = E2E_MODEL.replace("points: 75}", "points: 80}")


@dataclass
class HubSpotWorld:
    """The HubSpot sandbox with helpers; ``calls`` counts API calls per route."""

    tmp_path: Path
    contacts: int = 40
    clock: ManualClock = field(default_factory=ManualClock)
    writeback: dict[str, Any] = field(default_factory=dict)
    crm_name: str = "hubspot"
    search_lag: float = 3.0

    def __post_init__(self) -> None:
        self.sandbox = HubSpotSandbox(
            contacts=self.contacts, seed=11, clock=self.clock, search_lag_seconds=self.search_lag
        )
        self.app = SandboxApp(self.sandbox, sleep=self.clock.sleep)
        self.server = serve(self.app, port=0)
        self.url = self.server.base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Bearer sandbox-token"
        self.model_text = E2E_MODEL
        self.store = StateStore(f"sqlite:///{self.tmp_path / 'e2e.db'}", clock=self.clock.now)
        self.store.migrate()
        self.connector = self.make_connector()

    def make_connector(self) -> Connector:
        context = RuntimeContext(now=self.clock.datetime, sleep=self.clock.sleep)
        return registry.create(self.crm_name, self.settings(), context=context)

    def settings(self) -> dict[str, Any]:
        return {"access_token": "sandbox-token", "base_url": self.url, "tier": "pro"}

    def config(self) -> Any:
        return config_from_mapping(
            {
                "crm": {"type": "hubspot", "hubspot": self.settings()},
                "models": ["e2e.yaml"],
                "state": f"sqlite:///{self.tmp_path / 'e2e.db'}",
                "writeback": self.writeback,
            },
            base_dir=self.tmp_path,
        )

    def sync(self, **kw: Any) -> Sync:
        models = list(load_models(self.model_text, "e2e.yaml").models)
        return Sync(
            self.config(),
            kw.pop("connector", self.connector),
            kw.pop("store", self.store),
            models,
            now=self.clock.datetime,
            heartbeat=False,
            **kw,
        )

    def run(self, **opts: Any) -> RunSummary:
        self.clock.advance(10)  # past the search index lag of what the test just changed
        self.app.reset_stats()
        return self.sync().run(RunOptions(**opts))

    def writes(self) -> int:
        """CRM writes since the last run started (score updates, deals, tasks, owners)."""
        stats = self.app.stats()["by_route"]
        return sum(
            n
            for route, n in stats.items()
            if route.startswith(("POST", "PATCH", "PUT", "DELETE"))
            and "search" not in route
            and "batch/read" not in route
        )

    def close(self) -> None:
        self.connector.close()
        self.store.close()
        self.server.close()

    # ------------------------------------------------------------ CRM changes
    def _req(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, self.url + path, json=body, timeout=10)
        if r.status_code == 429:
            # The test's own inspection must not wait out the rate window it shares
            # with the sync: clear the window and ask again.
            self.sandbox.limits.reset()
            r = self.http.request(method, self.url + path, json=body, timeout=10)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json() if r.content else None

    def contact_ids(self) -> list[str]:
        ids: list[str] = []
        after = None
        while True:
            q = "?limit=100" + (f"&after={after}" if after else "")
            page = self._req("GET", "/crm/v3/objects/contacts" + q)
            ids += [r["id"] for r in page["results"]]
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return ids

    def contact(self, cid: str) -> dict[str, Any]:
        props = "jobtitle,leadsync_score,hubspot_owner_id,firstname,lastname"
        return self._req("GET", f"/crm/v3/objects/contacts/{cid}?properties={props}")["properties"]

    def set_title(self, cid: str, title: str) -> None:
        self._req("PATCH", f"/crm/v3/objects/contacts/{cid}", {"properties": {"jobtitle": title}})

    def set_owner(self, cid: str, owner: str | None) -> None:
        self._req(
            "PATCH",
            f"/crm/v3/objects/contacts/{cid}",
            {"properties": {"hubspot_owner_id": owner or ""}},
        )

    def book_meeting(self, cid: str) -> str:
        body = {
            "properties": {
                "hs_timestamp": str(int(self.clock.now() * 1000)),
                "hs_meeting_title": "Intro",
                "hs_meeting_outcome": "SCHEDULED",
            },
            "associations": [
                {
                    "to": {"id": cid},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}],
                }
            ],
        }
        return str(self._req("POST", "/crm/v3/objects/meetings", body)["id"])

    def rep_deal(self, cid: str) -> str:
        body = {
            "properties": {
                "dealname": "Rep's own deal",
                "dealstage": "qualifiedtobuy",
                "pipeline": "default",
            },
            "associations": [
                {
                    "to": {"id": cid},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
                }
            ],
        }
        return str(self._req("POST", "/crm/v3/objects/deals", body)["id"])

    def merge(self, keep: str, gone: str) -> None:
        self._req(
            "POST",
            "/crm/v3/objects/contacts/merge",
            {"primaryObjectId": keep, "objectIdToMerge": gone},
        )

    def archive(self, cid: str) -> None:
        r = self.http.delete(f"{self.url}/crm/v3/objects/contacts/{cid}", timeout=10)
        assert r.status_code == 204, r.text

    def deals_of(self, cid: str) -> list[dict[str, Any]]:
        return self._assoc(cid, "deals", "dealname,hubspot_owner_id,dealstage")

    def tasks_of(self, cid: str) -> list[dict[str, Any]]:
        return self._assoc(cid, "tasks", "hs_task_subject,hubspot_owner_id,hs_task_body")

    def _assoc(self, cid: str, to: str, props: str) -> list[dict[str, Any]]:
        page = self._req("GET", f"/crm/v4/objects/contacts/{cid}/associations/{to}?limit=500")
        out = []
        for link in page.get("results", []):
            rid = str(link["toObjectId"])
            out.append(
                self._req("GET", f"/crm/v3/objects/{to}/{rid}?properties={props}")["properties"]
            )
        return out

    def owners(self) -> list[str]:
        return [o["id"] for o in self._req("GET", "/crm/v3/owners?limit=100")["results"]]


def iter_pairs(items: list[str]) -> Iterator[tuple[str, str]]:
    for i in range(0, len(items) - 1, 2):
        yield items[i], items[i + 1]


# Salesforce has no page views; e-mails logged as Tasks fade the same way.
SF_MODEL = E2E_MODEL.replace(
    'match: {form: {glob: "demo*request"}}', 'match: {campaign: {glob: "*demo*request*"}}'
).replace(
    "event: page_view, points: 4, max_points: 20, window_days: 30, half_life_days: 2",
    "event: email_send, points: 10, max_points: 30, window_days: 30, half_life_days: 5",
)
SF_API = "/services/data/v59.0"


@dataclass
class SalesforceWorld(HubSpotWorld):
    """The Salesforce sandbox over TLS, an org with the score and key fields created."""

    def __post_init__(self) -> None:
        from connectors.sandbox import SalesforceSandbox

        self.crm_name = "salesforce"
        key = {"name": "leadsync_key__c", "type": "string", "externalId": True, "unique": True}
        score = [{"name": "leadsync_score__c", "type": "double"}]
        self.sandbox = SalesforceSandbox(
            contacts=self.contacts,
            seed=11,
            clock=self.clock,
            custom_fields={"Lead": score, "Contact": score, "Opportunity": [key], "Task": [key]},
        )
        self.app = SandboxApp(self.sandbox, sleep=self.clock.sleep)
        self.ca_path = self.tmp_path / "sf-ca.pem"
        self.server = serve(self.app, port=0, tls=True, ca_out=self.ca_path)
        self.url = self.server.base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Bearer sandbox-session"
        self.model_text = SF_MODEL
        self.store = StateStore(f"sqlite:///{self.tmp_path / 'e2e.db'}", clock=self.clock.now)
        self.store.migrate()
        self.connector = self.make_connector()

    def settings(self) -> dict[str, Any]:
        return {
            "login_url": self.url,
            "instance_url": self.url,
            "ca_bundle": str(self.ca_path),
            "refresh_token": {
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
                "refresh_token": "sandbox-refresh",
            },
        }

    def config(self) -> Any:
        return config_from_mapping(
            {
                "crm": {"type": "salesforce", "salesforce": self.settings()},
                "models": ["e2e.yaml"],
                "state": f"sqlite:///{self.tmp_path / 'e2e.db'}",
                "writeback": self.writeback,
            },
            base_dir=self.tmp_path,
        )

    def sync(self, **kw: Any) -> Sync:
        return super().sync(**kw)

    def _req(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(
            method, self.url + SF_API + path, json=body, timeout=10, verify=str(self.ca_path)
        )
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json() if r.content else None

    def query(self, soql: str) -> list[dict[str, Any]]:
        page = self.http.get(
            self.url + SF_API + "/query/", params={"q": soql}, timeout=10, verify=str(self.ca_path)
        )
        assert page.status_code == 200, page.text
        return list(page.json()["records"])

    def writes(self) -> int:
        """CRM writes since the stats were reset: a ``/composite`` request counts by
        what it carries (its queries are reads)."""
        stats = self.app.stats()
        routes = [*stats["by_route"].items(), *stats.get("subrequests", {}).items()]
        return sum(
            n
            for route, n in routes
            if route.startswith(("POST", "PATCH", "DELETE"))
            and "oauth2" not in route
            and not route.rstrip("/").endswith("/composite")
        )

    def contact_ids(self) -> list[str]:
        """Contacts (003...) only: they are the ones that get Opportunities."""
        return [r["Id"] for r in self.query("SELECT Id FROM Contact ORDER BY Id")]

    def lead_ids(self) -> list[str]:
        return [
            r["Id"] for r in self.query("SELECT Id FROM Lead WHERE IsConverted = false ORDER BY Id")
        ]

    def _obj(self, cid: str) -> str:
        return "Lead" if cid.startswith("00Q") else "Contact"

    def contact(self, cid: str) -> dict[str, Any]:
        rec = self._req("GET", f"/sobjects/{self._obj(cid)}/{cid}")
        return {"jobtitle": rec.get("Title"), "leadsync_score": rec.get("leadsync_score__c"),
                "hubspot_owner_id": rec.get("OwnerId"), "status": rec.get("Status")}  # fmt: skip

    def set_title(self, cid: str, title: str) -> None:
        self._req("PATCH", f"/sobjects/{self._obj(cid)}/{cid}", {"Title": title})

    def rep_deal(self, cid: str) -> str:
        acct = self._req("GET", f"/sobjects/Contact/{cid}")["AccountId"]
        opp = self._req(
            "POST",
            "/sobjects/Opportunity/",
            {"Name": "Rep's own deal", "StageName": "Prospecting", "CloseDate": "2026-12-31",
             "AccountId": acct},
        )  # fmt: skip
        self._req(
            "POST",
            "/sobjects/OpportunityContactRole/",
            {"OpportunityId": opp["id"], "ContactId": cid},
        )
        return str(opp["id"])

    def deals_of(self, cid: str) -> list[dict[str, Any]]:
        roles = self.query(
            "SELECT OpportunityId, Opportunity.Name, Opportunity.OwnerId FROM OpportunityContactRole "
            f"WHERE ContactId = '{cid}' AND Opportunity.leadsync_key__c != null"
        )
        return [
            {"dealname": r["Opportunity"]["Name"], "hubspot_owner_id": r["Opportunity"]["OwnerId"]}
            for r in roles
        ]

    def tasks_of(self, cid: str) -> list[dict[str, Any]]:
        rows = self.query(
            f"SELECT Subject, OwnerId, Description, leadsync_key__c FROM Task WHERE WhoId = '{cid}' AND leadsync_key__c != null"
        )
        return [
            {"hs_task_subject": r["Subject"], "hubspot_owner_id": r["OwnerId"],
             "hs_task_body": r.get("Description") or ""}
            for r in rows
        ]  # fmt: skip

    def archive(self, cid: str) -> None:
        r = self.http.delete(
            f"{self.url}{SF_API}/sobjects/{self._obj(cid)}/{cid}",
            timeout=10,
            verify=str(self.ca_path),
        )
        assert r.status_code == 204, r.text
