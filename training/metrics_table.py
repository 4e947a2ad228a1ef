"""The one-screen metrics table printed after training."""

from __future__ import annotations

from training.train import TrainingResult

ROWS = (
    ("ROC-AUC", "roc_auc", "{:.4f}"),
    ("PR-AUC", "pr_auc", "{:.4f}"),
    ("log-loss", "log_loss", "{:.4f}"),
    ("Brier", "brier", "{:.4f}"),
    ("calibration error", "expected_calibration_error", "{:.4f}"),
    ("threshold", "threshold", "{:.3f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("F1", "f1", "{:.3f}"),
    ("top-decile lift", "top_decile_lift", "{:.2f}"),
    ("targeted share", "targeted_share", "{:.1%}"),
    ("profit / customer", "expected_profit_per_customer", "{:.2f}"),
    ("max profit / cust.", "max_profit_per_customer", "{:.2f}"),
)


def metrics_table(result: TrainingResult) -> str:
    names = [
        r.candidate.name + (" *" if r.candidate.name == result.winner else "")
        for r in result.results
    ]
    width = max(20, *(len(n) + 2 for n in names))
    lines = [
        "Test-set metrics (* = registered winner)",
        f"{'':20}" + "".join(f"{n:>{width}}" for n in names),
    ]
    for label, key, fmt in ROWS:
        cells = "".join(f"{fmt.format(r.test.as_dict()[key]):>{width}}" for r in result.results)
        lines.append(f"{label:20}{cells}")
    methods = "".join(
        f"{r.calibration.method if r.calibration else 'none':>{width}}" for r in result.results
    )
    lines.append(f"{'calibrated by':20}{methods}")
    return "\n".join(lines)
