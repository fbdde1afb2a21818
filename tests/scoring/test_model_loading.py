"""Model files: what a valid file gives, and one clear line per problem otherwise."""

from __future__ import annotations

import textwrap

import pytest
from model_texts import PLATFORM_MODEL, one_model

from scoring.model import (
    BehaviorRule,
    FitRule,
    Match,
    ModelFileError,
    ModelSet,
    ScoringModel,
    check_warnings,
    load_models,
)

VALID = PLATFORM_MODEL


def problems_of(text: str, source: str = "m.yaml") -> list[str]:
    with pytest.raises(ModelFileError) as info:
        load_models(text, source)
    err = info.value
    assert str(err) == "\n".join(err.problems)
    return err.problems


def with_rule(rule_yaml: str, *, extra_model: str = "") -> str:
    """A minimal valid model around one rule given as YAML lines (indented 6)."""
    return one_model(rule_yaml, extra=extra_model)


def test_valid_file_gives_typed_models_with_defaults_resolved() -> None:
    models = load_models(VALID, "m.yaml")
    assert isinstance(models, ModelSet)
    (model,) = models.models
    assert model.name == "platform"
    assert model.threshold == 70 and model.rearm_below == 40  # defaults from bands
    fit, country, pricing, demo = model.rules
    assert isinstance(fit, FitRule) and fit.match.operators() == [("contains", "vp of sales")]
    # YAML 1.2: NO is the text "NO" (Norway), not false as in YAML 1.1
    assert isinstance(country, FitRule) and country.match.equals == "NO"
    assert isinstance(pricing, BehaviorRule)
    assert pricing.match["url"].glob == "*/pricing*"
    assert pricing.max_per_day == 1 and pricing.half_life_days == 30
    assert isinstance(demo, BehaviorRule) and demo.immediate
    assert demo.match["form"].operators() == [("equals", "demo-request")]
    assert model.applies_to[0].match.operators() == [("in", ["subscriber", "lead"])]
    assert model.fields_used == {"created_at", "job_title", "country", "lifecycle_stage"}
    assert model.history_days == 90 + 60
    assert models.get("platform") is model
    with pytest.raises(KeyError, match="platform"):
        models.get("other")


def test_history_is_unbounded_when_a_behaviour_rule_has_no_window() -> None:
    text = with_rule(
        """\
        - {id: any-page, kind: behavior, event: page_view, points: 1, max_points: 5}
        """
    )
    (model,) = load_models(text, "m.yaml").models
    assert model.history_days is None


def test_explicit_threshold_and_rearm_are_kept() -> None:
    text = VALID.replace(
        "bands: {hot: 70, warm: 40}",
        "bands: {hot: 70, warm: 40}\n    threshold: 60\n    rearm_below: 20",
    )
    (model,) = load_models(text, "m.yaml").models
    assert (model.threshold, model.rearm_below) == (60, 20)


def test_content_hash_ignores_layout_but_not_meaning() -> None:
    base = load_models(VALID, "a.yaml").models[0].content_hash
    reformatted = VALID.replace("points: 10", "points: 10.0   # same").replace(
        "bands: {hot: 70, warm: 40}", "bands:\n      hot: 70\n      warm: 40"
    )
    assert load_models(reformatted, "b.yaml").models[0].content_hash == base
    explicit_default = VALID.replace(
        "bands: {hot: 70, warm: 40}", "bands: {hot: 70, warm: 40}\n    threshold: 70"
    )
    assert load_models(explicit_default, "c.yaml").models[0].content_hash == base
    changed = VALID.replace("points: 10", "points: 11")
    assert load_models(changed, "d.yaml").models[0].content_hash != base
    reordered_decay = VALID.replace("-15}", "-16}")
    assert load_models(reordered_decay, "e.yaml").models[0].content_hash != base
    same_set = VALID.replace("{in: [subscriber, lead]}", "{in: [Lead, subscriber, lead]}")
    assert load_models(same_set, "f.yaml").models[0].content_hash == base
    other_set = VALID.replace("{in: [subscriber, lead]}", "{in: [subscriber, customer]}")
    assert load_models(other_set, "g.yaml").models[0].content_hash != base


def test_scalar_and_operator_matches_build_the_same_match() -> None:
    assert Match.model_validate("x") == Match.model_validate({"equals": "x"})
    assert Match.model_validate(5).equals == 5
    assert Match.model_validate(obj=True).equals is True
    ops = Match.model_validate({"lte": 5, "gte": 1, "exists": True}).operators()
    assert ops == [("gte", 1.0), ("lte", 5.0), ("exists", True)]  # fixed order


