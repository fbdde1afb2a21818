"""``leadsync check`` checks the deal pipeline and stage against the HubSpot sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_e2e import HubSpotWorld

from scheduler.cli_sync import check_config


@pytest.fixture
def w(tmp_path: Path) -> Iterator[HubSpotWorld]:
    world = HubSpotWorld(tmp_path)
    yield world
    world.close()


def _write_config(w: HubSpotWorld, deal: str) -> Path:
    (w.tmp_path / "e2e.yaml").write_text(w.model_text)
    cfg = w.tmp_path / "leadsync.yaml"
    cfg.write_text(
        "crm:\n  type: hubspot\n"
        f"  hubspot: {{access_token: '${{HS_TOKEN}}', base_url: '{w.url}', tier: pro}}\n"
        "models: e2e.yaml\nstate: sqlite:///check.db\n"
        f"writeback: {{on_cross: {{owners: {{pool: ['{w.owners()[0]}']}}, deal: {deal}}}}}\n"
    )
    return cfg


def test_good_pipeline_and_stage_pass(
    w: HubSpotWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HS_TOKEN", "sandbox-token")
    cfg = _write_config(w, "{pipeline: Sales Pipeline, stage: qualifiedtobuy}")
    assert check_config(str(cfg)) == 0
    out = capsys.readouterr()
    assert "ok: deal settings accepted (stage 'qualifiedtobuy')" in out.out
    assert out.err == ""


def test_closed_stage_and_unknown_pipeline_fail_the_check(
    w: HubSpotWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HS_TOKEN", "sandbox-token")
    cfg = _write_config(w, "{pipeline: default, stage: closedwon}")
    assert check_config(str(cfg)) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("missing: deal stage 'closedwon'")
    assert "deals would be created closed" in err[0]

    cfg = _write_config(w, "{pipeline: renewals, stage: appointmentscheduled}")
    assert check_config(str(cfg)) == 2
    out = capsys.readouterr()
    assert "missing: deal pipeline 'renewals'" in out.err
    assert "deal settings accepted" not in out.out
    assert "sandbox-token" not in out.out + out.err


def test_no_deal_configured_skips_the_check(
    w: HubSpotWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HS_TOKEN", "sandbox-token")
    cfg = _write_config(w, "null")
    assert check_config(str(cfg)) == 0
    assert "deal settings" not in capsys.readouterr().out
