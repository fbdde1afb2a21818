"""``leadsync train``: fit a predictive model from the stored outcomes.

Semantics in docs/predictive.md. The history is the backtest's (exports of a ``files``
configuration, or the sync's state store with outcomes read first). The artifact is
written next to the model file, replacing the old one only when the new one is at least
as good on the latest holdout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from scheduler.cli_common import EXIT_OK, EXIT_REJECTED, ExitCode
from scheduler.cli_sync import UsageError, _err, _guard, _load, _out, option_duration
from scoring.model import Bands, ModelSet, PredictiveSpec, ScoringModel
from scoring.predictive import (
    Artifact,
    ArtifactError,
    artifact_problems,
    model_set,
    parse_artifact,
)

__all__ = [
    "RetrainOutcome",
    "RunModel",
    "artifact_path",
    "execute_retrain",
    "find_predictive",
    "load_artifacts",
    "register",
    "retrain_job",
    "run_models",
]

EXIT_REFUSED = (
    ExitCode.REJECTED
)  # too little data: nothing was written, the rules model keeps scoring


def find_predictive(paths: list[Path], name: str) -> tuple[Path, ModelSet, PredictiveSpec]:
    """The model file defining predictive model ``name``, its models and the model."""
    from scoring.model import ModelFileError, load_models

    found: list[str] = []
    for path in paths:
        try:
            models = load_models(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise UsageError(
                [f"{path}:1: (file): cannot read model file: {exc.strerror}"]
            ) from None
        except ModelFileError as exc:
            raise UsageError(exc.problems) from None
        for spec in models.predictive:
            if spec.name == name:
                return path, models, spec
            found.append(spec.name)
    known = ", ".join(found) if found else "none"
    raise UsageError([f"--model: no predictive model named {name!r} (predictive models: {known})"])


def artifact_path(model_file: Path, spec: PredictiveSpec) -> Path:
    """The artifact's path: relative to the model file, as the model file says."""
    return model_file.parent / spec.artifact


def load_artifacts(model_file: Path, models: ModelSet) -> tuple[dict[str, Artifact], list[str]]:
    """Artifacts that fit their models, and one line per one that is missing or refused.

    A missing or refused artifact leaves its predictive model out; the rules models
    score as before."""
    usable: dict[str, Artifact] = {}
    problems: list[str] = []
    for spec in models.predictive:
        path = artifact_path(model_file, spec)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(
                f"{path}: (file): no artifact yet for predictive model {spec.name!r}; "
                "run `leadsync train`"
            )
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: (file): cannot read: {getattr(exc, 'strerror', exc)}")
            continue
        try:
            artifact = parse_artifact(text, str(path))
        except ArtifactError as exc:
            problems.extend(exc.problems)
            continue
        refused = artifact_problems(artifact, spec, models.get(spec.base_model))
        if refused:
            problems.extend(f"{path}: {line}" for line in refused)
            continue
        usable[spec.name] = artifact
    return usable, problems


@dataclass(frozen=True)
class RunModel:
    """A predictive model as the sync sees a model: a name, a score field, a threshold
    and a hash (of its definition, so a retrain never re-baselines it), and what its
    base model reads from the CRM."""

    spec: PredictiveSpec
    base: ScoringModel
    artifact: Artifact

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def score_field(self) -> str:
        return self.spec.score_field

    @property
    def threshold(self) -> float:
        return self.spec.threshold

    @property
    def rearm_below(self) -> float:
        return self.spec.rearm_below

    @property
    def bands(self) -> Bands:
        return self.spec.bands

    @property
    def content_hash(self) -> str:
        return self.spec.content_hash

    @property
    def fields_used(self) -> frozenset[str]:
        return self.base.fields_used

    @property
    def history_days(self) -> float | None:
        """The base model's history, or the artifact's event features' when longer (a
        year for the per-type rates)."""
        days = self.base.history_days
        return None if days is None else max(days, self.artifact.history_days)


Scorer = Callable[..., list[Any]]