def test_models_can_be_built_in_code() -> None:
    model = ScoringModel(
        name="m",
        score_field="s",
        bands={"hot": 70, "warm": 40},  # type: ignore[arg-type]
        rules=[{"id": "r", "kind": "fit", "field": "f", "match": "x", "points": 1}],  # type: ignore[list-item]
    )
    assert model.threshold == 70 and model.rearm_below == 40
    assert Match(in_=["a"]).operators() == [("in", ["a"])]


@pytest.mark.parametrize(
    ("rule", "line", "expected"),
    [
        (
            "- {id: r, kind: fit, field: f, match: {contain: x}, points: 1}",
            6,
            "models[0].rules[0].match.contain: unknown operator 'contain'",
        ),
        (
            "- {id: r, kind: fit, field: f, match: x, points: ten}",
            6,
            "models[0].rules[0].points: expected a number, got text 'ten'",
        ),
        (
            "- {id: r, kind: fit, field: f, match: x, points: '10'}",
            6,
            "models[0].rules[0].points: expected a number, got text '10'",
        ),
        (
            "- {id: r, kind: fit, field: f, match: x}",
            6,
            "models[0].rules[0].points: missing required key 'points'",
        ),
        (
            "- {id: r, kind: fit, field: f, match: {regex: '(open'}, points: 1}",
            6,
            "models[0].rules[0].match.regex: invalid regular expression",
        ),
        (
            "- {id: r, kind: score, field: f, match: x, points: 1}",
            6,
            "models[0].rules[0]: kind must be 'fit' or 'behavior', got text 'score'",
        ),
        (
            "- {id: r, field: f, match: x, points: 1}",
            6,
            "models[0].rules[0]: missing required key 'kind'",
        ),
        (
            "- {id: Title VP, kind: fit, field: f, match: x, points: 1}",
            6,
            "models[0].rules[0].id: rule id 'Title VP' may use only a-z, 0-9",
        ),
        (
            "- {id: r, kind: fit, field: f, match: {}, points: 1}",
            6,
            "models[0].rules[0].match: needs at least one operator",
        ),
        (
            "- {id: r, kind: fit, field: f, match: [a, b], points: 1}",
            6,
            "models[0].rules[0].match: expected a value or an operator object",
        ),
        (
            "- {id: r, kind: fit, field: f, match: {in: []}, points: 1}",
            6,
            "models[0].rules[0].match.in: must list at least one value",
        ),
        (
            "- {id: r, kind: fit, field: f, match: {gt: many}, points: 1}",
            6,
            "models[0].rules[0].match.gt: expected a number, got text 'many'",
        ),
        (
            "- {id: r, kind: fit, field: f, match: {exists: yes}, points: 1}",
            6,
            "models[0].rules[0].match.exists: expected true or false, got text 'yes'",
        ),
        (
            "- {id: r, kind: fit, field: f, match: x, points: .nan}",
            6,
            "models[0].rules[0].points: must be a finite number",
        ),
        (
            "- {id: r, kind: behavior, event: e, points: 1, max_per_day: 0}",
            6,
            "models[0].rules[0].max_per_day: must be at least 1",
        ),
        (
            "- {id: r, kind: behavior, event: e, points: 1, max_per_day: 1.5}",
            6,
            "models[0].rules[0].max_per_day: expected a whole number",
        ),
        (
            "- {id: r, kind: behavior, event: e, points: 1, window_days: -3}",
            6,
            "models[0].rules[0].window_days: must be greater than 0",
        ),
        (
            "- {id: r, kind: behavior, event: e, points: 1, match: {url: {like: x}}}",
            6,
            "models[0].rules[0].match.url.like: unknown operator 'like'",
        ),
        (
            "- {id: r, kind: behavior, event: e, point: 1}",
            6,
            "models[0].rules[0].point: unknown key 'point' (did you mean 'points'?)",
        ),
        (
            "- {id: r, kind: fit, field: f, match: {equals: 2026-01-01}, points: 1}",
            6,
            "models[0].rules[0].match.equals: expected text, a number or true/false, "
            "got a date '2026-01-01' (put it in quotes to make it text)",
        ),
        (
            "- {id: r, kind: behavior, event: e, points: 1, match: pricing}",
            6,
            "models[0].rules[0].match: expected event attributes to match",
        ),
    ],
)
def test_each_problem_gets_one_line_with_file_line_and_path(
    rule: str, line: int, expected: str
) -> None:
    problems = problems_of(with_rule(rule))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"m.yaml:{line}: {expected}"), problems


