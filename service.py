"""BentoML service: serves the MLflow model version that the `champion` alias points at.

`make bento` imports that version into the BentoML store. Importing this module only defines
the service: its settings, its API (whose request schema the stored model's signature declares,
serving/model/declared.py) and its routes. The service's constructor loads the model and builds
the endpoints, the stores and the checks every request passes, which sit in front of BentoML's
app (serving/http/fast_lane.py).
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.types import ASGIApp

from churn.errors import UserError
from churn.explain import Reason
from churn.model import ChurnModel
from cli.runner import settings_errors
from console.file_jobs import FileJobs
from console.pages import Backend as ConsoleBackend
from console.pages import Console
from console.session import Sessions, console_secret
from history.drift_counts import DriftCounter
from history.reader import within_range
from history.records import ScoredBatch
from history.store import History
from monitoring.drift import DriftReport
from monitoring.recorded_drift import recent_drift
from serving import metrics
from serving.access.access import Access
from serving.access.pepper import pepper_for
from serving.access.rate_limit import charge
from serving.http import quiet_client_errors
from serving.http.errors import (
    first_unscorable_explanation,
    first_unscorable_prediction,
    unscorable_message,
)
from serving.http.fast_lane import FastLane, serve_through_instance
from serving.http.fast_predict import FastPredict, PredictEndpoint
from serving.http.file_tasks import FileTaskError, FileTasks, task_result
from serving.http.gate import gated
from serving.model.answers import customer_id, decide
from serving.model.challenger import Challenger
from serving.model.champion import champion_version
from serving.model.declared import declared_api
from serving.model.follow import Follower, FollowMetrics, FollowSettings, LoadedVersion
from serving.model.readiness import can_score
from serving.model.schema import Explanation, Prediction, customer_columns
from serving.model.served import Served, ServedModel, bento_version_tags
from serving.monitor import Monitor
from serving.settings import ServingSettings

log = logging.getLogger(__name__)
HISTORY_OFF = "Prediction history is off (CHURN_HISTORY_ENABLED=false)."
try:
    SETTINGS = ServingSettings()
except ValidationError as error:  # a bad CHURN_* variable: its name and what is wrong, no traceback
    raise SystemExit("; ".join(settings_errors(error))) from None
REQUEST_TIMEOUT_S = 30
SCORING_PATHS = frozenset({"/predict", "/explain"})
CHAMPION = bentoml.models.BentoModel(f"{SETTINGS.model_name}:latest")
API = declared_api(CHAMPION, SETTINGS.max_customers_per_request)
PredictRequest = API.request

http_routes = FastAPI()


@http_routes.exception_handler(RequestValidationError)
async def _bad_query(request: Request, error: RequestValidationError) -> JSONResponse:
    """A bad query parameter is a 400 that names it, in the service's one error format."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"][1:]) or "request"
    detail = jsonable_encoder(error.errors())
    return JSONResponse({"error": f"{where}: {first['msg']}", "detail": detail}, 400)


