"""BentoML service: serves the MLflow model version that the `champion` alias points at.

`make bento` imports that version into the BentoML store. This module reads the request schema
from the model's own signature, scores adaptive batches with the model's own preprocessing, and
answers with the model's threshold and risk tiers.
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from mlflow.models import Model as MLflowModel
from starlette.types import ASGIApp

from churn.errors import UserError
from churn.model import ChurnModel
from console.file_jobs import FileJobs
from console.pages import Backend as ConsoleBackend
from console.pages import Console
from console.session import Sessions, console_secret
from history.drift_counts import DriftCounter
from history.records import ScoredBatch
from history.store import History
from monitoring.drift import DriftReport
from monitoring.recorded_drift import recent_drift
from serving import metrics
from serving.access.authenticate import Authenticate
from serving.access.key_cache import KeyCache
from serving.access.key_store import KeyStore
from serving.access.limiter import Limiter
from serving.access.pepper import pepper_for
from serving.access.rate_limit import RateLimit
from serving.http import quiet_client_errors
from serving.http.body_limit import BodyLimit
from serving.http.errors import (
    first_unscorable_explanation,
    first_unscorable_prediction,
    unscorable_message,
)
from serving.http.fast_lane import FastLane, wrap_service_app
from serving.http.fast_predict import FastPredict, PredictEndpoint
from serving.http.file_tasks import FileTaskError, FileTaskLimit, FileTasks, task_result
from serving.model.champion import champion_version, example_customer, model_description
from serving.model.follow import Follower, FollowSettings, LoadedVersion
from serving.model.readiness import can_score
from serving.model.schema import (
    Explanation,
    Prediction,
    customer_columns,
    customer_features,
    customer_model,
    request_model,
)
from serving.model.served import Served, ServedModel, bento_version_tags
from serving.monitor import Monitor
from serving.settings import ServingSettings

log = logging.getLogger(__name__)
HISTORY_OFF = "Prediction history is off (CHURN_HISTORY_ENABLED=false)."
SETTINGS = ServingSettings()
REQUEST_TIMEOUT_S = 30
FAST_PATHS = frozenset({"/predict", "/explain"})
CHAMPION = bentoml.models.BentoModel(f"{SETTINGS.model_name}:latest")
if CHAMPION.stored is None:
    raise SystemExit(
        f"No model {SETTINGS.model_name!r} in the BentoML store; run `make bento` "
        "(or `python -m serving import-champion`) first."
    )
MLFLOW_MODEL_DIR = Path(CHAMPION.stored.path_of("mlflow_model"))
SIGNATURE = MLflowModel.load(MLFLOW_MODEL_DIR).signature
DESCRIPTION = model_description(CHAMPION.stored)
ID_COLUMN: str | None = DESCRIPTION["feature_spec"]["id_column"]
EXAMPLE_CUSTOMER = example_customer(CHAMPION.stored)
EXAMPLE_INPUT = {"customers": [EXAMPLE_CUSTOMER]}

Customer = customer_model(SIGNATURE, ID_COLUMN, EXAMPLE_CUSTOMER)
PredictRequest = request_model(Customer, SETTINGS.max_customers_per_request, EXAMPLE_CUSTOMER)


def _endpoint(method: str, **options: Any) -> PredictEndpoint:
    """One scoring path's endpoint, with its batches counted under `method`."""
    return PredictEndpoint(
        PredictRequest,
        SETTINGS.max_latency_ms,
        SETTINGS.max_batch_size,
        SETTINGS.max_in_flight_per_worker,
        partial(metrics.record_batch, "churn", method, max_batch_size=SETTINGS.max_batch_size),
        **options,
    )


PREDICT_ENDPOINT = _endpoint("predict")
EXPLAIN_ENDPOINT = _endpoint("explain", unscorable=first_unscorable_explanation)

FILE_TASKS = FileTasks(
    SETTINGS.scored_files_dir,
    SETTINGS.max_file_tasks_per_worker,
    SETTINGS.file_task_timeout_s,
    SETTINGS.scored_files_keep_hours * 3600,
)

http_routes = FastAPI()