def test_block_style_problems_point_at_the_offending_line() -> None:
    text = textwrap.dedent(
        """\
        models:
          - name: m
            score_field: s
            bands:
              hot: 40
              warm: 70
            rules:
              - id: ok
                kind: fit
                field: job_title
                match:
                  contains_any: [director]
                  starts_with: head
                points: 7
              - id: ok
                kind: behavior
                event: page_view
                points: 6
                colour: red
            decay:
              - inactive_days: 60
                points: -30
              - inactive_days: 30
                points: -15
              - inactive_days: 90
                points: 10
        """
    )
    assert problems_of(text) == [
        "m.yaml:5: models[0].bands.hot: hot (40) must be greater than warm (70)",
        "m.yaml:13: models[0].rules[0].match.starts_with: unknown operator 'starts_with' "
        "(operators: equals, in, contains, contains_any, glob, regex, gt, gte, lt, lte, "
        "exists, email_domain_in, free_email)",
        "m.yaml:15: models[0].rules[1].id: duplicate rule id 'ok' (first used by rules[0])",
        "m.yaml:19: models[0].rules[1].colour: unknown key 'colour'",
        "m.yaml:26: models[0].decay[2].points: must be at most 0, got the number 10",
    ]


def test_decay_order_and_threshold_checks() -> None:
    text = with_rule(
        "- {id: r, kind: fit, field: f, match: x, points: 1}\n",
        extra_model=(
            "    threshold: 50\n    rearm_below: 60\n"
            "    decay:\n      - {inactive_days: 60, points: -30}\n"
            "      - {inactive_days: 30, points: -15}\n"
        ),
    )
    problems = problems_of(text)
    assert problems == [
        "m.yaml:9: models[0].decay[1].inactive_days: decay steps must be in increasing "
        "order of inactive_days: 30 comes after 60",
    ]
    fixed = text.replace("inactive_days: 30", "inactive_days: 90")
    assert problems_of(fixed) == [
        "m.yaml:6: models[0].rearm_below: rearm_below (60) must not be above threshold (50)"
    ]


def test_duplicate_yaml_keys_are_rejected_with_both_lines() -> None:
    text = "models:\n  - name: a\n    score_field: s\n    score_field: t\n"
    assert problems_of(text) == [
        "m.yaml:4: (file): duplicate key 'score_field' (a key may appear only once in a mapping)"
    ]


def test_duplicate_model_names_are_reported_even_with_other_problems() -> None:
    one = "  - name: same\n    score_field: s\n    bands: {hot: 2, warm: 1}\n    rules:\n      - {id: r, kind: fit, field: f, match: x, points: 1}\n"
    broken = one.replace("points: 1", "points: x")
    other_field = one.replace("score_field: s", "score_field: t")
    problems = problems_of("models:\n" + broken + other_field)
    assert problems == [
        "m.yaml:6: models[0].rules[0].points: expected a number, got text 'x'",
        "m.yaml:7: models[1].name: duplicate model name 'same' (first used by models[0])",
    ]
    assert problems_of("models:\n" + one + other_field) == [
        "m.yaml:7: models[1].name: duplicate model name 'same' (first used by models[0])"
    ]


def test_two_models_cannot_write_the_same_score_field() -> None:
    one = "  - name: a\n    score_field: score\n    bands: {hot: 2, warm: 1}\n    rules:\n      - {id: r, kind: fit, field: f, match: x, points: 1}\n"
    problems = problems_of("models:\n" + one + one.replace("name: a", "name: b"))
    assert problems == [
        "m.yaml:8: models[1].score_field: score_field 'score' is already written by "
        "models[0]; each model needs its own field"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "m.yaml:1: (file): the file is empty"),
        ("- a\n- b\n", "m.yaml:1: (file): expected 'models:' with a list of models, got a list"),
        ("models: [\n", "m.yaml:2: (file): not valid YAML"),
        ("models: []\n", "m.yaml:1: models: the file defines no models"),
        ("model: []\n", "m.yaml:1: model: unknown key 'model' (did you mean 'models'?)"),
        ("models: &x\n  - *x\n", "m.yaml:1: models[0]: expected a mapping (key: value)"),
        (
            "models:\n  - name: Big Model\n",
            "m.yaml:2: models[0].name: model name 'Big Model' may use only a-z",
        ),
        (
            "models:\n  - {name: m, score_field: s, bands: {hot: 2, warm: 1}, rules: []}\n",
            "m.yaml:2: models[0].rules: a model needs at least one rule",
        ),
        ("\tmodels: []\n", "m.yaml:1: (file): not valid YAML"),
    ],
)
def test_file_level_problems(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_alias_bombs_are_refused_not_expanded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        prev = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([prev] * 10)}]")
    problems = problems_of("\n".join(lines) + "\n")
    assert problems == ["m.yaml:1: (file): the file expands to too many values (aliases?)"]


