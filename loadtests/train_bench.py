"""make bench-train: `python -m training train` on ROWS synthetic customers, default
candidates, no search, into a fresh MLflow store (SQLite and a local artifact folder).

The table (`training synth`, seed 42) is written first and is not timed. The run is timed end
to end, start-up and registration included, and its peak memory is the largest resident
memory of the process and any child, sampled every 0.2 s. Each training step's own time comes
from its log line. Up to GOAL_ROWS rows, a run over GOAL_SECONDS or GOAL_GIB fails.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from loadtests.process_tree import GIB, Run, measure

GOAL_ROWS = 1_000_000
GOAL_SECONDS = 600
GOAL_GIB = 4.0
STEP_LINE = re.compile(r"training: (?P<step>[^:]+): (?P<seconds>\d+\.\d) s")
TARGETS = {"telco": ("Churn", "customerID"), "bank": ("Exited", "CustomerId")}


def write_table(rows: int, shape: str, suffix: str, folder: Path) -> Path:
    path = folder / f"customers-{shape}-{rows}.{suffix}"
    if not path.exists():
        subprocess.run(
            [sys.executable, "-m", "training", "synth", "--rows", str(rows), "--seed", "42",
             "--shape", shape, "--out", str(path)],
            check=True,
        )  # fmt: skip
    return path


def train(data: Path, shape: str, folder: Path) -> Run:
    store = folder / "mlruns"
    shutil.rmtree(store, ignore_errors=True)
    target, id_column = TARGETS[shape]
    env = {
        "CHURN_TRACKING_URI": f"sqlite:///{store.resolve()}/mlflow.db",
        "CHURN_ARTIFACT_ROOT": str(store.resolve() / "artifacts"),
    }
    store.mkdir(parents=True)
    command = [sys.executable, "-m", "training", "train", "--data", str(data.resolve()),
               "--target", target, "--id-column", id_column, "--seed", "42"]  # fmt: skip
    return measure(f"train {data.name}", 2, command, env=env, echo=is_step_line)


def is_step_line(line: str) -> bool:
    return STEP_LINE.search(line) is not None


def report(run: Run, rows: int) -> list[str]:
    print("\n| Step | Seconds | Peak GiB |\n|---|---:|---:|")
    for at, line in run.lines:
        found = STEP_LINE.search(line)
        if found is not None:
            seconds = float(found["seconds"])
            peak = run.peak_between(at - seconds, at) / GIB
            print(f"| {found['step']} | {seconds:.1f} | {peak:.2f} |")
    table = run.output[run.output.find("Test-set metrics") :]
    print(f"\n{table.strip()}\n")
    peak = run.peak_bytes / GIB
    print(f"{rows:,} rows: {run.seconds:.0f} s, {run.cpu_seconds:.0f} CPU s, peak {peak:.2f} GiB")
    if rows > GOAL_ROWS:
        return []
    return [
        goal
        for goal, met in (
            (f"at most {GOAL_SECONDS} s", run.seconds <= GOAL_SECONDS),
            (f"peak at most {GOAL_GIB:.0f} GiB", peak <= GOAL_GIB),
        )
        if not met
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=GOAL_ROWS)
    parser.add_argument("--shape", choices=sorted(TARGETS), default="telco")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--folder", type=Path, default=Path("reports/bench-train"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    data = write_table(args.rows, args.shape, args.format, args.folder)
    failed = report(train(data, args.shape, args.folder), args.rows)
    if failed:
        sys.exit("Goals missed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