@bentoml.service(
    name="churn",
    workers=SETTINGS.workers,
    http={"port": SETTINGS.port},
    traffic={"timeout": REQUEST_TIMEOUT_S},
    metrics={"enabled": True},
    logging={"access": {"enabled": SETTINGS.access_log}},
    tracing={"excluded_urls": [] if SETTINGS.trace_predict else sorted(SCORING_PATHS)},
)
@bentoml.asgi_app(http_routes, path="/")
class ChurnService:
    champion = CHAMPION

    @bentoml.on_deployment  # type: ignore[untyped-decorator]
    def check_stores() -> None:
        """Once, before any worker starts: a store the service cannot open is one line and an
        exit code, and the pepper and the history's schema are made once, not per worker."""
        if SETTINGS.auth == "required":
            try:
                pepper_for(SETTINGS.auth_db, SETTINGS.auth_pepper)
            except UserError as error:
                raise SystemExit(str(error)) from None
        if SETTINGS.history.enabled:
            try:
                History.open(SETTINGS.history).engine.dispose()
            except UserError as error:
                raise SystemExit(f"{error}. Fix it, or set CHURN_HISTORY_ENABLED=false.") from None

    def __init__(self) -> None:
        settings = SETTINGS
        quiet_client_errors.install()
        if settings.auth == "off":
            log.warning(
                "CHURN_AUTH=off: every endpoint is open to anyone who can reach port %d. "
                "Set CHURN_AUTH=required and create keys with `python -m serving keys create`.",
                settings.port,
            )
        self.access = Access.open(settings)
        self.file_tasks = FileTasks(
            settings.scored_files_dir,
            settings.max_file_tasks_per_worker,
            settings.file_task_timeout_s,
            settings.scored_files_keep_hours * 3600,
        )
        self.served_model = ServedModel(self._load_champion())
        served = self.served_model.current
        metrics.record_model(served.name, served.version, served.run_id)
        self.served_model.on_swap(_record_swap)
        self.served_model.on_swap(self._forget_files)
        self.history = History.open(settings.history) if settings.history.enabled else None
        self.recorder = self.monitor = self.follower = None
        reference = served.model.insight.reference
        if self.history is not None:
            drift = (
                None
                if reference is None
                else DriftCounter(served.model.spec, reference, served.version)
            )
            self.recorder = self.history.writer(metrics.history_events(), drift)
            self.recorder.start()
            self.served_model.on_swap(self._count_drift_of)
            if settings.monitor and bentoml.server_context.worker_index in (None, 1):
                self.monitor = Monitor(
                    self.history,
                    settings.drift,
                    reference,
                    served.name,
                    served.version,
                    partial(champion_version, settings),
                )
                self.monitor.start()
                self.served_model.on_swap(self.monitor.follow)
        self.experiment = settings.experiment.experiment()
        self.challenger = self.challenger_follower = None
        if settings.challenger_mode != "off":
            self.challenger, self.challenger_follower = self._challenger(settings)
        self.predict_endpoint = self._endpoint("predict", self.predictions)
        self.explain_endpoint = self._endpoint(
            "explain", self.explanations, unscorable=first_unscorable_explanation
        )
        self.console = self._console()
        http_routes.include_router(self.console.router())
        self._bind_console()
        self.served_model.on_swap(lambda old, new: self._bind_console())
        if settings.follow_alias:
            self.follower = self._follower(settings.model_alias, self._swap)
            self.follower.start()
        # Everything loaded so far lives as long as the worker; a full collection that walks it
        # all would stall every request in flight.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*settings.gc_thresholds)

    def _load_champion(self) -> Served:
        labels = self.champion.info.labels
        model: ChurnModel = bentoml.mlflow.load_model(self.champion).unwrap_python_model()
        metrics.hold_model(model)
        assert API.model_dir is not None, "bentoml serve resolves the model before this"
        return Served.of(
            model,
            labels.get("registered_model", SETTINGS.model_name),
            labels.get("version", "unknown"),
            str(labels.get("run_id")),
            API.description,
            bento_version_tags(self.champion.info.metadata),
            API.model_dir,
            str(self.champion.tag),
        )

    def _endpoint(self, method: str, score: Any, **options: Any) -> PredictEndpoint:
        """One scoring path's endpoint, with its batches counted under `method`."""
        settings = SETTINGS
        endpoint = PredictEndpoint(
            API.request,
            settings.max_latency_ms,
            settings.max_batch_size,
            settings.max_in_flight_per_worker,
            partial(metrics.record_batch, "churn", method, max_batch_size=settings.max_batch_size),
            body_timeout_s=settings.body_timeout_s,
            **options,
        )
        endpoint.bind(score)
        return endpoint

    def front(self, app: ASGIApp) -> ASGIApp:
        """What the worker serves in front of BentoML's `app`: POST /predict and /explain go to
        their endpoints, everything else to `app`, both behind the same checks."""
        endpoints: ASGIApp = app
        for path, endpoint in (
            ("/explain", self.explain_endpoint),
            ("/predict", self.predict_endpoint),
        ):
            endpoints = FastPredict(endpoints, endpoint, path, SETTINGS.requests_per_connection)
        return FastLane(self._gated(app), self._gated(endpoints), SCORING_PATHS, REQUEST_TIMEOUT_S)

    def _gated(self, app: ASGIApp) -> ASGIApp:
        return gated(app, SETTINGS, self.access, self.file_tasks, charged_by_app=SCORING_PATHS)

    def _console(self) -> Console:
        access = self.access
        pepper = access.pepper if access else None
        ui_secret = SETTINGS.ui_secret.get_secret_value() if SETTINGS.ui_secret else None
        return Console(
            access.keys if access else None, pepper, Sessions(console_secret(ui_secret, pepper))
        )

    def _follower(
        self,
        alias: str,
        swap: Callable[[LoadedVersion], None],
        serving_version: Callable[[], str] | None = None,
        check_at_start: bool = False,
        counted: FollowMetrics | None = None,
    ) -> Follower:
        """A follower of `alias` that hands each sound new version to `swap`."""
        settings = SETTINGS
        return Follower(
            FollowSettings(
                settings.model_name,
                alias,
                settings.tracking_uri,
                settings.follow_poll_s,
                settings.follow_stagger_s,
                settings.follow_broadcast,
                bentoml.server_context.worker_index or 1,
                self.file_tasks.folder.parent / f"churn-followed-models-{alias}",
                check_at_start,
            ),
            serving_version or (lambda: self.served_model.current.version),
            API.inputs,
            API.customer,
            API.example,
            swap,
            counted,
        )

    def _challenger(self, settings: ServingSettings) -> tuple[Challenger, Follower]:
        """The challenger, and the follower that loads it from its alias and keeps it current."""
        assert settings.challenger_alias is not None and settings.challenger_mode != "off"
        challenger = Challenger(
            settings.challenger_mode,
            settings.challenger_share,
            settings.challenger_salt,
            settings.challenger_queue_customers,
            self.recorder.record if self.recorder else None,
            self.experiment,
        )
        challenger.start()

        def version() -> str:
            return challenger.current.version if challenger.current else ""

        def swap(loaded: LoadedVersion) -> None:
            challenger.serve(self._served_from(loaded))
            metrics.record_challenger_version(loaded.version)
            log.info("Challenger: now scoring with version %s (%s)", loaded.version,
                     settings.challenger_mode)  # fmt: skip

        follower = self._follower(
            settings.challenger_alias, swap, version, check_at_start=True,
            counted=FollowMetrics(metrics.count_challenger_reload, lambda noticed, seconds: None),
        )  # fmt: skip
        follower.start()
        return challenger, follower

    def _bind_console(self) -> None:
        served = self.served_model.current
        reference = served.model.insight.reference
        self.console.bind(
            ConsoleBackend(
                info=served.info,
                spec=served.model.spec,
                reference=reference,
                customer_model=API.customer,
                score=self._score_with_reasons,
                history=self.history,
                jobs=FileJobs(
                    self.file_tasks.folder / "console", self.file_tasks, served.model_dir
                ),
                drift=self._drift_now if self.history and reference else None,
                mlflow_ui=SETTINGS.mlflow_ui_url,
                charge=partial(charge, self.access.limiter) if self.access else None,
                challenger=self._comparison if self.history and self.challenger else None,
                experiment=self.experiment,
                action_costs={
                    name: action.cost
                    for name, action in served.model.insight.playbook.actions.items()
                },
                outcome_window_days=SETTINGS.history.outcome_window_days,
            )
        )

    def _score_with_reasons(
        self, customers: list[Any], clients: list[str], request_ids: list[str], reasons: bool
    ) -> tuple[list[dict[str, Any]], list[list[Reason]] | None]:
        """The console's answers and their reasons, from the same version even across a swap."""
        served = self.served_model.current
        answers = self.predictions(customers, clients, request_ids, served)
        if not reasons:
            return answers, None
        return answers, served.model.explain_with_probability(customer_columns(customers))[1]

    def _swap(self, loaded: LoadedVersion) -> None:
        """Serve the version follow mode loaded, from the next batch on."""
        old = self.served_model.current
        self.served_model.swap(self._served_from(loaded))
        log.info("Now serving %s version %s (was %s)", old.name, loaded.version, old.version)

    def _served_from(self, loaded: LoadedVersion) -> Served:
        name = self.served_model.current.name
        return Served.of(
            loaded.model, name, loaded.version, loaded.run_id, loaded.description,
            loaded.tags, loaded.model_dir, f"models:/{name}/{loaded.version}",
        )  # fmt: skip

    def _count_drift_of(self, old: Served, new: Served) -> None:
        """The history's drift counts go to the version now served."""
        reference = new.model.insight.reference
        if self.recorder is None or reference is None:
            return
        counter = self.recorder.drift
        self.recorder.drift = (
            counter.with_version(new.model.spec, reference, new.version)
            if counter is not None
            else DriftCounter(new.model.spec, reference, new.version)
        )

    def _forget_files(self, old: Served, new: Served) -> None:
        """A followed version's downloaded files go once it is no longer served and no file
        task still scores with it."""
        if old.model_dir != API.model_dir:
            self.file_tasks.delete_when_unused(old.model_dir)

    def _drift_now(self) -> DriftReport:
        """The served version's drift over the drift window, as the monitor exports it."""
        served = self.served_model.current
        reference = served.model.insight.reference
        assert self.history is not None and reference is not None
        return recent_drift(self.history.engine, reference, served.version, SETTINGS.drift)

    def __is_ready__(self) -> bool:
        return can_score(self.served_model.current.model, API.customer, API.example)

    @bentoml.on_shutdown  # type: ignore[untyped-decorator]
    def _write_remaining_history(self) -> None:
        for follower in (self.follower, self.challenger_follower):
            if follower is not None:
                follower.close()
        if self.challenger is not None:
            self.challenger.close()
        if self.monitor is not None:
            self.monitor.close()
        if self.recorder is not None:
            self.recorder.close()

    # /predict and /explain are declared here for /docs, /schema.json and BentoML's clients;
    # their endpoints (`front`) answer every POST to them with `predictions` and `explanations`
    # below. Only an in-process call runs these two bodies.
    @bentoml.api(input_spec=PredictRequest)  # type: ignore[untyped-decorator]
    def predict(self, customers: list[Any]) -> list[Prediction]:
        """Churn probability, decision and risk tier for each customer, in request order."""
        answers = self.predictions(customers)
        unscorable = first_unscorable_prediction(answers)
        if unscorable is not None:
            raise bentoml.exceptions.InvalidArgument(unscorable_message(unscorable))
        return [Prediction.model_construct(**answer) for answer in answers]

    def predictions(
        self,
        customers: list[Any],
        clients: list[str] | None = None,
        request_ids: list[str] | None = None,
        served: Served | None = None,
    ) -> list[dict[str, Any]]:
        """What /predict answers (serving/http/fast_predict.py batches the requests), recorded
        in the history; `clients` and `request_ids` say who sent each customer in which
        request."""
        served = served or self.served_model.current  # read once: one version for the batch
        challenger = self.challenger
        rival = challenger.current if challenger is not None else None
        if rival is not None and challenger is not None and challenger.mode == "canary":
            canary = challenger.canary(served, rival, customers, clients, request_ids)
            if self.recorder is not None:
                for record in canary.records:
                    self.recorder.record(record)
            return canary.answers
        predictions, decisions = decide(served, customers, experiment=self.experiment)
        metrics.record_predictions(decisions.probability, decisions.tier, clients, decisions.decile)
        if rival is not None and challenger is not None:
            challenger.shadow(customers, clients, request_ids, predictions)
        if self.recorder is not None:
            self.recorder.record(
                ScoredBatch(
                    datetime.now(UTC),
                    "api",
                    served.name,
                    predictions,
                    customers,
                    request_ids,
                    clients,
                    customer_values=decisions.customer_value.tolist(),
                )
            )
        return predictions

    @bentoml.api(input_spec=PredictRequest)  # type: ignore[untyped-decorator]
    def explain(self, customers: list[Any]) -> list[Explanation]:
        """The top 3 reasons behind each customer's risk (SHAP for CatBoost, exact linear
        contributions for the baseline). Separate from /predict so /predict stays fast."""
        answers = self.explanations(customers)
        unscorable = first_unscorable_explanation(answers)
        if unscorable is not None:
            raise bentoml.exceptions.InvalidArgument(unscorable_message(unscorable))
        return [Explanation(**answer) for answer in answers]

    def explanations(
        self,
        customers: list[Any],
        clients: list[str] | None = None,
        request_ids: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """What /explain answers (`clients` and `request_ids` are what serving/http/fast_predict.py
        hands every scoring function; explanations are not recorded)."""
        served = self.served_model.current  # read once: the whole batch gets one version
        probabilities, reasons = served.model.explain_with_probability(customer_columns(customers))
        return [
            {
                "customer_id": customer_id(customer),
                "churn_probability": probability,
                "reasons": customer_reasons,
                "model_version": served.version,
            }
            for customer, probability, customer_reasons in zip(
                customers, probabilities.tolist(), reasons, strict=True
            )
        ]

    @bentoml.task  # type: ignore[untyped-decorator]
    def score_file(self, file: Path) -> dict[str, Any]:
        """Score an uploaded CSV or Parquet file: every input column plus the decisions, in
        input order, with bad rows kept and their `error` named.

        /score_file/get answers with the summary and the paths of the scored CSV and the
        summary page, which are streamed from disk.
        """
        try:
            served = self.served_model.current
            record_as = (served.name, served.version) if self.history else None
            scored = self.file_tasks.score(file, served.model_dir, record_as)
        except FileTaskError as error:
            raise bentoml.exceptions.InvalidArgument(str(error)) from None
        summary = json.loads((scored.folder / "summary.json").read_text())
        log.info("Scored file %s: %s", scored.result_id, summary)
        return task_result(scored, summary)

    @http_routes.get("/scored_files/{result_id}/{name}")
    def scored_file(self, result_id: str, name: str) -> Response:
        """A scored file or its summary page, streamed from disk."""
        path = self.file_tasks.path_of(result_id, name)
        if path is None:
            return JSONResponse({"error": "No such scored file; results are kept a day."}, 404)
        media_type = {".csv": "text/csv", ".json": "application/json"}.get(path.suffix)
        return FileResponse(path, media_type=media_type or "text/html", filename=name)

    @http_routes.get("/customers/{customer_id}/history")
    def customer_history(
        self,
        customer_id: str,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: datetime | None = None,
    ) -> Response:
        """A customer's recorded scores, newest first: model version, tier, action and reasons.
        Pass `next_before` back as `before` for the next, older page."""
        if self.history is None:
            return JSONResponse({"error": HISTORY_OFF}, 404)
        if before is not None and not within_range(before):
            error = f"before: {before.isoformat()} is outside the years 1 to 9999 in UTC."
            return JSONResponse({"error": error}, 400)
        page = self.history.customer_history(customer_id, limit, before)
        return JSONResponse(
            {"customer_id": customer_id, "scores": page.scores, "next_before": page.next_before}
        )

    @http_routes.get("/history/summary")
    def history_summary(self, since: date | None = None, until: date | None = None) -> Response:
        """Customers scored per day, by risk tier, segment, action and model version, from
        `since` (default: 30 days ago) up to and including `until` (default: today), in UTC."""
        if self.history is None:
            return JSONResponse({"error": HISTORY_OFF}, 404)
        last = until or datetime.now(UTC).date()
        try:
            first, end = since or last - timedelta(days=30), last + timedelta(days=1)
        except OverflowError:
            error = f"until: {last} is too near the ends of the calendar for the days it counts."
            return JSONResponse({"error": error}, 400)
        if first > last:
            return JSONResponse({"error": f"since ({first}) is after until ({last})."}, 400)
        days = self.history.summary(first, end)
        return JSONResponse({"since": str(first), "until": str(last), "days": days})

    @http_routes.get("/challenger")
    def challenger_comparison(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Response:
        """The challenger beside the champion on the customers both scored, by segment, from
        `since` (default: 7 days before `until`) to `until` (default: now): the share with the
        same risk tier and action, the correlation of their probabilities, and the difference
        in expected profit per customer."""
        if self.history is None:
            return JSONResponse({"error": HISTORY_OFF}, 404)
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and not within_range(moment):
                error = f"{name}: {moment.isoformat()} is outside the years 1 to 9999 in UTC."
                return JSONResponse({"error": error}, 400)
        try:
            return JSONResponse(self._comparison(since, until))
        except OverflowError:
            return JSONResponse({"error": f"until: {until} is too early for a 7-day window."}, 400)

    def _comparison(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any]:
        """What GET /challenger answers: by default, the last 7 days."""
        assert self.history is not None
        last = until or datetime.now(UTC)
        first = since or last - timedelta(days=7)
        current = self.challenger.current if self.challenger else None
        return {
            "since": first.isoformat(),
            "until": last.isoformat(),
            "mode": SETTINGS.challenger_mode,
            "challenger_version": current.version if current else None,
            "agreement": [row.as_dict() for row in self.history.agreement(first, last)],
        }

    @http_routes.get("/model")
    def model_card(self) -> dict[str, Any]:
        """Name, version, run id, test metrics, threshold and feature schema of the served model."""
        return self.served_model.current.info


def _record_swap(old: Served, new: Served) -> None:
    metrics.record_swap(old.name, (old.version, old.run_id), (new.version, new.run_id))


serve_through_instance(ChurnService)
