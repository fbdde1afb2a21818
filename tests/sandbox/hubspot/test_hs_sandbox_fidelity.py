"""Deal pipelines, derived deal properties, concurrent use, and the sandbox's
independence from the connectors, through the official client."""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm.associations.v4.schema import (
    CollectionResponseAssociationSpecWithLabelNoPaging,
)
from hubspot.crm.pipelines import (
    CollectionResponsePipelineNoPaging,
    CollectionResponsePipelineStageNoPaging,
    Pipeline,
    PipelineStage,
)
from hubspot.crm.pipelines.exceptions import NotFoundException

from connectors.sandbox import HubSpotSandbox, ManualClock

HS_TOKEN = "sandbox-token"
SANDBOX_DIR = Path(__file__).resolve().parents[3] / "connectors" / "sandbox"


def test_deal_pipelines_answer_the_default_pipeline_with_string_metadata(
    hs_client: Any,
) -> None:
    api = hs_client.crm.pipelines.pipelines_api
    every = api.get_all("deals")
    assert isinstance(every, CollectionResponsePipelineNoPaging)
    (pipeline,) = every.results
    assert isinstance(pipeline, Pipeline)
    assert pipeline.id == "default" and pipeline.archived is False
    stages = {s.id: s for s in pipeline.stages}
    assert pipeline.stages[0].id == "appointmentscheduled"
    assert {"appointmentscheduled", "contractsent", "closedwon", "closedlost"} <= set(stages)
    # metadata values are strings on the wire, as the SDK's dict[str, str] says
    assert stages["closedwon"].metadata == {"isClosed": "true", "probability": "1.0"}
    assert stages["closedlost"].metadata == {"isClosed": "true", "probability": "0.0"}
    assert stages["qualifiedtobuy"].metadata == {"isClosed": "false", "probability": "0.4"}
    open_stages = [s for s in pipeline.stages if s.metadata["isClosed"] == "false"]
    assert len(open_stages) == 5
    assert [s.display_order for s in pipeline.stages] == list(range(len(pipeline.stages)))
    assert api.get_by_id("deals", "default").id == "default"
    assert api.get_all("0-3").results[0].id == "default"  # the object type id works too
    with pytest.raises(NotFoundException):
        api.get_by_id("deals", "no-such-pipeline")


def test_pipeline_stages_list_and_get(hs_client: Any) -> None:
    api = hs_client.crm.pipelines.pipeline_stages_api
    stages = api.get_all("deals", "default")
    assert isinstance(stages, CollectionResponsePipelineStageNoPaging)
    assert [s.id for s in stages.results][-2:] == ["closedwon", "closedlost"]
    won = api.get_by_id("deals", "default", "closedwon")
    assert isinstance(won, PipelineStage) and won.label == "Closed Won"
    with pytest.raises(NotFoundException):
        api.get_by_id("deals", "default", "nope")


def test_deal_stage_drives_the_closed_and_probability_properties(hs_client: Any) -> None:
    api = hs_client.crm.deals.basic_api
    props = ["pipeline", "hs_is_closed", "hs_is_closed_won", "hs_deal_stage_probability"]
    deal = api.create({"properties": {"dealname": "Stage test", "dealstage": "contractsent"}})
    got = api.get_by_id(deal.id, properties=props).properties
    assert got["pipeline"] == "default"  # no pipeline given: the default one
    assert (got["hs_is_closed"], got["hs_is_closed_won"]) == ("false", "false")
    assert got["hs_deal_stage_probability"] == "0.9"
    api.update(deal.id, {"properties": {"dealstage": "closedwon"}})
    got = api.get_by_id(deal.id, properties=props).properties
    assert (got["hs_is_closed"], got["hs_is_closed_won"]) == ("true", "true")
    api.update(deal.id, {"properties": {"dealstage": "closedlost"}})
    got = api.get_by_id(deal.id, properties=props).properties
    assert (got["hs_is_closed"], got["hs_is_closed_won"]) == ("true", "false")
    assert got["hs_deal_stage_probability"] == "0.0"


