"""The one way this project runs Locust headless from Python (bench and the smoke test)."""

from __future__ import annotations

import sys
from pathlib import Path

LOCUSTFILE = "loadtests/locustfile.py"


def locust_command(
    host: str, users: int, spawn_rate: int, run_time_s: int, csv_prefix: Path, reset_stats: bool
) -> list[str]:
    command = [
        str(Path(sys.executable).parent / "locust"), "-f", LOCUSTFILE, "--headless",
        "--only-summary", "--host", host, "-u", str(users), "-r", str(spawn_rate),
        "--run-time", f"{run_time_s}s", "--stop-timeout", "5", "--csv", str(csv_prefix),
    ]  # fmt: skip
    return [*command, "--reset-stats"] if reset_stats else command
