"""Model files the tests share, as text: one place to read what a test scores with.

Imported by name (``from model_texts import PLATFORM_MODEL``): the top-level
``conftest.py`` puts this folder on ``sys.path``.
"""

from __future__ import annotations

import textwrap

# A model that uses every kind of rule option: applies_to, scale, groups, a behaviour
# with a daily cap, a cap, a window and a half-life, an immediate event, decay.
PLATFORM_MODEL = textwrap.dedent(
    """\
    models:
      - name: platform
        score_field: leadsync_score
        applies_to:
          - {field: lifecycle_stage, match: {in: [subscriber, lead]}}
        scale: {min: 0, max: 100}
        bands: {hot: 70, warm: 40}
        rules:
          - id: title-vp-sales
            kind: fit
            group: title
            field: job_title
            match: {contains: "vp of sales"}
            points: 10
          - id: country-no
            kind: fit
            field: country
            match: NO
            points: 1
          - id: pricing-page
            kind: behavior
            group: pages
            event: page_view
            match: {url: {glob: "*/pricing*"}}
            points: 9
            max_per_day: 1
            max_points: 27
            window_days: 90
            half_life_days: 30
          - id: demo-request
            kind: behavior
            event: form_submit
            match: {form: demo-request}
            points: 0
            immediate: true
            window_days: 30
        decay:
          - {inactive_days: 30, points: -15}
          - {inactive_days: 60, points: -30}
    """
)


def one_model(
    rules: str = "",
    *,
    name: str = "m",
    score_field: str = "s",
    hot: int = 70,
    warm: int = 40,
    extra: str = "",
) -> str:
    """A model file with one model; ``rules``: rule lines as YAML (any indentation,
    placed under ``rules:``), ``extra``: model keys as lines indented by 4. The header
    is always four lines, so a rule's line in the file is predictable."""
    head = f"models:\n  - name: {name}\n    score_field: {score_field}\n"
    head += f"    bands: {{hot: {hot}, warm: {warm}}}\n" + extra
    if not rules:
        return head
    return head + "    rules:\n" + textwrap.indent(textwrap.dedent(rules), "      ")
