"""make bench-splits: how far one table's test metrics move with the split alone.

For each seed the table is split as `training train --seed N` splits it, both candidates are
fitted with their defaults (no search), calibrated and given their thresholds as in training,
and the winner is picked by the registered rule. Each row is one seed: each candidate's test
ROC-AUC and PR-AUC, the winner, and the test profit per customer of the winner and of the
candidate that the best validation profit alone would have picked. Nothing is logged to MLflow.
A goal on one split's figures is only as sharp as the spread printed last.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from churn.errors import UserError
from churn.features import infer_spec
from training.data import Source, read_table, validate
from training.settings import TrainingSettings
from training.train import CandidateResult, fit_candidates, judge, split


@dataclass(frozen=True)
class SeedResult:
    seed: int
    test_roc_auc: dict[str, float]
    test_pr_auc: dict[str, float]
    winner: str
    winner_profit: float
    profit_pick: str
    profit_pick_profit: float


def spread(
    source: Source, target: str, id_column: str | None, seeds: Sequence[int]
) -> list[SeedResult]:
    settings = TrainingSettings()
    table = validate(read_table(source), target, id_column, settings.min_rows)
    spec = infer_spec(table.features, id_column, target)
    results = []
    for seed in seeds:
        data = split(table, seed).prepared(spec)
        candidates = fit_candidates(spec, data, seed, settings)
        choice = judge(candidates, data, settings.economics)
        fitted: dict[str, CandidateResult] = {r.candidate.name: r for r in candidates}
        results.append(_seed_result(seed, fitted, choice.name, choice.leader))
    return results


def _seed_result(
    seed: int, fitted: dict[str, CandidateResult], winner: str, profit_pick: str
) -> SeedResult:
    return SeedResult(
        seed=seed,
        test_roc_auc={name: r.test.roc_auc for name, r in fitted.items()},
        test_pr_auc={name: r.test.pr_auc for name, r in fitted.items()},
        winner=winner,
        winner_profit=fitted[winner].test.expected_profit_per_customer,
        profit_pick=profit_pick,
        profit_pick_profit=fitted[profit_pick].test.expected_profit_per_customer,
    )


def table(results: list[SeedResult]) -> list[str]:
    names = list(results[0].test_roc_auc)
    header = " | ".join(f"{name} ROC-AUC | {name} PR-AUC" for name in names)
    lines = [
        f"| seed | {header} | winner | test profit | by validation profit alone | test profit |",
        "|---:|" + "---:|---:|" * len(names) + "---|---:|---|---:|",
    ]
    for r in results:
        metrics = " | ".join(f"{r.test_roc_auc[n]:.4f} | {r.test_pr_auc[n]:.4f}" for n in names)
        lines.append(
            f"| {r.seed} | {metrics} | {r.winner} | {r.winner_profit:.2f} | {r.profit_pick} "
            f"| {r.profit_pick_profit:.2f} |"
        )
    for label, reduce in (("mean", np.mean), ("sd", np.std)):
        metrics = " | ".join(
            f"{reduce([r.test_roc_auc[n] for r in results]):.4f} | "
            f"{reduce([r.test_pr_auc[n] for r in results]):.4f}"
            for n in names
        )
        lines.append(
            f"| {label} | {metrics} | | {reduce([r.winner_profit for r in results]):.2f} | "
            f"| {reduce([r.profit_pick_profit for r in results]):.2f} |"
        )
    return lines


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.split_spread", description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--id-column")
    parser.add_argument("--seeds", type=_positive, default=20, help="seeds 0 to N-1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        results = spread(Source(args.data), args.target, args.id_column, range(args.seeds))
    except UserError as error:
        print(error, file=sys.stderr)
        return 2
    print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
