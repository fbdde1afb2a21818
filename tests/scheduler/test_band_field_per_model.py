"""``writeback.band_field``: one field for every model, or ``{model: field}``."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Harness
from sync_fakes import MODEL_YAML, models

from scheduler.cli_sync import check_config
from scheduler.config import ConfigError, config_from_mapping
from scheduler.sync import RunOptions

TWO_MODELS = (
    MODEL_YAML
    + """\
  - name: other
    score_field: other_score
    bands: {hot: 90, warm: 30}
    rules:
      - {id: base, kind: fit, field: points, match: {exists: true}, points: 1}
"""
)


@pytest.fixture
def two(h: Harness) -> Harness:
    h.models = models(TWO_MODELS)
    h.writeback = {"band_field": {"main": "ls_band", "other": "other_band"}}
    h.crm.add("a", points=80, owner_id="o1")
    h.crm.add("b", points=35, owner_id="o1")
    return h


def test_each_model_writes_its_band_to_its_own_field(two: Harness) -> None:
    s = two.run()
    assert s.exit_code == 0
    assert two.crm.scores["a"] == {
        "ls_score": 80, "ls_band": "hot", "other_score": 80, "other_band": "warm",
    }  # fmt: skip
    assert two.crm.scores["b"]["ls_band"] == "cold" and two.crm.scores["b"]["other_band"] == "warm"
    assert set(two.crm.fields_ensured) == {"ls_score", "other_score", "ls_band", "other_band"}


def test_a_model_left_out_of_the_mapping_writes_no_band(two: Harness) -> None:
    two.writeback = {"band_field": {"other": "other_band"}}
    two.run()
    assert "ls_band" not in two.crm.scores["a"] and two.crm.scores["a"]["other_band"] == "warm"


def test_one_field_for_every_model_as_before(two: Harness) -> None:
    two.writeback = {"band_field": "band"}
    two.run()
    assert set(two.crm.scores["a"]) == {"ls_score", "other_score", "band"}


def test_changing_a_band_field_rewrites_the_bands_but_is_no_model_change(two: Harness) -> None:
    assert two.run().baseline_models == ["main", "other"]
    hashes = two.store.model_hashes()
    two.crm.fields_ensured.clear()
    two.writeback = {"band_field": {"main": "ls_band2", "other": "other_band"}}
    two.crm.add("c", points=75, owner_id="o1")  # hot after the baseline: a crossing
    s = two.run()
    assert s.exit_code == 0 and s.baseline_models == [] and two.store.model_hashes() == hashes
    assert s.crossings == 1 and s.deals == 1  # actions are not held back as on a baseline
    # every contact's main band goes to the new field; the other model's is not re-sent
    assert two.crm.scores["a"]["ls_band2"] == "hot" and two.crm.scores["b"]["ls_band2"] == "cold"
    last = two.crm.score_writes[-1]
    assert all("other_band" not in u.values for u in last if u.contact_id in ("a", "b"))
    assert "ls_band2" in two.crm.fields_ensured  # the new field is checked (created)
    again = two.run()
    assert again.scores_written == 0 and two.crm.fields_ensured.count("ls_band2") == 1


def test_the_band_field_stays_out_of_the_model_hash(two: Harness) -> None:
    (main, other) = models(TWO_MODELS)
    two.run()
    two.writeback = {"band_field": "anything"}
    two.run(dry_run=True)
    assert two.store.model_hashes() == {"main": main.content_hash, "other": other.content_hash}


def test_two_models_cannot_share_a_band_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(
            {"crm": {"type": "fake"}, "models": ["m.yaml"],
             "writeback": {"band_field": {"main": "band", "other": "band"}}},
            base_dir=tmp_path,
        )  # fmt: skip
    assert "writeback.band_field: " in str(err.value) and "both write their band" in str(err.value)


def test_check_names_a_mapping_entry_for_an_unknown_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "m.yaml").write_text(TWO_MODELS)
    cfg = tmp_path / "leadsync.yaml"
    cfg.write_text(
        "crm: {type: files, files: {contacts: c.csv}}\n"
        "models: m.yaml\n"
        "writeback:\n"
        "  on_cross: {deal: null}\n"
        "  band_field:\n"
        "    main: ls_band\n"
        "    mian_x: other_band\n"
    )
    assert check_config(str(cfg)) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:7: writeback.band_field.mian_x: no model named 'mian_x'" in err
    assert "(models: main, other)" in err


def test_a_band_field_may_not_be_a_score_field(two: Harness) -> None:
    from scheduler.writeback import band_field_problems

    problems = band_field_problems({"main": "other_score"}, two.models, "<config>")
    assert problems == [
        "<config>:1: writeback.band_field.main: 'other_score' is the score field of model "
        "'other'; a band field needs a field of its own"
    ]


def test_the_dry_run_names_each_band_field(two: Harness) -> None:
    s = two.run(dry_run=True)
    assert s.would_write[0] == {
        "contact_id": "a", "ls_score": 80.0, "ls_band": "hot",
        "other_score": 80.0, "other_band": "warm",
    }  # fmt: skip
    assert two.sync().run(RunOptions(dry_run=True)).exit_code == 0
