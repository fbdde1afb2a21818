"""The starter model and example data do what their comments promise."""

from __future__ import annotations

import importlib.util
import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scheduler.cli import app
from scoring.model import BehaviorRule, check_warnings, load_models

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
STARTER = EXAMPLES / "models" / "starter.yaml"
AS_OF = "2026-06-30T00:00:00Z"


def score(events: str) -> dict[tuple[str, str], dict[str, Any]]:
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--model",
            str(STARTER),
            "--contacts",
            str(EXAMPLES / "data" / "contacts.csv"),
            "--events",
            str(EXAMPLES / "data" / events),
            "--as-of",
            AS_OF,
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {(line["contact_id"], line["model"]): line for line in lines}


@pytest.fixture(scope="module")
def scores() -> dict[tuple[str, str], dict[str, Any]]:
    return score("events.jsonl")


def reasons(line: dict[str, Any]) -> dict[str, float]:
    return {reason["rule"]: reason["points"] for reason in line["reasons"]}


def test_checkout_and_package_share_one_starter_file() -> None:
    assert not os.path.islink(STARTER)  # a symlink breaks when the examples are copied
    packaged = files("scoring").joinpath("data", "models", "starter.yaml").read_text("utf-8")
    assert STARTER.read_text("utf-8") == packaged


def test_starter_model_is_valid_and_bounded() -> None:
    models = load_models(STARTER.read_text("utf-8"), str(STARTER))
    assert models.names == ["platform", "services"]
    assert check_warnings(models) == []
    platform = models.get("platform")
    assert [(s.inactive_days, s.points) for s in platform.decay] == [
        (30, -15),
        (60, -30),
        (90, -50),
    ]
    by_id = {rule.id: rule for rule in platform.rules}
    assert by_id["pricing-page"].points == 9 and by_id["other-page"].points == 6
    assert by_id["pricing-page"].group == by_id["other-page"].group == "pages"
    opens = by_id["email-open"]
    assert isinstance(opens, BehaviorRule) and opens.max_points is not None
    assert opens.max_points < platform.bands.hot - platform.bands.warm
    demo = by_id["demo-request"]
    assert isinstance(demo, BehaviorRule) and demo.immediate
    for rule_id in ("unsubscribe", "careers-page", "free-email", "competitor", "student"):
        assert by_id[rule_id].points < 0, rule_id
    assert models.get("services").applies_to != platform.applies_to


def test_vp_of_sales_with_pricing_and_demo_request_is_hot_and_immediate(
    scores: dict[tuple[str, str], dict[str, Any]],
) -> None:
    dana = scores[("c01", "platform")]
    assert dana["band"] == "hot" and dana["immediate"] is True
    assert dana["immediate_event"]["type"] == "form_submit"
    assert reasons(dana)["title-vp-sales"] == 10
    assert reasons(dana)["pricing-page"] <= 27


def test_student_with_gmail_is_cold(scores: dict[tuple[str, str], dict[str, Any]]) -> None:
    sam = scores[("c02", "platform")]
    assert sam["band"] == "cold" and sam["score"] == 0
    assert reasons(sam)["student"] == -20 and reasons(sam)["free-email"] == -10


def test_negative_criteria_keep_active_but_unwanted_leads_cold(
    scores: dict[tuple[str, str], dict[str, Any]],
) -> None:
    competitor = scores[("c06", "platform")]
    assert competitor["band"] == "cold" and reasons(competitor)["competitor"] == -50
    job_seeker = scores[("c07", "platform")]
    assert job_seeker["band"] == "cold" and reasons(job_seeker)["careers-page"] < 0
    unsubscribed = scores[("c08", "platform")]
    assert unsubscribed["band"] == "cold" and reasons(unsubscribed)["unsubscribe"] == -30


def test_opens_alone_stay_capped(scores: dict[tuple[str, str], dict[str, Any]]) -> None:
    opener = scores[("c05", "platform")]
    assert reasons(opener)["email-open"] == 14
    assert opener["band"] == "cold"