@http_routes.exception_handler(RequestValidationError)
async def _bad_query(request: Request, error: RequestValidationError) -> JSONResponse:
    """A bad query parameter is a 400 that names it, in the service's one error format."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"][1:]) or "request"
    detail = jsonable_encoder(error.errors())
    return JSONResponse({"error": f"{where}: {first['msg']}", "detail": detail}, 400)


PEPPER: bytes | None = None
KEYS: KeyCache | None = None
if SETTINGS.auth == "required":
    try:
        PEPPER = pepper_for(SETTINGS.auth_db, SETTINGS.auth_pepper)
    except UserError as error:
        raise SystemExit(str(error)) from None
    KEYS = KeyCache(KeyStore(SETTINGS.auth_db), SETTINGS.auth_cache_seconds)
    LIMITER = Limiter.connect(SETTINGS.rate_limit_storage, SETTINGS.rate_limit_timeout_ms / 1000)

UI_SECRET = SETTINGS.ui_secret.get_secret_value() if SETTINGS.ui_secret else None
CONSOLE = Console(KEYS, PEPPER, Sessions(console_secret(UI_SECRET, PEPPER)))
http_routes.include_router(CONSOLE.router())


@bentoml.service(
    name="churn",
    workers=SETTINGS.workers,
    http={"port": SETTINGS.port},
    traffic={"timeout": REQUEST_TIMEOUT_S},
    metrics={"enabled": True},
    logging={"access": {"enabled": SETTINGS.access_log}},
    tracing={"excluded_urls": [] if SETTINGS.trace_predict else sorted(FAST_PATHS)},
)
@bentoml.asgi_app(http_routes, path="/")
class ChurnService:
    champion = CHAMPION

    def __init__(self) -> None:
        quiet_client_errors.install()
        if SETTINGS.auth == "off":
            log.warning(
                "CHURN_AUTH=off: every endpoint is open to anyone who can reach port %d. "
                "Set CHURN_AUTH=required and create keys with `python -m serving keys create`.",
                SETTINGS.port,
            )
        labels = self.champion.info.labels
        model: ChurnModel = bentoml.mlflow.load_model(self.champion).unwrap_python_model()
        metrics.hold_model(model)
        self.served_model = ServedModel(
            Served.of(
                model,
                labels.get("registered_model", SETTINGS.model_name),
                labels.get("version", "unknown"),
                str(labels.get("run_id")),
                DESCRIPTION,
                bento_version_tags(self.champion.info.metadata),
                MLFLOW_MODEL_DIR,
                str(self.champion.tag),
            )
        )
        served = self.served_model.current
        metrics.record_model(served.name, served.version, served.run_id)
        self.served_model.on_swap(_record_swap)
        reference = model.insight.reference
        self.history = _open_history() if SETTINGS.history.enabled else None
        self.recorder = self.monitor = self.follower = None
        if self.history is not None:
            drift = (
                None if reference is None else DriftCounter(model.spec, reference, served.version)
            )
            self.recorder = self.history.writer(metrics.history_events(), drift)
            self.recorder.start()
            self.served_model.on_swap(self._count_drift_of)
            if SETTINGS.monitor and bentoml.server_context.worker_index in (None, 1):
                self.monitor = Monitor(
                    self.history,
                    SETTINGS.drift,
                    reference,
                    served.name,
                    served.version,
                    partial(champion_version, SETTINGS),
                )
                self.monitor.start()
                self.served_model.on_swap(self.monitor.follow)
        PREDICT_ENDPOINT.bind(self.predictions)
        EXPLAIN_ENDPOINT.bind(self.explanations)
        self._bind_console()
        self.served_model.on_swap(lambda old, new: self._bind_console())
        self.served_model.on_swap(_forget_files)
        if SETTINGS.follow_alias:
            self.follower = Follower(
                FollowSettings(
                    SETTINGS.model_name,
                    SETTINGS.model_alias,
                    SETTINGS.tracking_uri,
                    SETTINGS.follow_poll_s,
                    SETTINGS.follow_stagger_s,
                    SETTINGS.follow_broadcast,
                    bentoml.server_context.worker_index or 1,
                    FILE_TASKS.folder.parent / "churn-followed-models",
                ),
                lambda: self.served_model.current.version,
                SIGNATURE.inputs.to_dict(),
                Customer,
                EXAMPLE_CUSTOMER,
                self._swap,
            )
            self.follower.start()
        # Everything loaded so far lives as long as the worker; a full collection that walks it
        # all would stall every request in flight.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*SETTINGS.gc_thresholds)

    def _bind_console(self) -> None:
        served = self.served_model.current
        reference = served.model.insight.reference
        CONSOLE.bind(
            ConsoleBackend(
                info=served.info,
                spec=served.model.spec,
                reference=reference,
                customer_model=Customer,
                predict=self.predictions,
                explain=lambda customers: served.model.explain_with_probability(
                    customer_columns(customers)
                ),
                history=self.history,
                jobs=FileJobs(FILE_TASKS.folder / "console", FILE_TASKS, served.model_dir),
                drift=self._drift_now if self.history and reference else None,
                mlflow_ui=SETTINGS.mlflow_ui_url,
            )
        )

    def _swap(self, loaded: LoadedVersion) -> None:
        """Serve the version follow mode loaded, from the next batch on."""
        old = self.served_model.current
        self.served_model.swap(
            Served.of(
                loaded.model, old.name, loaded.version, loaded.run_id, loaded.description,
                loaded.tags, loaded.model_dir, f"models:/{old.name}/{loaded.version}",
            )
        )  # fmt: skip
        log.info("Now serving %s version %s (was %s)", old.name, loaded.version, old.version)

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

    def _drift_now(self) -> DriftReport:
        """The served version's drift over the drift window, as the monitor exports it."""
        served = self.served_model.current
        reference = served.model.insight.reference
        assert self.history is not None and reference is not None
        return recent_drift(self.history.engine, reference, served.version, SETTINGS.drift.window)

    def __is_ready__(self) -> bool:
        return can_score(self.served_model.current.model, Customer, EXAMPLE_CUSTOMER)

    @bentoml.on_shutdown  # type: ignore[untyped-decorator]
    def _write_remaining_history(self) -> None:
        if self.follower is not None:
            self.follower.close()
        if self.monitor is not None:
            self.monitor.close()
        if self.recorder is not None:
            self.recorder.close()

    # /predict and /explain are declared here for /docs, /schema.json and BentoML's clients;
    # serving/http/fast_predict.py answers every POST to them, ahead of BentoML's app, with
    # `predictions` and `explanations` below. Only an in-process call runs these two bodies.
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
    ) -> list[dict[str, Any]]:
        """What /predict answers (serving/http/fast_predict.py batches the requests), recorded
        in the history; `clients` and `request_ids` say who sent each customer in which
        request."""
        served = (
            self.served_model.current
        )  # read once: every customer of the batch gets one version
        decisions = served.model.decide_prepared(customer_features(served.model.spec, customers))
        metrics.record_predictions(decisions.probability, decisions.tier, clients, decisions.decile)
        # Whole columns to Python values at once: numpy scalars one by one cost more.
        answers = zip(
            customers,
            decisions.probability.tolist(),
            decisions.churn.tolist(),
            decisions.tier.tolist(),
            decisions.decile.tolist(),
            decisions.segment_id.tolist(),
            decisions.segment.tolist(),
            decisions.action.tolist(),
            decisions.expected_value.tolist(),
            strict=True,
        )
        predictions = [
            {
                "customer_id": _customer_id(customer),
                "churn_probability": probability,
                "churn": churn,
                "risk_tier": tier,
                "decile": decile,
                "segment_id": segment_id,
                "segment": segment,
                "action": action,
                "expected_value": round(value, 2),
                "model_version": served.version,
            }
            for customer, probability, churn, tier, decile, segment_id, segment, action, value in (
                answers
            )
        ]
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
        served = (
            self.served_model.current
        )  # read once: every customer of the batch gets one version
        probabilities, reasons = served.model.explain_with_probability(customer_columns(customers))
        return [
            {
                "customer_id": _customer_id(customer),
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
            scored = FILE_TASKS.score(file, served.model_dir, record_as)
        except FileTaskError as error:
            raise bentoml.exceptions.InvalidArgument(str(error)) from None
        summary = json.loads((scored.folder / "summary.json").read_text())
        log.info("Scored file %s: %s", scored.result_id, summary)
        return task_result(scored, summary)

    @http_routes.get("/scored_files/{result_id}/{name}")
    def scored_file(self, result_id: str, name: str) -> Response:
        """A scored file or its summary page, streamed from disk."""
        path = FILE_TASKS.path_of(result_id, name)
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
        first = since or last - timedelta(days=30)
        if first > last:
            return JSONResponse({"error": f"since ({first}) is after until ({last})."}, 400)
        days = self.history.summary(first, last + timedelta(days=1))
        return JSONResponse({"since": str(first), "until": str(last), "days": days})

    @http_routes.get("/model")
    def model_card(self) -> dict[str, Any]:
        """Name, version, run id, test metrics, threshold and feature schema of the served model."""
        return self.served_model.current.info


def _record_swap(old: Served, new: Served) -> None:
    metrics.record_swap(old.name, (old.version, old.run_id), (new.version, new.run_id))


def _forget_files(old: Served, new: Served) -> None:
    """A followed version's downloaded files go once it is no longer served."""
    if old.model_dir != MLFLOW_MODEL_DIR:
        shutil.rmtree(old.model_dir.parent, ignore_errors=True)


def _open_history() -> History:
    try:
        return History.open(SETTINGS.history)
    except UserError as error:
        raise SystemExit(f"{error}. Fix it, or set CHURN_HISTORY_ENABLED=false.") from None


def _customer_id(customer: Any) -> str | None:
    value = getattr(customer, "customer_id", None)
    return None if value is None else str(value)


# BentoML works out a list response's media type from its JSON schema on every response, at a
# real cost per request; ours is always JSON, so say so once.
ChurnService.apis["predict"].output_spec.media_type = "application/json"  # type: ignore[attr-defined]
ChurnService.apis["explain"].output_spec.media_type = "application/json"  # type: ignore[attr-defined]

# Outermost first: who is asking, then what they may send, then what it costs them.
if SETTINGS.auth == "required":
    ChurnService.add_asgi_middleware(  # type: ignore[attr-defined]
        Authenticate,
        keys=KEYS,
        pepper=PEPPER,
        metrics_require_key=SETTINGS.metrics_require_key,
    )
ChurnService.add_asgi_middleware(  # type: ignore[attr-defined]
    FileTaskLimit, tasks=FILE_TASKS, submit_path="/score_file/submit"
)
ChurnService.add_asgi_middleware(  # type: ignore[attr-defined]
    BodyLimit,
    limits={"/score_file": SETTINGS.max_file_bytes, "/ui/files": SETTINGS.max_file_bytes},
    default_limit=SETTINGS.max_request_bytes,
)
if SETTINGS.auth == "required":
    ChurnService.add_asgi_middleware(  # type: ignore[attr-defined]
        RateLimit,
        limiter=LIMITER,
        max_customers_per_request=SETTINGS.max_customers_per_request,
    )


def _with_fast_lane(app: ASGIApp) -> ASGIApp:
    """POST /predict and /explain answered ahead of BentoML's app (serving/http/fast_lane.py),
    through the same checks, in the same order."""
    lane: ASGIApp = app
    for path, endpoint in (("/explain", EXPLAIN_ENDPOINT), ("/predict", PREDICT_ENDPOINT)):
        lane = FastPredict(lane, endpoint, path, SETTINGS.requests_per_connection)
    lane = BodyLimit(lane, limits={}, default_limit=SETTINGS.max_request_bytes)
    if SETTINGS.auth == "required":
        assert KEYS is not None and PEPPER is not None
        lane = RateLimit(
            lane, LIMITER, SETTINGS.max_customers_per_request, charged_by_app=FAST_PATHS
        )
        lane = Authenticate(lane, KEYS, PEPPER, SETTINGS.metrics_require_key)
    return FastLane(app, lane, FAST_PATHS, REQUEST_TIMEOUT_S)


wrap_service_app(ChurnService, _with_fast_lane)
