"""Run a command and measure it: wall time, CPU time and peak resident memory of the command
and every process under it (a JVM, Python workers), sampled every 0.2 s."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

GIB = 1024**3


@dataclass(frozen=True)
class Run:
    name: str
    cores: int
    seconds: float
    peak_bytes: int
    cpu_seconds: float  # user + system of the command and every process under it
    output: str = ""
    memory: tuple[tuple[float, int], ...] = ()  # (seconds since start, resident bytes)
    lines: tuple[tuple[float, str], ...] = ()  # (seconds since start, line of output)

    def peak_between(self, start: float, end: float) -> int:
        return max((rss for at, rss in self.memory if start <= at <= end), default=0)

    def rows_per_s(self, rows: int) -> float:
        return rows / self.seconds


def measure(
    name: str,
    cores: int,
    command: list[str],
    env: dict[str, str] | None = None,
    echo: Callable[[str], bool] = lambda line: False,
) -> Run:
    """Prints each line of output `echo` picks as it comes; exits with the command's output
    when it fails."""
    peak = 0
    memory: list[tuple[float, int]] = []
    cpu: dict[int, float] = {}
    done = threading.Event()
    started = time.perf_counter()
    process = psutil.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if env is None else os.environ | env,
    )

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.2):
            try:
                tree = [process, *process.children(recursive=True)]
                resident = sum(p.memory_info().rss for p in tree if p.is_running())
                memory.append((time.perf_counter() - started, resident))
                peak = max(peak, resident)
                for member in tree:
                    times = member.cpu_times()
                    cpu[member.pid] = times.user + times.system
            except psutil.Error:
                continue

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append((time.perf_counter() - started, line))
        if echo(line):
            print(line.rstrip(), flush=True)
    process.wait()
    output = "".join(line for _, line in lines)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"{name} failed:\n{output[-3000:]}")
    used = sum(cpu.values())
    print(f"{name}: {seconds:.1f} s, {used:.0f} CPU s, peak {peak / GIB:.2f} GiB", flush=True)
    return Run(name, cores, seconds, peak, used, output, tuple(memory), tuple(lines))
