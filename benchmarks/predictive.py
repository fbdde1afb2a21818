"""The predictive model against its rules model on the sandbox worlds.

For each of three seeds (none used while developing), the HubSpot sandbox is synced
into a temporary state store as ``leadsync demo`` does, its outcomes read, and a
predictive model over the starter model (unchanged) trained with ``leadsync train``'s
defaults: trained on earlier snapshots, judged on the later holdout. Printed per seed:
the holdout's pairs and positives, AUC and expected calibration error (10
equal-frequency bins) of both models on the same pairs. The rules score is read as a
probability the way a user reads "72 of 100".

    python benchmarks/predictive.py
    python benchmarks/predictive.py --contacts 5000 --seeds 31 32 33
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler.outcomes import StoreHistory, sync_outcomes
from scheduler.train import TooLittleData, TrainOptions, train
from scoring.model import PredictiveSpec
from tests.backtest.sandbox_world import synced_world

SEEDS = (31, 32, 33)


def one(crm: str, seed: int, contacts: int, options: TrainOptions) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        synced_world(crm, Path(tmp), contacts=contacts, seed=seed) as w,
    ):
        now = w.clock.datetime()
        sync_outcomes(w.store, w.connector, pipeline="default", started=now)
        base = w.models[0]
        data = StoreHistory(w.store, source=crm, read_at=now).load([base])
        spec = PredictiveSpec.model_validate(
            {
                "name": "learned",
                "kind": "predictive",
                "score_field": "leadsync_learned",
                "base_model": base.name,
                "artifact": "learned.json",
                "bands": {"hot": 60, "warm": 30},
            }
        )
        started = time.perf_counter()
        result = train(data, spec, base, options)
        seconds = time.perf_counter() - started
        return {**result.artifact.holdout, "train_pairs": result.train_pairs, "seconds": seconds}


def _f(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--crm", choices=["hubspot", "salesforce"], default="hubspot")
    parser.add_argument("--horizon-days", type=int, default=30)
    parser.add_argument("--holdout-weeks", type=int, default=6)
    parser.add_argument("--milestone", choices=["won", "deal"], default="deal")
    args = parser.parse_args()
    options = TrainOptions(
        horizon=timedelta(days=args.horizon_days),
        holdout=timedelta(weeks=args.holdout_weeks),
        milestone=args.milestone,
    )
    print(
        f"{args.crm} sandbox, {args.contacts} contacts, starter model as the rules model, "
        f"horizon {args.horizon_days}d, milestone {args.milestone}, "
        f"holdout {args.holdout_weeks} weeks"
    )
    print(
        "seed  train_pairs  holdout_pairs  positives  AUC(pred)  AUC(rules)  ECE(pred)  ECE(rules)"
    )
    for seed in args.seeds:
        try:
            r = one(args.crm, seed, args.contacts, options)
        except TooLittleData as exc:
            print(f"{seed:>4}  refused: {exc}")
            continue
        print(
            f"{seed:>4}  {r['train_pairs']:>11}  {r['pairs']:>13}  {r['positives']:>9}  "
            f"{_f(r['auc']):>9}  {_f(r['rules_auc']):>10}  {_f(r['ece']):>9}  {_f(r['rules_ece']):>10}"
        )


if __name__ == "__main__":
    main()
