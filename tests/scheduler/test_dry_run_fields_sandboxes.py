"""A dry run checks the score fields without creating them, on both sandboxes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_e2e import HubSpotWorld, SalesforceWorld

from connectors.base import FieldSpec


@pytest.fixture
def hs(tmp_path: Path) -> Iterator[HubSpotWorld]:
    world = HubSpotWorld(tmp_path)
    yield world
    world.close()


@pytest.fixture
def sf(tmp_path: Path) -> Iterator[SalesforceWorld]:
    world = SalesforceWorld(tmp_path)
    yield world
    world.close()


def _property(w: HubSpotWorld, object_type: str, name: str) -> int:
    return w.http.get(f"{w.url}/crm/v3/properties/{object_type}/{name}", timeout=10).status_code


def test_hubspot_dry_run_lists_the_properties_a_real_run_creates(hs: HubSpotWorld) -> None:
    hs.writeback = {"band_field": "leadsync_band"}
    s = hs.run(dry_run=True)
    assert s.exit_code == 0, s.error
    assert set(s.fields_to_create) == {
        "leadsync_score",
        "leadsync_band",
        "deals.leadsync_key",
        "tasks.leadsync_key",
    }
    assert s.scores_written > 0 and s.would_write
    assert _property(hs, "contacts", "leadsync_score") == 404
    assert _property(hs, "deals", "leadsync_key") == 404
    real = hs.run()
    assert real.exit_code == 0 and real.fields_to_create == []
    assert _property(hs, "contacts", "leadsync_score") == 200
    assert hs.run(dry_run=True).fields_to_create == []


def test_hubspot_check_only_reports_a_property_it_cannot_create(hs: HubSpotWorld) -> None:
    check = hs.connector.ensure_fields([FieldSpec("Bad-Name")], create=False)
    assert check.missing == ("Bad-Name",) and "lowercase" in check.instructions[0]


def test_salesforce_dry_run_exits_2_with_the_fields_to_create(sf: SalesforceWorld) -> None:
    sf.writeback = {"band_field": "leadsync_band"}  # the org has no such field
    dry = sf.run(dry_run=True)
    assert dry.exit_code == 2 and dry.contacts_read == 0
    assert "Lead: create custom field leadsync_band__c" in (dry.error or "")
    assert "Contact: create custom field leadsync_band__c" in (dry.error or "")
    real = sf.run()
    assert real.exit_code == 2 and real.error == dry.error  # the same instructions


def test_salesforce_dry_run_with_every_field_present_goes_on(sf: SalesforceWorld) -> None:
    s = sf.run(dry_run=True)
    assert s.exit_code == 0 and s.fields_to_create == [] and s.scores_written > 0
    assert sf.writes() == 0


def test_a_run_without_deals_or_tasks_needs_no_key_field(hs: HubSpotWorld) -> None:
    hs.writeback = {"on_cross": {"deal": None}}
    s = hs.run(dry_run=True)
    assert set(s.fields_to_create) == {"leadsync_score", "tasks.leadsync_key"}
    check = hs.connector.ensure_fields([FieldSpec("leadsync_score")], create=False, actions=())
    assert check.would_create == ("leadsync_score",)


def test_salesforce_checks_the_key_field_only_where_actions_create_records(
    sf: SalesforceWorld,
) -> None:
    every = sf.connector.ensure_fields([FieldSpec("leadsync_score")], create=False)
    assert {"Opportunity.leadsync_key__c", "Task.leadsync_key__c"} <= set(every.present)
    none = sf.connector.ensure_fields([FieldSpec("leadsync_score")], create=False, actions=())
    assert set(none.present) == {"Lead.leadsync_score__c", "Contact.leadsync_score__c"}
    tasks = sf.connector.ensure_fields([FieldSpec("leadsync_score")], actions=("task",))
    assert "Task.leadsync_key__c" in tasks.present
    assert "Opportunity.leadsync_key__c" not in tasks.present
