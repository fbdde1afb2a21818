"""``leadsync check --config`` judges each score and band field from the CRM's own
metadata, on both sandboxes: a field that exists but cannot take a number (text, an
enumeration, read-only, calculated) fails the check before any run is refused record
by record. It also warns on model names the connector never delivers, and fails the
same way as ``run`` when the CRM refuses the credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_e2e import HubSpotWorld, SalesforceWorld
from typer.testing import CliRunner

from connectors.sandbox.hubspot.schema import PropertyDef
from connectors.sandbox.salesforce.schema import FieldSpec as SfField
from scheduler.cli import app

HS_ENV = {"HS_TOKEN": "sandbox-token"}
SF_ENV = {"SF_SECRET": "sandbox-secret", "SF_REFRESH": "sandbox-refresh"}


def _check(cfg: Path, env: dict[str, str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["check", "--config", str(cfg)], env=env)
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------------------ HubSpot


@pytest.fixture
def hs(tmp_path: Path) -> Iterator[HubSpotWorld]:
    world = HubSpotWorld(tmp_path)
    yield world
    world.close()


def _hs_config(w: HubSpotWorld, extra: str = "", writeback: str = "{}", model: str = "") -> Path:
    (w.tmp_path / "e2e.yaml").write_text(model or w.model_text)
    cfg = w.tmp_path / "leadsync.yaml"
    cfg.write_text(
        "crm:\n  type: hubspot\n  hubspot:\n"
        f"    access_token: ${{HS_TOKEN}}\n    base_url: '{w.url}'\n{extra}"
        f"models: e2e.yaml\nstate: sqlite:///check.db\nwriteback: {writeback}\n"
    )
    return cfg


def _hs_property(w: HubSpotWorld, name: str, kind: str, options: list[str] = ()) -> None:  # type: ignore[assignment]
    body = {
        "name": name,
        "label": name,
        "type": kind,
        "fieldType": "select" if kind == "enumeration" else "text",
        "groupName": "contactinformation",
        "options": [{"label": o, "value": o} for o in options],
    }
    w._req("POST", "/crm/v3/properties/contacts", body)


class _ReadOnlyValue(PropertyDef):
    """A property whose value only HubSpot sets, without being calculated (the
    sandbox's own read-only properties are both)."""

    def to_json(self, iso: Any) -> dict[str, Any]:
        out = PropertyDef.to_json(self, iso)
        return {**out, "calculated": False, "modificationMetadata": {"readOnlyValue": True}}


@pytest.fixture
def read_only_number(hs: HubSpotWorld) -> str:
    name = "hs_read_only_score"
    spec = _ReadOnlyValue(name, name, "number", "number", "contactinformation", read_only=True)
    hs.sandbox.store.tables["contacts"].defs[name] = spec
    return name


@pytest.mark.parametrize(
    ("prop", "why"),
    [
        ("jobtitle", "is of type string (text); a score needs a number property"),
        ("lifecyclestage", "is of type enumeration"),
        ("hs_analytics_num_page_views", "is a calculated property"),
        ("hs_read_only_score", "is read-only"),
    ],
)
def test_hubspot_score_field_that_cannot_take_a_number_fails_check(
    hs: HubSpotWorld, read_only_number: str, prop: str, why: str
) -> None:
    cfg = _hs_config(hs, f"    score_fields: {{leadsync_score: {prop}}}\n")
    code, out, err = _check(cfg, HS_ENV)
    assert code == 2, (out, err)
    assert f"ok: field {prop} exists" not in out
    [line] = [x for x in err.splitlines() if prop in x]
    assert f"property {prop!r}" in line and why in line


def test_hubspot_number_field_and_band_enumeration_pass(hs: HubSpotWorld) -> None:
    _hs_property(hs, "leadsync_band", "enumeration", ["hot", "warm", "cold"])
    cfg = _hs_config(hs, writeback="{band_field: leadsync_band}")
    code, out, err = _check(cfg, HS_ENV)
    assert code == 0, (out, err)
    assert "ok: field leadsync_band exists" in out
    assert "ok: field leadsync_score" in out


def test_hubspot_band_enumeration_without_cold_fails(hs: HubSpotWorld) -> None:
    _hs_property(hs, "leadsync_band", "enumeration", ["hot", "warm"])
    code, _, err = _check(_hs_config(hs, writeback="{band_field: leadsync_band}"), HS_ENV)
    assert code == 2
    assert "'leadsync_band'" in err and "without the option(s) cold" in err


def test_hubspot_band_on_a_number_property_fails(hs: HubSpotWorld) -> None:
    _hs_property(hs, "leadsync_band", "number")
    code, _, err = _check(_hs_config(hs, writeback="{band_field: leadsync_band}"), HS_ENV)
    assert code == 2 and "the band needs a text property" in err


def test_check_config_warns_on_model_names_the_connector_never_delivers(
    hs: HubSpotWorld,
) -> None:
    model = (
        hs.model_text.replace(
            "field: job_title, match: {contains: zzcool}",
            "field: job_titel, match: {contains: zzcool}",
        )
        .replace("event: page_view", "event: page_veiw")
        .replace(
            "field: job_title, match: {contains: zzwarm}",
            "field: region, match: {contains: zzwarm}",
        )
    )
    cfg = _hs_config(hs, model=model)
    code, _, err = _check(cfg, HS_ENV)
    warnings = [x for x in err.splitlines() if x.startswith("warning:")]
    src = str(hs.tmp_path / "e2e.yaml")
    assert any(
        f"{src}:8: models[0].rules[2].field: field 'job_titel' (did you mean 'job_title'?)" in x
        for x in warnings
    ), warnings
    assert any(f"{src}:9: models[0].rules[3].event: event type 'page_veiw'" in x for x in warnings)
    assert any(
        f"{src}:7: models[0].rules[1].field: field 'region' is neither a canonical field nor one the hubspot connector delivers: it never matches"
        in x
        for x in warnings
    )
    assert len(warnings) == 3, warnings
    # mapped by the connector: no longer a warning
    cfg = _hs_config(hs, "    property_map: {hs_region: region}\n", model=model)
    _, _, err = _check(cfg, HS_ENV)
    assert "'region'" not in err
    assert code == 0  # warnings do not fail the check


def test_refused_credentials_exit_as_run_does(hs: HubSpotWorld) -> None:
    cfg = _hs_config(hs)
    env = {"HS_TOKEN": "wrong-token-value"}
    check = CliRunner().invoke(app, ["check", "--config", str(cfg)], env=env)
    run = CliRunner().invoke(app, ["run", "--config", str(cfg)], env=env)
    assert check.exit_code == run.exit_code == 3, (check.output, run.output)
    assert "missing:" not in check.output
    assert "wrong-token-value" not in check.output + run.output


# --------------------------------------------------------------------------- Salesforce


@pytest.fixture
def sf(tmp_path: Path) -> Iterator[SalesforceWorld]:
    world = SalesforceWorld(tmp_path)
    yield world
    world.close()


def _sf_config(w: SalesforceWorld, extra: str = "", band: str = "null") -> Path:
    (w.tmp_path / "e2e.yaml").write_text(w.model_text)
    cfg = w.tmp_path / "leadsync.yaml"
    cfg.write_text(
        "crm:\n  type: salesforce\n  salesforce:\n"
        f"    login_url: '{w.url}'\n    instance_url: '{w.url}'\n"
        "    ca_bundle: sf-ca.pem\n"  # relative: from this file's folder
        "    refresh_token: {client_id: sandbox-client, client_secret: '${SF_SECRET}', "
        "refresh_token: '${SF_REFRESH}'}\n"
        f"{extra}"
        "models: e2e.yaml\nstate: sqlite:///check.db\n"
        f"writeback: {{band_field: {band}, on_cross: {{deal: {{stage: Prospecting, pipeline: null}}}}}}\n"
    )
    return cfg


class _Formula(SfField):
    """A formula field: describe says ``calculated`` (the sandbox's fields never do)."""

    def describe(self) -> dict[str, Any]:
        return {**SfField.describe(self), "calculated": True}


def _sf_field(w: SalesforceWorld, spec: SfField) -> None:
    for obj in ("Lead", "Contact"):
        w.sandbox.store.schema[obj].add(spec)


@pytest.mark.parametrize(
    ("field", "spec", "why"),
    [
        ("Title", None, "is of type string; a score needs a Number"),
        ("LeadSource", None, "is of type picklist"),
        (
            "ro_score__c",
            SfField("ro_score__c", "double", custom=True, updateable=False),
            "is not editable",
        ),
        (
            "formula_score__c",
            _Formula("formula_score__c", "double", custom=True, updateable=False),
            "is a formula (calculated) field",
        ),
    ],
)
def test_salesforce_score_field_that_cannot_take_a_number_fails_check(
    sf: SalesforceWorld, field: str, spec: SfField | None, why: str
) -> None:
    if spec is not None:
        _sf_field(sf, spec)
    cfg = _sf_config(sf, f"    score_fields: {{leadsync_score: {field}}}\n")
    code, out, err = _check(cfg, SF_ENV)
    assert code == 2, (out, err)
    lines = [x for x in err.splitlines() if f"field {field} " in x]
    assert lines and all(why in x for x in lines), err
    assert f"ok: field Lead.{field} exists" not in out


def test_salesforce_number_field_and_band_picklist_pass(sf: SalesforceWorld) -> None:
    _sf_field(
        sf,
        SfField("leadsync_band__c", "picklist", custom=True, picklist=("hot", "warm", "cold")),
    )
    code, out, err = _check(_sf_config(sf, band="leadsync_band"), SF_ENV)
    assert code == 0, (out, err)
    assert "ok: field Lead.leadsync_band__c exists" in out
    assert "ok: field Contact.leadsync_score__c exists" in out


def test_salesforce_band_picklist_without_cold_fails(sf: SalesforceWorld) -> None:
    _sf_field(sf, SfField("leadsync_band__c", "picklist", custom=True, picklist=("hot", "warm")))
    code, _, err = _check(_sf_config(sf, band="leadsync_band"), SF_ENV)
    assert code == 2 and "without the active value(s) cold" in err