def test_seeded_deals_agree_with_the_pipeline(hs_client: Any) -> None:
    stages = {
        s.id: s.metadata
        for s in hs_client.crm.pipelines.pipelines_api.get_all("deals").results[0].stages
    }
    page = hs_client.crm.deals.basic_api.get_page(
        limit=100, properties=["dealstage", "hs_is_closed", "hs_is_closed_won"]
    )
    assert page.results
    for deal in page.results:
        meta = stages[deal.properties["dealstage"]]
        assert deal.properties["hs_is_closed"] == meta["isClosed"]
        won = meta["isClosed"] == "true" and float(meta["probability"]) >= 1.0
        assert deal.properties["hs_is_closed_won"] == ("true" if won else "false")


def test_association_labels_give_the_type_ids(hs_client: Any) -> None:
    api = hs_client.crm.associations.v4.schema.definitions_api
    labels = api.get_all("contacts", "deals")
    assert isinstance(labels, CollectionResponseAssociationSpecWithLabelNoPaging)
    assert [(t.category, t.type_id) for t in labels.results] == [("HUBSPOT_DEFINED", 4)]
    assert [t.type_id for t in api.get_all("deals", "contacts").results] == [3]
    assert [t.type_id for t in api.get_all("tasks", "contacts").results] == [204]
    to_company = api.get_all("contacts", "companies").results
    assert [(t.type_id, t.label) for t in to_company] == [(1, "Primary"), (279, None)]


def test_concurrent_writes_and_searches_stay_consistent(
    hs_client_for: Callable[[str], Any], hs_sandbox: HubSpotSandbox, hs_clock: ManualClock
) -> None:
    """Four threads create, batch-update and search at once over the real server:
    no answer is lost or mixed up, every id is unique, and search catches up."""
    threads, per_thread = 4, 15
    created: dict[int, list[str]] = {}
    failures: list[str] = []

    def work(n: int) -> None:
        client = hs_client_for(HS_TOKEN)
        contacts = client.crm.contacts
        mine: list[str] = []
        try:
            for i in range(per_thread):
                hs_clock.advance(1.0)
                one = contacts.basic_api.create(
                    {"properties": {"email": f"t{n}-{i}@example.org", "jobtitle": f"T{n}"}}
                )
                mine.append(one.id)
                if i % 5 == 4:
                    hs_clock.advance(1.0)
                    batch = contacts.batch_api.update(
                        {
                            "inputs": [
                                {"id": cid, "properties": {"firstname": f"F{n}"}}
                                for cid in mine[-5:]
                            ]
                        }
                    )
                    if {r.id for r in batch.results} != set(mine[-5:]):
                        failures.append(f"thread {n}: batch update answered other records")
                hs_clock.advance(1.0)
                found = contacts.search_api.do_search(
                    {
                        "filterGroups": [
                            {
                                "filters": [
                                    {"propertyName": "jobtitle", "operator": "EQ", "value": f"T{n}"}
                                ]
                            }
                        ],
                        "limit": 100,
                    }
                )
                if not {r.id for r in found.results} <= set(mine):
                    failures.append(f"thread {n}: search returned another thread's records")
        except Exception as exc:  # collected: an assertion in a thread would be lost
            failures.append(f"thread {n}: {type(exc).__name__}: {exc}")
        created[n] = mine

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not failures, failures
    every = [cid for ids in created.values() for cid in ids]
    assert len(every) == len(set(every)) == threads * per_thread
    hs_clock.advance(hs_sandbox.search_lag_seconds + 1)
    client = hs_client_for(HS_TOKEN)
    for n, ids in created.items():
        records = client.crm.contacts.batch_api.read(
            {"inputs": [{"id": i} for i in ids], "properties": ["jobtitle", "firstname", "email"]}
        ).results
        assert {r.id for r in records} == set(ids)
        assert all(r.properties["jobtitle"] == f"T{n}" for r in records)
        assert sum(r.properties["firstname"] == f"F{n}" for r in records) == per_thread
        hs_clock.advance(1.0)
        found = client.crm.contacts.search_api.do_search(
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": f"T{n}"}]}
                ],
                "limit": 100,
            }
        )
        assert found.total == per_thread


def test_the_sandbox_never_imports_the_connectors() -> None:
    """Built from the API facts, not from the connectors: that is what lets it
    catch connector bugs."""
    offenders: list[str] = []
    for path in sorted(SANDBOX_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith(("connectors.hubspot", "connectors.salesforce")):
                    offenders.append(f"{path.name}: {name}")
    assert SANDBOX_DIR.is_dir() and not offenders, offenders
