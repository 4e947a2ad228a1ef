"""make bench-spark: the Spark job against the in-process scorer, on the same Parquet file.

`--rows` customers (the demo table repeated, each with its own id) are written once to Parquet.
Then, with the champion and no reasons, each of `python -m scoring`, `python -m scoring spark
--master local[1]` and `local[2]` scores it end to end (start-up included); rows/s is rows over
wall time, and peak memory is the largest sum of the resident memory of the command and every
process under it (JVM and Python workers), sampled every 0.2 s. Fails if a goal is missed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loadtests.process_tree import GIB, Run, measure

PIECE_ROWS = 500_000


def write_input(data: Path, rows: int, out: Path) -> None:
    if out.exists() and pq.ParquetFile(out).metadata.num_rows == rows:
        return
    # Typed as a data lake holds it: numbers as numbers, a blank charge as null.
    table = pd.read_csv(data, na_values=[" "])
    ids = table["customerID"]
    writer = None
    written = 0
    while written < rows:
        piece = pd.concat([table] * (PIECE_ROWS // len(table) + 1), ignore_index=True)
        piece = piece.head(min(PIECE_ROWS, rows - written)).copy()
        repeat = (written + piece.index.to_numpy()) // len(table)
        piece["customerID"] = (
            ids.iloc[piece.index % len(table)].to_numpy() + "-" + repeat.astype(str)
        )
        arrow = pa.Table.from_pandas(piece, preserve_index=False)
        writer = writer or pq.ParquetWriter(out, arrow.schema)
        writer.write_table(arrow)
        written += len(piece)
    assert writer is not None
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--folder", type=Path, default=Path("reports/bench-spark"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    data = args.folder / f"customers-typed-{args.rows}.parquet"
    write_input(args.data, args.rows, data)
    python = sys.executable
    out = args.folder / "scored"
    runs = []
    for name, cores, command in (
        ("python -m scoring", 1, [python, "-m", "scoring", "--data", str(data),
                                  "--out", f"{out}.parquet", "--no-reasons",
                                  "--summary", str(args.folder / "summary")]),
        ("spark local[1]", 1, [python, "-m", "scoring", "spark", "--data", str(data),
                               "--out", str(out), "--master", "local[1]", "--overwrite"]),
        ("spark local[2]", 2, [python, "-m", "scoring", "spark", "--data", str(data),
                               "--out", str(out), "--master", "local[2]", "--overwrite"]),
    ):  # fmt: skip
        runs.append(measure(name, cores, command))
    shutil.rmtree(out, ignore_errors=True)
    Path(f"{out}.parquet").unlink(missing_ok=True)
    report(runs, args.rows)


def report(runs: list[Run], rows: int) -> None:
    single, one, two = runs
    print(f"\n{rows:,} rows, Parquet to Parquet, decisions without reasons, end to end\n")
    print("| Scorer | Seconds | Rows/s | Rows/s per core | CPU s | Rows per CPU s | Peak GiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        rate = run.rows_per_s(rows)
        print(
            f"| {run.name} | {run.seconds:.1f} | {rate:,.0f} | {rate / run.cores:,.0f} "
            f"| {run.cpu_seconds:.0f} | {rows / run.cpu_seconds:,.0f} "
            f"| {run.peak_bytes / GIB:.2f} |"
        )
    speedup = two.rows_per_s(rows) / one.rows_per_s(rows)
    per_core = two.rows_per_s(rows) / 2 / single.rows_per_s(rows)
    peak = max(run.peak_bytes for run in runs[1:]) / GIB
    efficiency = speedup / 2
    per_core_rate = two.rows_per_s(rows) / 2
    print(f"\nlocal[2] / local[1]: {speedup:.2f}x (goal at least 1.7x)")
    print(f"local[2] per core / in-process: {per_core:.2f} (goal at least 0.5)")
    print(f"Spark peak memory: {peak:.2f} GiB (goal under 4)")
    print(
        f"\nProjection: minutes = rows / (r x cores) / 60, r = {per_core_rate:,.0f} rows/s per "
        f"core, local[2]'s end-to-end rate (start-up included), and linear scaling across "
        f"executors (here local[1] -> local[2] gave {efficiency:.2f} of linear on 2 cores)"
    )
    for target in (100_000_000, 1_000_000_000):
        for cores in (32, 256):
            minutes = target / (per_core_rate * cores) / 60
            print(f"  {target:>13,} rows on {cores:>3} cores: {minutes:,.1f} min")
    failed = [
        goal
        for goal, met in (
            ("local[2] at least 1.7x local[1]", speedup >= 1.7),
            ("per core at least half the in-process rate", per_core >= 0.5),
            ("peak memory under 4 GiB", peak < 4),
        )
        if not met
    ]
    if failed:
        sys.exit("Goals missed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