def run_models(paths: Sequence[Path], models: Sequence[Any]) -> tuple[list[Any], Scorer, list[str]]:
    """What ``leadsync run`` scores: the rules models, plus every predictive model whose
    artifact fits, and a scorer for the sync that routes both through the engine.
    Returns the warnings for artifacts left out (their rules models score as before)."""
    from scoring.engine import score
    from scoring.model import ModelFileError, load_models

    rules = [m for m in models if isinstance(m, ScoringModel)]
    by_name = {m.name: m for m in rules}
    extra: list[Any] = []
    warnings: list[str] = []
    for path in paths:
        try:
            loaded = load_models(path.read_text(encoding="utf-8"), str(path))
        except (OSError, ModelFileError):
            continue  # reported by load_model_files
        if not loaded.predictive:
            continue
        artifacts, problems = load_artifacts(path, loaded)
        warnings.extend(problems)
        for spec in loaded.predictive:
            base = by_name.get(spec.base_model)
            if spec.name in artifacts and base is not None:
                extra.append(RunModel(spec, base, artifacts[spec.name]))

    def scorer(
        chosen: Sequence[Any],
        contacts: Iterable[Mapping[str, Any]],
        events: Iterable[Mapping[str, Any]],
        *,
        as_of: datetime,
    ) -> list[Any]:
        wanted = [m for m in chosen if isinstance(m, RunModel)]
        plain = [m for m in chosen if isinstance(m, ScoringModel)]
        bases = [r.base for r in wanted if r.base not in plain]
        ms = model_set(
            [*plain, *bases], [r.spec for r in wanted], {r.name: r.artifact for r in wanted}
        )
        results = score(ms, contacts, events, as_of=as_of)
        names = {m.name for m in chosen}
        return [r for r in results if r.model in names]

    return [*models, *extra], scorer, warnings


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError([f"{path}: cannot write the artifact: {exc.strerror or exc}"]) from None


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def execute_train(
    config_path: str,
    *,
    model: str,
    every: str,
    horizon: str,
    milestone: Literal["won", "deal"],
    as_json: bool,
    estimator: Literal["trees", "logistic"] = "trees",
) -> int:
    from scheduler.cli_backtest import load_history

    try:
        from scheduler.train import (
            TooLittleData,
            TrainOptions,
            judge_retrain,
            old_holdout_for,
            train,
        )
    except ImportError:  # pragma: no cover - the extra is installed in tests
        raise UsageError(
            ["train: needs scikit-learn; install it with pip install 'leadsync[predictive]'"]
        ) from None
    config = _load(config_path)
    model_file, models, spec = find_predictive(config.model_paths(), model)
    base = models.get(spec.base_model)
    options = TrainOptions(
        every=option_duration(every, "--every"),
        horizon=option_duration(horizon, "--horizon"),
        milestone=milestone,
        estimator=estimator,
    )
    data, rejected = load_history(config, [base])
    try:
        result = train(data, spec, base, options)
    except TooLittleData as exc:
        _err(f"{spec.name}: {exc}")
        return EXIT_REFUSED
    target = artifact_path(model_file, spec)
    old: Artifact | None = None
    if target.exists():
        try:
            candidate = parse_artifact(target.read_text(encoding="utf-8"), str(target))
            if not artifact_problems(candidate, spec, base):
                old = candidate
        except (ArtifactError, OSError, UnicodeDecodeError):
            old = None
    replaced, why = judge_retrain(
        result.artifact, old, result.holdout, old_holdout_for(data, base, old, result, options)
    )
    if replaced:
        _write_atomically(target, result.artifact.to_json())
    h = result.artifact.holdout
    if as_json:
        _out(
            json.dumps(
                {
                    "model": spec.name,
                    "artifact": str(target),
                    "replaced": replaced,
                    "training": result.artifact.training,
                    "holdout": h,
                },
                separators=(",", ":"),
            )
        )
    else:
        t = result.artifact.training
        _out(
            f"{spec.name}: trained on {t['pairs']} pairs ({t['converting_contacts']} converting "
            f"contacts) from {t['from']} to {t['to']}"
        )
        _out(
            f"holdout {h['from']} to {h['to']}, {h['pairs']} pairs: "
            f"AUC {_fmt(h['auc'])} (rules {_fmt(h['rules_auc'])}), "
            f"calibration error {_fmt(h['ece'])} (rules {_fmt(h['rules_ece'])})"
        )
        if h.get("auc_gain") is not None:
            ci = h.get("auc_gain_ci95")
            _out(
                f"AUC gain over the rules model {h['auc_gain']:+.3f}"
                + (
                    f", 95% interval {ci[0]:+.3f} to {ci[1]:+.3f} (contacts resampled)"
                    if ci
                    else ""
                )
            )
        _out("reliability on the holdout (predicted -> observed, per tenth of the pairs):")
        for name, key in (("predictive", "reliability"), ("rules", "rules_reliability")):
            points = ", ".join(f"{b['predicted']:.3f}->{b['observed']:.3f}" for b in h.get(key, []))
            _out(f"  {name}: {points}")
        if replaced:
            _out(f"artifact: {target}")
        else:
            _out(f"artifact: {target} kept: the new model is worse on the latest holdout ({why})")
    for line in rejected[:20]:
        _err(line)
    return EXIT_REJECTED if rejected else EXIT_OK


