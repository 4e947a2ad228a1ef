"""The console's pages at /ui: score a customer, score a file, a customer's history, today's
movements, the model, and its drift. Server-rendered with Jinja2; no script.

Each page checks its viewer: with access control on, a signed session cookie names the API
key the person signed in with, and the page needs the same scope the API does (`predict` to
score, `score_file` for files, `history` for history, today and drift). Every form carries a
CSRF token. The pages are stateless, so any worker may answer any of them.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from churn.errors import UserError
from churn.experiment import Experiment
from console import charts
from console.file_jobs import FileJobs
from console.formatting import FILTERS, percent
from console.forms import form_fields, parse_customer
from console.session import COOKIE_FLAGS, CSRF_COOKIE, SESSION_COOKIE, Sessions, new_nonce
from history.experiments import experiment_names, measure
from history.reader import within_range
from scoring.tables import PARQUET_SUFFIXES
from serving.access import api_keys
from serving.access.api_keys import Scope
from serving.access.key_cache import KeyCache, KeyStoreUnavailableError
from serving.access.key_store import KeyRecord
from serving.http.errors import Refusal

HERE = Path(__file__).parent
TIER_ORDER = ("high", "medium", "low")
TODAY_DAYS = 7
HISTORY_POINTS = 1000
HISTORY_ROWS = 50
EXPERIMENT_WINDOW = timedelta(days=90)
EXPERIMENT_MIN_OUTCOMES = 100


@dataclass(frozen=True)
class Viewer:
    name: str
    can: frozenset[str]
    nonce: str
    csrf: str
    # The signed-in key (None with access control off), charged for what it scores.
    key: KeyRecord | None = None


@dataclass
class Backend:
    """What the pages need of the service; ChurnService binds it once its model is loaded."""

    info: dict[str, Any]
    spec: Any
    reference: Any
    customer_model: Any
    # customers, clients, request ids, with reasons? → the /predict answers (the history
    # records them) and, if asked, their reasons, both from one version
    score: Callable[[list[Any], list[str], list[str], bool], tuple[list[dict[str, Any]], Any]]
    history: Any
    jobs: FileJobs
    drift: Callable[[], Any] | None
    mlflow_ui: str | None
    # Charges a key for customers scored, as the API does: None, or the refusal.
    charge: Callable[[KeyRecord, int], Awaitable[Refusal | None]] | None = None
    # The champion and challenger side by side (what GET /challenger answers); None when
    # there is no challenger or no history.
    challenger: Callable[[], dict[str, Any]] | None = None
    # The running retention experiment (churn/experiment.py), if any, and what each action
    # costs in the served version's playbook, for the experiment page's profit.
    experiment: Experiment | None = None
    action_costs: dict[str, float] = field(default_factory=dict)
    outcome_window_days: int = 90


class Console:
    def __init__(self, keys: KeyCache | None, pepper: bytes | None, sessions: Sessions) -> None:
        self.keys = keys
        self.pepper = pepper
        self.sessions = sessions
        self.backend: Backend | None = None
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters.update(FILTERS)

    def bind(self, backend: Backend) -> None:
        self.backend = backend

    # --- who is looking ---------------------------------------------------------------------

    async def viewer(self, request: Request) -> Viewer | None:
        nonce = request.cookies.get(CSRF_COOKIE) or new_nonce()
        csrf = self.sessions.csrf_token(nonce)
        if self.keys is None:
            return Viewer("anonymous", frozenset(api_keys.SCOPES), nonce, csrf)
        key_id = self.sessions.key_id(request.cookies.get(SESSION_COOKIE))
        if key_id is None:
            return None
        try:
            record = await self.keys.get(key_id)
        except KeyStoreUnavailableError:
            return None
        if record is None or record.revoked_at is not None:
            return None
        scopes = frozenset(api_keys.SCOPES if "admin" in record.scopes else record.scopes)
        return Viewer(record.name, scopes, nonce, csrf, record)

    def page(
        self,
        request: Request,
        viewer: Viewer | None,
        template: str,
        code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        started = request.scope.get("churn.console_started", time.perf_counter())
        response = self.templates.TemplateResponse(
            request,
            template,
            {"viewer": viewer, "auth_on": self.keys is not None, "model": self._info(), **context},
            status_code=code,
        )
        millis = (time.perf_counter() - started) * 1000
        response.headers["server-timing"] = f"render;dur={millis:.1f}"
        response.headers["cache-control"] = "no-store"
        response.headers["content-security-policy"] = (
            "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'"
        )
        if viewer is not None and request.cookies.get(CSRF_COOKIE) != viewer.nonce:
            response.set_cookie(CSRF_COOKIE, viewer.nonce, **COOKIE_FLAGS)  # type: ignore[arg-type]
        return response

    def _info(self) -> dict[str, Any]:
        return self.backend.info if self.backend else {}

    async def guard(
        self, request: Request, needs: Scope | None, form: dict[str, str] | None = None
    ) -> Viewer | Response:
        """The viewer, or the answer instead of the page: sign in, a missing scope, a bad
        CSRF token."""
        request.scope["churn.console_started"] = time.perf_counter()
        viewer = await self.viewer(request)
        if viewer is None:
            return RedirectResponse(f"/ui/login?next={request.url.path}", status_code=303)
        if form is not None and not self.sessions.csrf_valid(
            request.cookies.get(CSRF_COOKIE), form.get("csrf")
        ):
            return self.page(
                request,
                viewer,
                "error.html",
                403,
                title="Form expired",
                message="The form had expired or came from another site. Open the "
                "page again and resend it.",
            )
        if needs is not None and needs not in viewer.can:
            return self.page(
                request,
                viewer,
                "error.html",
                403,
                title="Not allowed",
                message=f"The key {viewer.name!r} lacks the {needs!r} scope this "
                "page needs. Ask for a key with it.",
            )
        return viewer

    # --- the pages ----------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/ui", include_in_schema=False)
        router.add_api_route("", self.home, methods=["GET"])
        router.add_api_route("/", self.home, methods=["GET"])
        router.add_api_route("/login", self.login_page, methods=["GET"])
        router.add_api_route("/login", self.login, methods=["POST"])
        router.add_api_route("/logout", self.logout, methods=["POST"])
        router.add_api_route("/score", self.score_page, methods=["GET"])
        router.add_api_route("/score", self.score, methods=["POST"])
        router.add_api_route("/files", self.files_page, methods=["GET"])
        router.add_api_route("/files", self.upload, methods=["POST"])
        router.add_api_route("/files/{job_id}", self.file_job, methods=["GET"])
        router.add_api_route("/files/{job_id}/{name}", self.file_download, methods=["GET"])
        router.add_api_route("/customers", self.customer, methods=["GET"])
        router.add_api_route("/today", self.today, methods=["GET"])
        router.add_api_route("/model", self.model, methods=["GET"])
        router.add_api_route("/monitoring", self.monitoring, methods=["GET"])
        router.add_api_route("/challenger", self.challenger, methods=["GET"])
        router.add_api_route("/experiments", self.experiments, methods=["GET"])
        router.add_api_route("/static/console.css", self.stylesheet, methods=["GET"])
        return router

    async def stylesheet(self) -> Response:
        return FileResponse(
            HERE / "static" / "console.css",
            media_type="text/css",
            headers={"cache-control": "max-age=3600"},
        )

    async def home(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        if viewer is None:
            return RedirectResponse("/ui/login", status_code=303)
        has_history = self.backend is not None and self.backend.history is not None
        start = "/ui/today" if has_history and "history" in viewer.can else "/ui/score"
        return RedirectResponse(start, status_code=303)

    async def login_page(self, request: Request, next: str = "/ui") -> Response:
        if self.keys is None:
            return RedirectResponse("/ui", status_code=303)
        nonce = request.cookies.get(CSRF_COOKIE) or new_nonce()
        viewer = Viewer("", frozenset(), nonce, self.sessions.csrf_token(nonce))
        return self.page(request, viewer, "login.html", next=_local(next), signed_in=False)

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        nonce = request.cookies.get(CSRF_COOKIE) or new_nonce()
        viewer = Viewer("", frozenset(), nonce, self.sessions.csrf_token(nonce))
        if not self.sessions.csrf_valid(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            return self.page(
                request,
                viewer,
                "login.html",
                400,
                next=_local(form.get("next")),
                error="The form had expired; sign in again.",
            )
        record = await self._record_of(form.get("key", "").strip())
        if isinstance(record, str):
            return self.page(
                request, viewer, "login.html", 401, next=_local(form.get("next")), error=record
            )
        response = RedirectResponse(_local(form.get("next")), status_code=303)
        response.set_cookie(SESSION_COOKIE, self.sessions.issue(record.key_id), **COOKIE_FLAGS)  # type: ignore[arg-type]
        return response

    async def _record_of(self, token: str) -> Any:
        """The key's record, or what is wrong with the key, as the API would say it."""
        if not token:
            return "Paste an API key (python -m serving keys create --scopes ...)."
        presented = api_keys.parse(token) if len(token) <= 100 else None
        if presented is None or self.keys is None or self.pepper is None:
            return "That is not an API key: a key looks like chn_<12 hex digits>_<43 characters>."
        try:
            record = await self.keys.get(presented.key_id)
        except KeyStoreUnavailableError:
            return "API keys cannot be checked right now; try again shortly."
        if record is None or not api_keys.matches(self.pepper, presented, record.digest):
            return "That API key is not valid."
        if record.revoked_at is not None:
            return "That API key was revoked."
        return record

    async def logout(self, request: Request) -> Response:
        form = await _form(request)
        if not self.sessions.csrf_valid(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            return RedirectResponse("/ui", status_code=303)
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/ui")
        return response

    async def score_page(self, request: Request) -> Response:
        viewer = await self.guard(request, "predict")
        if isinstance(viewer, Response):
            return viewer
        backend = self._backend()
        fields = form_fields(backend.spec, backend.reference)
        return self.page(request, viewer, "score.html", fields=fields, result=None)

    async def score(self, request: Request) -> Response:
        form = await _form(request)
        viewer = await self.guard(request, "predict", form)
        if isinstance(viewer, Response):
            return viewer
        backend = self._backend()
        customer, errors = parse_customer(backend.customer_model, backend.spec, form)
        if customer is None:
            fields = form_fields(backend.spec, backend.reference, form, errors)
            return self.page(
                request,
                viewer,
                "score.html",
                400,
                fields=fields,
                result=None,
                error="Check the fields marked below.",
            )
        fields = form_fields(backend.spec, backend.reference, form)
        refused = await self._charge(request, viewer, "score.html", fields=fields, result=None)
        if refused is not None:
            return refused
        request_id = f"ui-{uuid.uuid4().hex[:16]}"
        with_reasons = "explain" in viewer.can
        [answer], explained = await run_in_threadpool(
            backend.score, [customer], [viewer.name], [request_id], with_reasons
        )
        reasons = None
        if with_reasons:
            reasons = charts.bars("Top reasons", [_reason_bar(reason) for reason in explained[0]])
        return self.page(
            request,
            viewer,
            "score.html",
            fields=fields,
            result=answer,
            reasons=reasons,
            request_id=request_id,
        )

    async def _charge(
        self, request: Request, viewer: Viewer, template: str, **context: Any
    ) -> Response | None:
        """Charge the viewer's key one customer, as the API charges it: None, or `template`
        saying the key's limit is spent, with the API's status and headers."""
        backend = self._backend()
        if backend.charge is None or viewer.key is None:
            return None
        refusal = await backend.charge(viewer.key, 1)
        if refusal is None:
            return None
        response = self.page(
            request, viewer, template, refusal.status, error=refusal.message, **context
        )
        response.headers.update({k.decode(): v.decode() for k, v in refusal.headers})
        return response

    async def files_page(self, request: Request) -> Response:
        viewer = await self.guard(request, "score_file")
        if isinstance(viewer, Response):
            return viewer
        return self.page(request, viewer, "files.html", columns=self._columns())

    def _columns(self) -> list[str]:
        spec = self._backend().spec
        return [*([spec.id_column] if spec.id_column else []), *spec.names]

    async def upload(self, request: Request) -> Response:
        # Who is asking, before a byte of the file is read: up to CHURN_MAX_FILE_BYTES.
        signed_in = await self.guard(request, "score_file")
        if isinstance(signed_in, Response):
            return signed_in
        async with request.form() as data:
            form = {k: v for k, v in data.items() if isinstance(v, str)}
            viewer = await self.guard(request, "score_file", form)
            if isinstance(viewer, Response):
                return viewer
            file = data.get("file")
            if not isinstance(file, UploadFile) or not file.filename:
                return self.page(
                    request,
                    viewer,
                    "files.html",
                    400,
                    columns=self._columns(),
                    error="Choose a CSV or Parquet file to score.",
                )
            refused = await self._charge(request, viewer, "files.html", columns=self._columns())
            if refused is not None:
                return refused
            saved = await run_in_threadpool(_save, file)
            filename = upload_name(file.filename)
        backend = self._backend()
        record_as = (
            (str(backend.info["name"]), str(backend.info["version"])) if backend.history else None
        )
        job_id = await run_in_threadpool(backend.jobs.start, saved, filename, record_as)
        return RedirectResponse(f"/ui/files/{job_id}", status_code=303)

    async def file_job(self, request: Request, job_id: str) -> Response:
        viewer = await self.guard(request, "score_file")
        if isinstance(viewer, Response):
            return viewer
        jobs = self._backend().jobs
        status = await run_in_threadpool(jobs.status, job_id)
        if status is None:
            return self.page(
                request,
                viewer,
                "error.html",
                404,
                title="No such file",
                message="No scored file has that id; results are kept a day.",
            )
        rejected, summary_charts = [], {}
        if status["state"] == "done":
            rejected = await run_in_threadpool(jobs.rejected, status["result_id"])
            summary_charts = _summary_charts(status["summary"])
        return self.page(
            request,
            viewer,
            "file_job.html",
            job_id=job_id,
            status=status,
            rejected=rejected,
            charts=summary_charts,
            elapsed=time.time() - status["started"],
        )

    async def file_download(self, request: Request, job_id: str, name: str) -> Response:
        viewer = await self.guard(request, "score_file")
        if isinstance(viewer, Response):
            return viewer
        jobs = self._backend().jobs
        status = jobs.status(job_id)
        path = None
        if status is not None and status.get("state") == "done":
            path = jobs.tasks.path_of(status["result_id"], name)
        if path is None:
            return self.page(
                request,
                viewer,
                "error.html",
                404,
                title="No such file",
                message="That file is not there; results are kept a day.",
            )
        stem = Path(status["file"]).stem if status else "scored"
        download = f"{stem}-scored.csv" if name == "scored.csv" else name
        media = {".csv": "text/csv", ".json": "application/json"}.get(path.suffix, "text/html")
        return FileResponse(path, media_type=media, filename=download)

    async def customer(
        self, request: Request, id: str = "", before: str = "", stored: str = ""
    ) -> Response:
        """One customer's scores; `stored=1` when `id` is the history's own (a digest, with
        hashed ids), as the Today page links it."""
        viewer = await self.guard(request, "history")
        if isinstance(viewer, Response):
            return viewer
        backend = self._backend()
        if backend.history is None or not id.strip():
            return self.page(
                request,
                viewer,
                "customer.html",
                customer_id=id.strip(),
                history_off=backend.history is None,
                scores=[],
                chart=None,
            )
        older = _parse_time(before)
        page = await run_in_threadpool(
            backend.history.customer_history, id.strip(), HISTORY_POINTS, older, stored == "1"
        )
        points = [
            (s["scored_at"][:16].replace("T", " "), s["churn_probability"], s["risk_tier"])
            for s in reversed(page.scores)
        ]
        chart = charts.risk_over_time(points, backend.info.get("threshold"))
        rows = page.scores[:HISTORY_ROWS]
        more = rows[-1]["scored_at"] if len(page.scores) > HISTORY_ROWS else page.next_before
        return self.page(
            request,
            viewer,
            "customer.html",
            customer_id=id.strip(),
            stored=stored == "1",
            scores=rows,
            chart=chart,
            shown=len(page.scores),
            older=more,
            history_off=False,
        )

    async def today(self, request: Request) -> Response:
        viewer = await self.guard(request, "history")
        if isinstance(viewer, Response):
            return viewer
        history = self._backend().history
        if history is None:
            return self.page(
                request,
                viewer,
                "error.html",
                404,
                title="History is off",
                message="Prediction history is off (CHURN_HISTORY_ENABLED=false).",
            )
        now = datetime.now(UTC)
        until = now.date() + timedelta(days=1)
        days, movers, risk = await run_in_threadpool(
            lambda: (
                history.summary(until - timedelta(days=TODAY_DAYS), until),
                history.newly_high(now - timedelta(days=1), now - timedelta(days=30)),
                history.at_risk(now - timedelta(days=1)),
            )
        )
        totals: dict[str, dict[str, int]] = {"risk_tier": {}, "segment": {}, "action": {}}
        for day in days:
            for dimension, counts in totals.items():
                for key, count in day[f"by_{dimension}"].items():
                    counts[key] = counts.get(key, 0) + count
        tiers = [
            charts.Bar(
                t,
                totals["risk_tier"].get(t, 0),
                f"{totals['risk_tier'].get(t, 0):,}",
                charts.RISE if t == "high" else charts.BAR,
            )
            for t in TIER_ORDER
        ]
        return self.page(
            request,
            viewer,
            "today.html",
            days=days,
            risk=risk,
            movers=movers,
            tier_chart=charts.bars("Customers by risk tier", tiers),
            segment_chart=_counts_chart("Customers by segment", totals["segment"]),
            action_chart=_counts_chart("Recommended actions", totals["action"]),
            window_days=TODAY_DAYS,
        )

    async def model(self, request: Request) -> Response:
        viewer = await self.guard(request, None)
        if isinstance(viewer, Response):
            return viewer
        backend = self._backend()
        realised = None
        if backend.history is not None:
            from history.reader import realised_performance

            rows = await run_in_threadpool(
                realised_performance, backend.history.engine, str(backend.info["name"])
            )
            realised = next(
                (row for row in rows if str(row["model_version"]) == str(backend.info["version"])),
                None,
            )
        link = None
        if backend.mlflow_ui:
            link = (
                f"{backend.mlflow_ui.rstrip('/')}/#/models/{backend.info['name']}"
                f"/versions/{backend.info['version']}"
            )
        return self.page(request, viewer, "model.html", realised=realised, mlflow_link=link)

    async def monitoring(self, request: Request) -> Response:
        viewer = await self.guard(request, "history")
        if isinstance(viewer, Response):
            return viewer
        backend = self._backend()
        if backend.drift is None:
            return self.page(
                request,
                viewer,
                "error.html",
                404,
                title="No drift",
                message="Drift needs the prediction history and a model version "
                "trained with a reference profile.",
            )
        report = await run_in_threadpool(backend.drift)
        shown = [
            (drift, charts.paired_bars(drift.feature, drift.labels, drift.reference, drift.current))
            for drift in (report.prediction, *report.features)
        ]
        return self.page(request, viewer, "monitoring.html", report=report, shown=shown)

    async def challenger(self, request: Request) -> Response:
        viewer = await self.guard(request, "history")
        if isinstance(viewer, Response):
            return viewer
        backend = self._backend()
        if backend.challenger is None:
            return self.page(
                request,
                viewer,
                "error.html",
                404,
                title="No challenger",
                message="Serve with CHURN_CHALLENGER_ALIAS and CHURN_CHALLENGER_MODE (shadow or "
                "canary), and the prediction history on, to compare a challenger here.",
            )
        comparison = await run_in_threadpool(backend.challenger)
        return self.page(request, viewer, "challenger.html", comparison=comparison)

    async def experiments(self, request: Request, name: str | None = None) -> Response:
        """The running experiment's uplift (or, with ?name=, a past one's), last 90 days."""
        viewer = await self.guard(request, "history")
        if isinstance(viewer, Response):
            return viewer
        backend = self._backend()
        if backend.history is None:
            return self.page(request, viewer, "error.html", 404, title="No history",
                             message="Experiments are measured from the prediction history; "
                             "serve with CHURN_HISTORY_ENABLED=true.")  # fmt: skip
        name = name or (backend.experiment.name if backend.experiment else None)
        result, problem = None, None
        if name is not None:
            until = datetime.now(UTC)
            try:
                result = await run_in_threadpool(
                    measure, backend.history.engine, name, until - EXPERIMENT_WINDOW, until,
                    backend.outcome_window_days, backend.action_costs, EXPERIMENT_MIN_OUTCOMES,
                )  # fmt: skip
            except UserError as error:
                problem = str(error)
        recorded = await run_in_threadpool(experiment_names, backend.history.engine)
        return self.page(
            request, viewer, "experiments.html", name=name, running=backend.experiment,
            result=result, problem=problem, recorded=recorded,
            min_outcomes=EXPERIMENT_MIN_OUTCOMES,
        )  # fmt: skip

    def _backend(self) -> Backend:
        if self.backend is None:
            raise RuntimeError("the console is not bound to a loaded model yet")
        return self.backend


async def _form(request: Request) -> dict[str, str]:
    async with request.form() as data:
        return {key: value for key, value in data.items() if isinstance(value, str)}


def upload_name(filename: str) -> str:
    """The uploaded file's name as the pages show it and the download names it: no folders, no
    control characters, a stem of at most 100 characters, and a .csv or Parquet suffix (.csv
    for any other)."""
    name = Path("".join(c for c in filename.replace("\\", "/") if c.isprintable())).name
    suffix = Path(name).suffix.lower()
    stem = Path(name).stem[:100] or "upload"
    return stem + (suffix if suffix in {".csv", *PARQUET_SUFFIXES} else ".csv")


def _save(file: UploadFile) -> Path:
    suffix = Path(upload_name(file.filename or "upload.csv")).suffix
    with tempfile.NamedTemporaryFile(delete=False, suffix=suffix) as out:
        while chunk := file.file.read(1 << 20):
            out.write(chunk)
    return Path(out.name)


def _local(target: str | None) -> str:
    """Only this console's own pages as a place to go after signing in."""
    if target and target.startswith("/ui") and "//" not in target and "\\" not in target:
        return target
    return "/ui"


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
    return moment if moment is not None and within_range(moment) else None


def _counts_chart(title: str, counts: dict[str, int]) -> Any:
    ordered = sorted(counts.items(), key=lambda item: -item[1])[:12]
    return charts.bars(title, [charts.Bar(k, v, f"{v:,}") for k, v in ordered])


def _summary_charts(summary: dict[str, Any]) -> dict[str, Any]:
    tiers = summary.get("by_risk_tier", {})
    deciles = summary.get("by_decile", {})
    return {
        "tiers": charts.bars(
            "Customers by risk tier",
            [
                charts.Bar(
                    t,
                    tiers.get(t, 0),
                    f"{tiers.get(t, 0):,}",
                    charts.RISE if t == "high" else charts.BAR,
                )
                for t in TIER_ORDER
            ],
        ),
        "deciles": charts.bars(
            "Customers by decile",
            [charts.Bar(f"decile {d}", n, f"{n:,}") for d, n in deciles.items()],
        ),
        "segments": _counts_chart("Customers by segment", summary.get("by_segment", {})),
        "actions": _counts_chart("Recommended actions", summary.get("by_action", {})),
        "churn_rate": percent(summary.get("predicted_churn_rate")),
    }


def _reason_bar(reason: Any) -> charts.Bar:
    return charts.Bar(
        f"{reason.feature} = {reason.value}",
        reason.contribution,
        f"{reason.contribution:+.2f} ({reason.direction})",
        charts.RISE if reason.contribution > 0 else charts.FALL,
    )
