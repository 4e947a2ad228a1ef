"""The console at /ui in a real browser: Debian's Chromium, driven by Playwright, against
`bentoml serve` with 2 workers and API keys required. Each test leaves a screenshot in
reports/ui/."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from loadtests.servers import free_port
from tests.integration.conftest import BIN, REDIS_URL, ROOT, Champion, bentoml_serve, run_checked

pytestmark = [pytest.mark.integration, pytest.mark.redis]
SCREENSHOTS = ROOT / "reports" / "ui"
LIMITED_PER_MINUTE = 5
EXPERIMENT = "console-trial"
CHROMIUM = os.environ.get("CHURN_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# What the probe of this machine found Chromium needs here: no sandbox as root, and no
# background traffic to a network that is closed.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass(frozen=True)
class Console:
    url: str
    env: dict[str, str]
    keys: dict[str, str]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, champion: Champion) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("console")
    port = free_port()
    env = {
        **champion.env,
        "CHURN_PORT": str(port),
        "CHURN_WORKERS": "2",
        "CHURN_AUTH": "required",
        "CHURN_AUTH_DB": f"sqlite:///{folder / 'keys.db'}",
        "CHURN_HISTORY_URL": f"sqlite:///{folder / 'history.db'}",
        "CHURN_HISTORY_FLUSH_SECONDS": "0.1",
        "CHURN_SCORED_FILES_DIR": str(folder / "scored"),
        # Both workers count one limit, as in production.
        "CHURN_RATE_LIMIT_STORAGE": REDIS_URL,
        "CHURN_EXPERIMENT_NAME": EXPERIMENT,
        "CHURN_EXPERIMENT_CONTROL_SHARE": "0.5",
    }
    keys = {
        name: run_checked(
            [str(BIN / "python"), "-m", "serving", "keys", "create", "--name", name,
             "--scopes", scopes],
            env,
        ).stdout.strip()
        for name, scopes in (("retention-team", "predict,explain,score_file,history"),
                             ("scorer-only", "predict"))
    }  # fmt: skip
    keys["limited"] = run_checked(
        [str(BIN / "python"), "-m", "serving", "keys", "create", "--name", "limited",
         "--scopes", "predict,explain", "--rate", f"{LIMITED_PER_MINUTE}/minute"],
        env,
    ).stdout.strip()  # fmt: skip
    with bentoml_serve(env, folder / "serve.log") as serving:
        yield Console(serving.url, env, keys)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: run `make browser-tools` (make test does).")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    yield opened
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def _sign_in(page: Page, console: Console, key: str = "retention-team", path: str = "/ui") -> None:
    page.goto(console.url + path)
    expect(page).to_have_url(f"{console.url}/ui/login?next={path}")
    page.get_by_label("API key").fill(console.keys[key])
    page.get_by_role("button", name="Sign in").click()


def test_a_page_without_a_key_asks_for_one_and_a_wrong_key_is_refused(
    page: Page, console: Console
) -> None:
    page.goto(console.url + "/ui/today")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill("chn_000000000000_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That API key is not valid.")
    assert httpx.get(console.url + "/ui/today", timeout=10).status_code == 303
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "churn_session" not in cookies
    assert cookies["churn_csrf"]["httpOnly"] and cookies["churn_csrf"]["sameSite"] == "Strict"


def test_signing_in_keeps_a_secure_http_only_strict_session_without_the_key(
    page: Page, console: Console
) -> None:
    _sign_in(page, console, path="/ui/model")
    expect(page.get_by_role("heading", name="Model churn version")).to_be_visible()
    session = next(c for c in page.context.cookies() if c["name"] == "churn_session")
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"
    assert console.keys["retention-team"].split("_", 2)[2] not in session["value"]
    expect(page.get_by_role("link", name="This version in the MLflow UI")).to_be_visible()


def test_a_form_without_its_csrf_token_is_refused(page: Page, console: Console) -> None:
    _sign_in(page, console, path="/ui/score")
    response = page.request.post(console.url + "/ui/score", form={"tenure": "3"})
    assert response.status == 403 and "Form expired" in response.text()


def test_scoring_a_customer_shows_the_decision_and_its_reasons_and_names_a_bad_field(
    page: Page, console: Console
) -> None:
    _sign_in(page, console, path="/ui/score")
    page.get_by_label("tenure").fill("a few")
    page.get_by_role("button", name="Score").click()
    expect(page.locator(".field.invalid")).to_have_count(1)
    expect(page.locator(".field.invalid label")).to_have_text("tenure")
    expect(page.get_by_label("tenure")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("customerID").fill("UI-0001")
    page.get_by_label("tenure").fill("2")
    page.get_by_label("Contract").select_option("Month-to-month")
    page.get_by_role("button", name="Score").click()
    result = page.locator(".result")
    expect(result.get_by_role("heading", name="Customer UI-0001")).to_be_visible()
    probability = result.locator(".card .value").first.inner_text()
    assert probability.endswith("%") and 0 <= float(probability[:-1]) <= 100
    expect(result.get_by_text("Recommended action")).to_be_visible()
    assert result.locator("svg[aria-label='Top reasons'] rect").count() == 3

    api = httpx.post(
        console.url + "/predict",
        headers={"X-API-Key": console.keys["retention-team"]},
        json={"customers": [_form_customer(page)]},
        timeout=30,
    ).json()[0]
    assert probability == f"{api['churn_probability']:.1%}"


def test_a_file_with_a_bad_row_is_scored_and_the_result_downloaded(
    page: Page, console: Console, customers: pd.DataFrame, tmp_path: Path
) -> None:
    upload = tmp_path / "march.csv"
    table = customers.head(40).drop(columns=["Churn"]).astype(object)
    table.loc[table.index[6], "MonthlyCharges"] = "lots"
    table.to_csv(upload, index=False)
    _sign_in(page, console, path="/ui/files")
    page.get_by_label("Customer file").set_input_files(str(upload))
    page.get_by_role("button", name="Upload and score").click()
    expect(page.get_by_role("status")).to_contain_text("Scored 39 customers", timeout=60_000)
    rejected = page.locator("table tbody tr")
    expect(rejected).to_have_count(1)
    expect(rejected.first).to_contain_text("7")
    expect(rejected.first).to_contain_text("MonthlyCharges")
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download the scored file").click()
    download = waiting.value
    assert download.suggested_filename == "march-scored.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert len(rows) == 40
    assert [n for n, row in enumerate(rows, start=1) if row["error"]] == [7]
    assert all(row["churn_probability"] for row in rows if not row["error"])


def test_a_customers_history_is_a_chart_and_a_table_newest_first(
    page: Page, console: Console, customers: pd.DataFrame
) -> None:
    record = json.loads(customers.head(1).drop(columns=["Churn"]).to_json(orient="records"))[0]
    record["customerID"] = "UI-HISTORY-1"
    headers = {"X-API-Key": console.keys["retention-team"]}
    for tenure in (1, 30, 60):
        body = {"customers": [{**record, "tenure": tenure}]}
        response = httpx.post(console.url + "/predict", json=body, headers=headers, timeout=30)
        assert response.status_code == 200
    _sign_in(page, console, path="/ui/customers")
    page.get_by_label("Customer id").fill("UI-HISTORY-1")
    page.get_by_role("button", name="Show history").click()
    chart = page.locator("svg[aria-label='Churn probability over time']")
    expect(chart.locator("circle")).to_have_count(3, timeout=15_000)
    assert len(chart.locator("polyline").get_attribute("points").split()) == 3  # type: ignore[union-attr]
    expect(page.locator("table tbody tr")).to_have_count(3)


def test_a_key_without_the_history_scope_is_told_so(page: Page, console: Console) -> None:
    _sign_in(page, console, key="scorer-only", path="/ui/score")
    expect(page.get_by_role("link", name="Today")).to_have_count(0)
    page.goto(console.url + "/ui/today")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_text("lacks the 'history' scope")).to_be_visible()


def test_today_and_monitoring_render_and_the_console_fits_a_phone(
    browser: Browser, console: Console
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    _sign_in(phone, console, path="/ui/today")
    expect(phone.get_by_role("heading", name="Today")).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "today-on-a-phone.png"), full_page=True)
    phone.goto(console.url + "/ui/monitoring")
    expect(phone.get_by_role("heading", name="Drift of version")).to_be_visible()
    phone.goto(console.url + "/ui/score")
    phone.keyboard.press("Tab")
    focused = phone.evaluate("document.activeElement.textContent")
    assert focused == "Skip to the content"
    phone.screenshot(path=str(SCREENSHOTS / "score-on-a-phone.png"), full_page=True)
    context.close()


def test_the_score_page_charges_the_keys_limit_as_the_api_does(
    page: Page, console: Console
) -> None:
    _sign_in(page, console, key="limited", path="/ui/score")
    form = {
        "csrf": page.locator("#main input[name=csrf]").get_attribute("value") or "",
        **{name: str(value) for name, value in _form_customer(page).items()},
    }
    answers = [
        page.request.post(console.url + "/ui/score", form=form)
        for _ in range(4 * LIMITED_PER_MINUTE)
    ]
    statuses = [answer.status for answer in answers]
    assert (
        statuses.count(200) == LIMITED_PER_MINUTE and statuses.count(429) == 3 * LIMITED_PER_MINUTE
    )
    refused = next(answer for answer in answers if answer.status == 429)
    assert "retry-after" in refused.headers and "limited" in refused.text()
    api = httpx.post(
        console.url + "/predict",
        headers={"X-API-Key": console.keys["limited"]},
        json={"customers": [_form_customer(page)]},
        timeout=30,
    )
    assert api.status_code == 429  # one limit for both doors


def test_the_reasons_need_the_explain_scope_on_the_page_too(page: Page, console: Console) -> None:
    _sign_in(page, console, key="scorer-only", path="/ui/score")
    page.get_by_label("tenure").fill("2")
    page.get_by_role("button", name="Score").click()
    expect(page.get_by_text("Recommended action")).to_be_visible()
    expect(page.locator("svg[aria-label='Top reasons']")).to_have_count(0)
    expect(page.get_by_text("need a key with the explain scope")).to_be_visible()


def _form_customer(page: Page) -> dict[str, Any]:
    """The customer as the form holds it, for the same request through the API."""
    values = page.eval_on_selector_all(
        "form.fields input:not([type=hidden]), form.fields select",
        "els => els.map(e => [e.name, e.value])",
    )
    customer: dict[str, Any] = {}
    for name, value in values:
        try:
            customer[name] = float(value)
        except ValueError:
            customer[name] = value
    customer["customerID"] = "UI-0001"
    return customer


def test_the_experiment_page_shows_each_actions_uplift_from_the_outcomes(
    page: Page, console: Console, customers: pd.DataFrame, tmp_path: Path
) -> None:
    known = customers.tail(300)
    records = json.loads(known.drop(columns=["Churn"]).to_json(orient="records"))
    headers = {"X-API-Key": console.keys["retention-team"]}
    answers = []
    for start in range(0, len(records), 100):
        body = {"customers": records[start : start + 100]}
        response = httpx.post(console.url + "/predict", json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        answers.extend(response.json())
        time.sleep(1.1)  # a key's default limit is 100 customers a second
    assert {a["treatment"] for a in answers} == {"treated", "control", None}
    last = answers[-1]["customer_id"]
    for _ in range(100):
        history = httpx.get(f"{console.url}/customers/{last}/history", headers=headers, timeout=10)
        if history.json()["scores"]:
            break
        time.sleep(0.1)
    labels = tmp_path / "labels.csv"
    known.assign(seen=pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)).to_csv(labels)
    run_checked(
        [str(BIN / "python"), "-m", "training", "outcomes", "--data", str(labels),
         "--id-column", "customerID", "--target", "Churn", "--observed-at", "seen"],
        console.env,
    )  # fmt: skip
    _sign_in(page, console, path="/ui/experiments")
    expect(page.get_by_role("heading", name=f"Retention experiment {EXPERIMENT}")).to_be_visible()
    # Earlier tests of this module scored customers in the experiment too: at least these.
    expect(page.get_by_text("of them with an outcome")).to_be_visible()
    actions = {a["held_back_action"] or a["action"] for a in answers if a["treatment"]}
    totals = page.locator("tr.total")
    for action in actions:
        expect(totals.filter(has_text=action)).to_have_count(1)
