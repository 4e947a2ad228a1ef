"""make bench-console: how long each console page takes the server, with 10,000 recorded scores
for one customer.

It fills a history database of its own (SQLite by default, or `--history-url`) with `--rows`
scores of one customer over a year, plus the other customers the demo data holds, starts
`bentoml serve` with keys required, signs in, and requests every page `--repeats` times one at
a time. Each page reports its own time in its `Server-Timing` header; the median and the
slowest are printed. Fails if a page's median is over `--max-ms` (200).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from history.customer_ids import CustomerIds
from history.database import engine_for
from history.records import ScoredBatch, rows_of
from history.schema import migrate
from history.sinks import sink_for
from loadtests.servers import Target, bentoml_serve, create_key, running

CUSTOMER = "BENCH-0001"
PAGES = ("/ui/today", f"/ui/customers?id={CUSTOMER}", "/ui/score", "/ui/files", "/ui/model",
         "/ui/monitoring")  # fmt: skip
TIMING = re.compile(r"render;dur=([0-9.]+)")


def fill(url: str, rows: int) -> None:
    engine = engine_for(url)
    migrate(engine)
    sink = sink_for(engine)
    rng = np.random.default_rng(1)
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / rows
    prediction = {"customer_id": CUSTOMER, "model_version": "1", "churn": False,
                  "risk_tier": "low", "decile": 5, "segment": "s", "action": "no action",
                  "expected_value": 0.0}  # fmt: skip
    for first in range(0, rows, 1000):
        batch_rows = []
        for n in range(first, min(first + 1000, rows)):
            p = float(rng.beta(2, 5))
            batch = ScoredBatch(start + n * step, "api", "churn",
                                [{**prediction, "churn_probability": p}], [None])  # fmt: skip
            batch_rows += rows_of(batch, CustomerIds(), 0.0)
        sink.write(batch_rows)
    sink.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--max-ms", type=float, default=200.0)
    parser.add_argument("--history-url", default="")
    parser.add_argument("--out", type=Path, default=Path("reports/bench-console.json"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="churn-console-bench-"))
    history_url = args.history_url or f"sqlite:///{folder / 'history.db'}"
    fill(history_url, args.rows)
    env = {
        "CHURN_AUTH": "required",
        "CHURN_AUTH_DB": f"sqlite:///{folder / 'keys.db'}",
        "CHURN_HISTORY_URL": history_url,
        "CHURN_MONITOR": "false",
    }
    key = create_key(env, "admin")
    results: dict[str, dict[str, float]] = {}
    target = Target("console", "console", "bentoml", bentoml_serve(3011), "/readyz", env)
    with (
        running(target, 3011, folder / "serve.log") as base,
        httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client,
    ):
        login = client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', login.text)
        assert csrf is not None, "the login page has no CSRF token"
        nonce = login.cookies["churn_csrf"]
        signed = client.post(
            "/ui/login",
            data={"key": key, "csrf": csrf[1], "next": "/ui"},
            headers={"cookie": f"churn_csrf={nonce}"},
        )
        assert signed.status_code == 303, signed.text
        # The cookies are Secure: sent by hand, since this client speaks plain HTTP.
        cookie = f"churn_csrf={nonce}; churn_session={signed.cookies['churn_session']}"
        for page in PAGES:
            timings = []
            for _ in range(args.repeats + 2):
                response = client.get(page, headers={"cookie": cookie})
                assert response.status_code == 200, (page, response.status_code)
                found = TIMING.search(response.headers.get("server-timing", ""))
                assert found, page
                timings.append(float(found[1]))
            timings = timings[2:]  # the first two warm the worker's caches
            results[page] = {"median_ms": statistics.median(timings), "max_ms": max(timings)}
            print(f"{page:<34} median {results[page]['median_ms']:6.1f} ms, "
                  f"slowest {results[page]['max_ms']:6.1f} ms")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "pages": results}, indent=2))
    slow = [page for page, r in results.items() if r["median_ms"] > args.max_ms]
    if slow:
        print(f"FAIL: median over {args.max_ms:.0f} ms: {', '.join(slow)}")
        return 1
    print(f"PASS: every page's median is within {args.max_ms:.0f} ms, with {args.rows:,} scores "
          "for one customer")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