def test_decay_and_activity(scores: dict[tuple[str, str], dict[str, Any]]) -> None:
    quiet = scores[("c10", "platform")]
    assert reasons(quiet)["decay-30d"] < 0
    assert scores[("c04", "platform")]["band"] == "cold"
    assert "decay-90d" in reasons(scores[("c04", "platform")])
    new = scores[("c14", "platform")]
    assert new["score"] == 0 and not any(r.startswith("decay") for r in reasons(new))


def test_busy_cmo_is_hot_and_warm_leads_sit_between(
    scores: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert scores[("c18", "platform")]["band"] == "hot"
    assert scores[("c18", "platform")]["immediate"] is False
    assert scores[("c03", "platform")]["band"] == "warm"
    assert scores[("c09", "platform")]["band"] == "warm"
    # a demo request older than the 30-day window is no longer immediate
    assert scores[("c17", "platform")]["immediate"] is False


def test_second_model_has_its_own_audience(scores: dict[tuple[str, str], dict[str, Any]]) -> None:
    platform = {cid for cid, model in scores if model == "platform"}
    services = {cid for cid, model in scores if model == "services"}
    assert services == {"c12", "c13", "c19"}
    assert "c12" not in platform and "c19" not in platform  # customer, opportunity
    finance = scores[("c13", "services")]
    assert finance["band"] == "hot" and finance["immediate"] is True
    assert finance["immediate_event"]["occurred_at"] == "2026-06-26T10:07:30Z"  # naive = UTC


def test_csv_and_jsonl_events_score_the_same(
    scores: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert score("events.csv") == scores


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_examples", EXAMPLES / "data" / "make_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("contacts.csv", "events.jsonl", "events.csv"):
        assert (tmp_path / name).read_text() == (EXAMPLES / "data" / name).read_text(), name


def test_starter_ranks_the_sandbox_world_by_its_hidden_propensity() -> None:
    """The sandbox draws engagement from a hidden per-person propensity; a sensible
    starter model recovers it: hot leads have the highest propensity, cold the lowest."""
    from datetime import UTC, datetime
    from statistics import correlation, mean

    from connectors.sandbox.world import ACTIVITY_TYPES, FORMS, PAGES, SITE, generate_world
    from scoring.engine import score as score_records

    world = generate_world(2000, seed=11)
    companies = {company.idx: company for company in world.companies}
    contacts = [
        {
            "id": str(person.idx),
            "email": person.email,
            "job_title": person.job_title,
            "company_size": companies[person.company_idx].size,
            "lifecycle_stage": person.lifecycle_stage,
            "created_at": datetime.fromtimestamp(person.created_at, tz=UTC),
        }
        for person in world.people
    ]
    acts = world.activities
    events = []
    for i in range(len(acts)):
        kind = ACTIVITY_TYPES[acts.kind[i]]
        detail = int(acts.detail[i])
        attrs = {}
        if kind == "page_view":
            attrs["url"] = SITE + PAGES[detail]
        elif kind == "form_submit":
            attrs["form"] = FORMS[detail]
        events.append(
            {
                "contact_id": str(int(acts.person[i])),
                "type": kind,
                "occurred_at": datetime.fromtimestamp(float(acts.ts[i]), tz=UTC),
                "id": str(i),
                **attrs,
            }
        )
    models = load_models(STARTER.read_text("utf-8"), str(STARTER))
    as_of = datetime.fromtimestamp(world.now, tz=UTC)
    results = [
        r for r in score_records(models, contacts, events, as_of=as_of) if r.model == "platform"
    ]
    propensity = {str(p.idx): p.propensity for p in world.people}
    by_band = {
        band: [propensity[r.contact_id] for r in results if r.band == band]
        for band in ("hot", "warm", "cold")
    }
    assert all(by_band.values()), {band: len(v) for band, v in by_band.items()}
    assert mean(by_band["hot"]) > mean(by_band["warm"]) > mean(by_band["cold"])
    assert len(by_band["hot"]) < len(by_band["warm"]) < len(by_band["cold"])
    scores = [r.score for r in results]
    assert correlation(scores, [propensity[r.contact_id] for r in results]) > 0.5