@dataclass(frozen=True)
class RetrainOutcome:
    """What a scheduled retrain did for one predictive model, and why."""

    model: str
    action: Literal["not due", "replaced", "kept", "refused"]
    reason: str


def _usable_artifact(path: Path, spec: PredictiveSpec, base: ScoringModel) -> Artifact | None:
    try:
        candidate = parse_artifact(path.read_text(encoding="utf-8"), str(path))
    except (ArtifactError, OSError, UnicodeDecodeError):
        return None
    return None if artifact_problems(candidate, spec, base) else candidate


def execute_retrain(
    config: Any,
    *,
    every: timedelta,
    now: datetime,
    options: Any = None,
) -> list[RetrainOutcome]:
    """``schedule.retrain_every``: retrain every predictive model of ``config`` whose
    artifact is due (none usable, or its history ended ``every`` or more before
    ``now``). A new artifact replaces the old one (atomically) only when it is at least
    as good on the latest holdout; otherwise, or when there is too little data, the old
    one stays. The model's content hash covers its definition, not the artifact, so a
    replaced artifact never makes the next run baseline the model."""
    from scheduler.cli_backtest import load_history
    from scheduler.train import (
        TooLittleData,
        TrainOptions,
        judge_retrain,
        old_holdout_for,
        retrain_due,
        train,
    )
    from scoring.model import ModelFileError, load_models

    options = options or TrainOptions()
    out: list[RetrainOutcome] = []
    for model_file in config.model_paths():
        try:
            models = load_models(model_file.read_text(encoding="utf-8"), str(model_file))
        except (OSError, ModelFileError):
            continue  # the run reports it
        for spec in models.predictive:
            base = models.get(spec.base_model)
            target = artifact_path(model_file, spec)
            old = _usable_artifact(target, spec, base)
            if not retrain_due(old, now, every):
                out.append(RetrainOutcome(spec.name, "not due", f"its history is under {every}"))
                continue
            data, _ = load_history(config, [base])
            try:
                result = train(data, spec, base, options)
            except TooLittleData as exc:
                out.append(RetrainOutcome(spec.name, "refused", str(exc)))
                continue
            replaced, why = judge_retrain(
                result.artifact,
                old,
                result.holdout,
                old_holdout_for(data, base, old, result, options),
            )
            if replaced:
                _write_atomically(target, result.artifact.to_json())
            out.append(RetrainOutcome(spec.name, "replaced" if replaced else "kept", why))
    return out


def retrain_job(
    config_path: str, every: timedelta, now: Callable[[], datetime]
) -> Callable[[], int]:
    """The scheduler's retrain job for ``config_path`` (read afresh at every call): one
    log line per predictive model saying what happened and why."""
    import logging

    from scheduler.config import redact

    log = logging.getLogger("leadsync.retrain")

    def job() -> int:
        config = _load(config_path)
        for outcome in execute_retrain(config, every=every, now=now()):
            line = redact(f"{outcome.model}: {outcome.action}: {outcome.reason}")
            if outcome.action == "refused":
                log.warning("retrain %s", line)
            else:
                log.info("retrain %s", line)
        return 0

    return job


def register(app: typer.Typer) -> None:
    """Add ``train`` to the ``leadsync`` app."""

    @app.command()
    def train(
        config: Annotated[str, typer.Option("--config", help="leadsync.yaml")],
        model: Annotated[str, typer.Option("--model", help="Name of the predictive model.")],
        every: Annotated[str, typer.Option("--every", help="Time between snapshots.")] = "7d",
        horizon: Annotated[
            str, typer.Option("--horizon", help="How long after a snapshot a deal counts.")
        ] = "90d",
        milestone: Annotated[
            str, typer.Option("--milestone", help="won: a deal created and won; deal: created.")
        ] = "won",
        estimator: Annotated[
            str,
            typer.Option(
                "--estimator",
                help="trees: gradient-boosted trees; logistic: a regression over the rules.",
            ),
        ] = "trees",
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Train a predictive model from the stored outcomes (docs/predictive.md)."""
        with _guard():
            if milestone not in ("won", "deal"):
                raise UsageError([f"--milestone: expected won or deal, got {milestone!r}"])
            if estimator not in ("trees", "logistic"):
                raise UsageError([f"--estimator: expected trees or logistic, got {estimator!r}"])
            code = execute_train(
                config,
                model=model,
                every=every,
                horizon=horizon,
                milestone="won" if milestone == "won" else "deal",
                estimator="trees" if estimator == "trees" else "logistic",
                as_json=as_json,
            )
        raise typer.Exit(code)