def test_warnings_for_unbounded_rules_and_unreachable_bands() -> None:
    text = with_rule(
        """\
        - {id: capped, kind: behavior, event: a, points: 5, max_points: 10}
        - {id: windowed, kind: behavior, event: a, points: 5, window_days: 30}
        - {id: penalty, kind: behavior, event: unsubscribe, points: -20}
        - {id: unbounded, kind: behavior, event: email_open, points: 2}
        """
    ).replace("bands: {hot: 70, warm: 40}", "bands: {hot: 120, warm: 40}\n    threshold: 90")
    models = load_models(text, "m.yaml")
    warnings = check_warnings(models)
    assert warnings == [
        "m.yaml:10: models[0].rules[3]: behaviour rule 'unbounded' has no max_points and "
        "no window_days: its points grow without limit as events pile up",
        "m.yaml:4: models[0].bands.hot: hot (120) is above scale.max (100): no lead can ever be hot",
    ]


def test_warnings_for_groups_that_cannot_work() -> None:
    text = with_rule(
        """\
        - {id: any-page, kind: behavior, group: pages, event: page_view, points: 6, max_points: 30}
        - id: pricing
          kind: behavior
          group: pages
          event: page_view
          match: {url: {glob: "*/pricing*"}}
          points: 9
          max_points: 27
        - {id: any-form, kind: behavior, group: pages, event: form_submit, points: 1, max_points: 5}
        - {id: title, kind: fit, group: pages, field: job_title, match: x, points: 1}
        """
    )
    assert check_warnings(load_models(text, "m.yaml")) == [
        "m.yaml:7: models[0].rules[1]: rule 'pricing' never counts: the earlier rule "
        "'any-page' of group 'pages' takes every page_view event; put the more specific "
        "rule first",
        "m.yaml:6: models[0].rules[0].group: group 'pages' has fit and behavior rules: "
        "they never compete, groups work within one kind",
    ]


def test_no_warnings_for_a_bounded_model() -> None:
    assert check_warnings(load_models(VALID, "m.yaml")) == []


def test_model_set_built_in_code_warns_without_file_lines() -> None:
    models = ModelSet.model_validate(
        {
            "models": [
                {
                    "name": "m",
                    "score_field": "s",
                    "bands": {"hot": 2, "warm": 1},
                    "rules": [{"id": "r", "kind": "behavior", "event": "e", "points": 1}],
                }
            ]
        }
    )
    assert check_warnings(models) == [
        "models[0].rules[0]: behaviour rule 'r' has no max_points and no window_days: "
        "its points grow without limit as events pile up"
    ]


def test_free_email_domains_are_normalised() -> None:
    text = with_rule(
        "- {id: r, kind: fit, field: email, match: {email_domain_in: ['@ACME.com']}, points: 1}\n",
        extra_model="    free_email_domains: ['@Mail.Example']\n",
    )
    (model,) = load_models(text, "m.yaml").models
    assert model.free_email_domains == ["mail.example"]
    rule = model.rules[0]
    assert isinstance(rule, FitRule) and rule.match.email_domain_in == ["acme.com"]


def test_docs_describe_every_operator_and_key() -> None:
    from pathlib import Path

    from scoring.model import OPERATORS, Bands, DecayStep, Scale

    docs = (Path(__file__).resolve().parents[2] / "docs" / "scoring.md").read_text("utf-8")
    for operator in OPERATORS:
        assert f"`{operator}`" in docs, operator
    for cls in (ScoringModel, FitRule, BehaviorRule, Scale, Bands, DecayStep):
        for name, info in cls.model_fields.items():
            assert f"`{info.alias or name}`" in docs or f"{info.alias or name}:" in docs, name
