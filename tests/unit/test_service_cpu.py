"""The load tests' CPU-per-request figure: CPU from /proc, requests from BentoML's counter."""

from __future__ import annotations

import os
import subprocess
import sys

from loadtests.service_cpu import cpu_seconds, predict_requests, process_tree, wait_until_idle


def test_cpu_of_a_process_tree_counts_its_children() -> None:
    busy_then_idle = "sum(range(10**7)); print('busy', flush=True); import time; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", busy_then_idle], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"busy\n"
        assert child.pid in process_tree(os.getpid())
        assert cpu_seconds(os.getpid()) >= cpu_seconds(child.pid) > 0
    finally:
        child.kill()
        child.wait()


def test_a_busy_process_is_not_idle_until_it_settles() -> None:
    busy_then_idle = "import time; end = time.monotonic() + 4\nwhile time.monotonic() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", busy_then_idle + "\ntime.sleep(60)"])
    try:
        assert not wait_until_idle(child.pid, interval_s=0.2, timeout_s=1.0)
        assert wait_until_idle(child.pid, interval_s=0.2, timeout_s=30)
    finally:
        child.kill()
        child.wait()


def test_only_predict_requests_are_counted() -> None:
    text = "\n".join(
        [
            "# TYPE bentoml_service_request_total counter",
            'bentoml_service_request_total{endpoint="/predict",http_response_code="200"} 120.0',
            'bentoml_service_request_total{endpoint="/predict",http_response_code="503"} 3.0',
            'bentoml_service_request_total{endpoint="/explain",http_response_code="200"} 7.0',
            'bentoml_service_request_in_progress{endpoint="/predict"} 2.0',
        ]
    )
    assert predict_requests(text) == 123
