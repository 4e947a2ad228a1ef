"""Train the candidates, evaluate them, log every run and register the winner."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from catboost import CatBoostClassifier
from matplotlib import pyplot as plt
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.model_selection import train_test_split

import churn
from churn.calibration import calibrated
from churn.catboost_shap import CatBoostShap
from churn.customer_value import CustomerValue
from churn.deciles import Deciles
from churn.explain import Explainer
from churn.features import FeatureSpec, infer_spec
from churn.linear_scorer import LinearScorer
from churn.model import MODEL_DESCRIPTION_FILE, ChurnModel, Insight, RiskTiers
from churn.playbook import Playbook
from churn.reference import ReferenceProfile
from history.experiments import ExperimentResult, measure
from history.store import History
from registry.client import connect
from training import plots
from training.calibrate import CalibrationChoice, choose_calibration
from training.campaign import CampaignResults, measured_playbook, read_campaign
from training.candidates import FittedCandidate, fit_catboost, fit_logistic_regression
from training.data import LabelledTable, Source, read_table, validate
from training.evaluate import Metrics, choose_threshold, evaluate
from training.playbooks import choose_playbook
from training.progress import step
from training.search import search
from training.search_options import SearchOptions
from training.segmentation import fit_segments
from training.settings import Economics, TrainingSettings
from training.uplift_playbook import uplift_playbook
from training.winner import WinnerChoice, pick_winner

log = logging.getLogger(__name__)

TEST_SHARE = 0.2
VALIDATION_SHARE = 0.2
EVALUATION_ARTIFACT = "evaluation/test.parquet"
TARGET_COLUMN_IN_ARTIFACT = "__churn__"
# `--uplift-from` reads the experiment's decisions of this many days back, and gives a verdict
# on an action with this many outcomes in each group.
UPLIFT_DAYS = 90
UPLIFT_MIN_OUTCOMES = 100
MODEL_PACKAGES = ("mlflow", "catboost", "category-encoders", "scikit-learn", "pandas", "numpy")


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    y_train: np.ndarray
    y_valid: np.ndarray
    y_test: np.ndarray

    def prepared(self, spec: FeatureSpec) -> Split:
        """The same split as model features (`FeatureSpec.prepare`), each table prepared once."""
        train, valid, test = (spec.prepare(frame) for frame in (self.train, self.valid, self.test))
        return Split(train, valid, test, self.y_train, self.y_valid, self.y_test)


@dataclass(frozen=True)
class Scores:
    """A candidate's probabilities on the validation and test splits, computed once."""

    valid_raw: np.ndarray
    valid: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class CandidateResult:
    candidate: FittedCandidate
    threshold: float
    tiers: RiskTiers
    validation: Metrics
    test: Metrics
    scores: Scores
    calibration: CalibrationChoice | None = None
    run_id: str = ""


@dataclass(frozen=True)
class TrainingResult:
    parent_run_id: str
    model_run_id: str
    model_name: str
    version: str
    winner: str
    results: list[CandidateResult]
    winner_reason: str = ""


def split(table: LabelledTable, seed: int) -> Split:
    """Stratified train/validation/test split, the same for the same data and seed. Rows are
    split by position and each part taken once, with no copy of the rest in between."""
    y = table.target
    rest, test = train_test_split(
        np.arange(len(y)), test_size=TEST_SHARE, stratify=y, random_state=seed
    )
    train, valid = train_test_split(
        rest,
        test_size=VALIDATION_SHARE / (1 - TEST_SHARE),
        stratify=y[rest],
        random_state=seed,
    )
    rows = table.features.iloc
    return Split(rows[train], rows[valid], rows[test], y[train], y[valid], y[test])


def fit_candidates(
    spec: FeatureSpec,
    data: Split,
    seed: int,
    settings: TrainingSettings,
    tuned: dict[str, dict[str, Any]] | None = None,
) -> list[CandidateResult]:
    """Each candidate fitted on the training split (with `tuned` parameters, by name),
    calibrated and given its threshold on the validation split, and judged on the test split.
    `data` is prepared (`Split.prepared`)."""
    tuned = tuned or {}
    train, valid, test = data.train, data.valid, data.test
    fitted = []
    if "logistic_regression" in settings.candidates:
        with step("Fitting logistic_regression"):
            fitted.append(
                fit_logistic_regression(
                    spec, train, data.y_train, seed, tuned.get("logistic_regression")
                )
            )
    if "catboost" in settings.candidates:
        with step("Fitting catboost") as done:
            catboost = fit_catboost(
                spec, train, data.y_train, valid, data.y_valid, seed,
                settings.catboost_iterations, settings.catboost_threads, tuned.get("catboost"),
            )  # fmt: skip
            done(f"best iteration {catboost.params['best_iteration']}")
            fitted.append(catboost)
    base_rate = float(np.mean(data.y_train))
    results = []
    for raw in fitted:
        valid_raw = raw.raw_probability(valid)
        choice = choose_calibration(valid_raw, data.y_valid, seed)
        log.info(
            "%s: calibration %s (cross-fitted validation log-loss %s)", raw.name, choice.method,
            ", ".join(f"{method} {value:.4f}" for method, value in choice.log_loss.items()),
        )  # fmt: skip
        candidate = replace(raw, calibration=choice.calibration)
        scores = Scores(
            valid_raw,
            calibrated(choice.calibration, valid_raw),
            candidate.churn_probability(test),
        )
        threshold = choose_threshold(data.y_valid, scores.valid, settings.economics)
        results.append(
            CandidateResult(
                candidate=candidate,
                threshold=threshold,
                tiers=RiskTiers.from_threshold(threshold, base_rate),
                validation=evaluate(data.y_valid, scores.valid, threshold, settings.economics),
                test=evaluate(data.y_test, scores.test, threshold, settings.economics),
                scores=scores,
                calibration=choice,
            )
        )
    return results


def judge(results: list[CandidateResult], data: Split, economics: Economics) -> WinnerChoice:
    """The winner among the fitted candidates (training/winner.py), on the prepared split."""
    return pick_winner(
        {r.candidate.name: r for r in results},
        {r.candidate.name: r.scores.valid for r in results},
        data.y_valid,
        economics,
    )


def train(
    source: Source,
    target: str,
    id_column: str | None,
    seed: int,
    settings: TrainingSettings,
    categorical: tuple[str, ...] = (),
    numeric: tuple[str, ...] = (),
    campaign_results: Path | None = None,
    uplift_from: str | None = None,
    search_options: SearchOptions | None = None,
) -> TrainingResult:
    """`campaign_results`: a past campaign's customer id, action and accepted, whose measured
    acceptance rates replace the playbook's assumed ones; `uplift_from`: an experiment in the
    history whose measured uplift does, over the campaign's; `search_options`: search each
    candidate's parameters first (training/search.py)."""
    with step(f"Reading {source.describe()}") as done:
        table = validate(read_table(source), target, id_column, settings.min_rows)
        done(f"{len(table.target):,} rows, {table.features.shape[1]} columns")
    with step("Inferring each column's kind") as done:
        spec = infer_spec(table.features, id_column, target, categorical, numeric)
        done(f"{len(spec.numeric)} numeric, {len(spec.categorical)} categorical")
    log.info("Label mapping for %r: %s", target, table.label_mapping)
    # Checked before any model is fitted, so a playbook naming absent columns fails at once.
    playbook = choose_playbook(spec, settings.playbook, settings.playbook_missing)
    campaign = None
    if campaign_results is not None:
        campaign = read_campaign(campaign_results, id_column or "customer_id")
        for bad in campaign.bad_rows:
            log.warning("Campaign results, row %d skipped: %s", bad.row, bad.message)
        playbook = measured_playbook(playbook, campaign)
    if uplift_from is not None:
        playbook = uplift_playbook(playbook, _measured(uplift_from, settings))
    rows, label_mapping = len(table.target), table.label_mapping
    with step("Splitting and preparing the features") as done:
        raw = split(table, seed)
        data, raw_test = raw.prepared(spec), raw.test
        sizes = (f"{len(y):,}" for y in (data.y_train, data.y_valid, data.y_test))
        done(f"train, validation, test: {', '.join(sizes)} rows")
    # From here on only the prepared split is read; the raw one and the whole table would
    # double what training holds.
    del table, raw
    if search_options is not None:
        search_options.check(data.y_train)

    client = connect(settings)
    experiment_id = _ensure_experiment(client, settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name="train") as parent:
        mlflow.log_params(
            {
                "data": source.describe(),
                "target": target,
                "id_column": id_column,
                "rows": rows,
                "seed": seed,
                "label_mapping": label_mapping,
                "tuned": search_options is not None,
                **{f"economics.{k}": v for k, v in settings.economics.model_dump().items()},
            }
        )
        tuned: dict[str, dict[str, Any]] = {}
        if search_options is not None:
            with step("Searching"):
                tuned = search(
                    settings.candidates, spec, data.train, data.y_train, seed,
                    settings, search_options, experiment_id,
                )  # fmt: skip
        results = fit_candidates(spec, data, seed, settings, tuned)
        choice = judge(results, data, settings.economics)
        log.info("Winner: %s, by %s", choice.name, choice.reason)
        mlflow.log_dict(spec.to_dict(), "feature_spec.json")
        mlflow.log_dict(label_mapping, "label_mapping.json")
        with step("Evaluating and logging the candidates"):
            logged = [_log_candidate(result, spec, data, experiment_id) for result in results]
        winner = next(r for r in logged if r.candidate.name == choice.name)
        mlflow.set_tags({"winner": choice.name, "winner_reason": choice.reason})
        mlflow.log_metrics({f"winner.test.{k}": v for k, v in winner.test.as_dict().items()})

    version = _register(winner, spec, data, raw_test, seed, settings, playbook, campaign)
    return TrainingResult(
        parent_run_id=parent.info.run_id,
        model_run_id=winner.run_id,
        model_name=settings.model_name,
        version=version,
        winner=winner.candidate.name,
        results=logged,
        winner_reason=choice.reason,
    )


def _measured(experiment: str, settings: TrainingSettings) -> ExperimentResult:
    """The experiment's uplift over the last UPLIFT_DAYS, before any model is fitted."""
    until = datetime.now(UTC)
    return measure(
        History.open(settings.history).engine, experiment, until - timedelta(days=UPLIFT_DAYS),
        until, settings.history.outcome_window_days, {}, UPLIFT_MIN_OUTCOMES,
    )  # fmt: skip


def _ensure_experiment(client: MlflowClient, settings: TrainingSettings) -> str:
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    artifact_location = None
    if settings.uses_database_store:
        # A tracking server picks its own artifact store; a bare database needs one from us.
        artifact_location = settings.artifact_root.resolve().as_uri()
    return str(client.create_experiment(settings.experiment, artifact_location=artifact_location))


def _log_candidate(
    result: CandidateResult, spec: FeatureSpec, data: Split, experiment_id: str
) -> CandidateResult:
    name = result.candidate.name
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True) as run:
        mlflow.log_params({f"{name}.{k}": v for k, v in result.candidate.params.items()})
        mlflow.log_params({"candidate": name, "threshold": result.threshold})
        mlflow.log_metrics({f"test.{k}": v for k, v in result.test.as_dict().items()})
        mlflow.log_metrics({f"valid.{k}": v for k, v in result.validation.as_dict().items()})
        if result.calibration is not None:
            mlflow.log_param("calibration", result.calibration.method)
            mlflow.log_metrics(result.calibration.metrics())
        scores = result.scores.test
        figures = {
            "plots/roc.png": plots.roc_figure(data.y_test, scores, name),
            "plots/precision_recall.png": plots.precision_recall_figure(data.y_test, scores, name),
            "plots/calibration.png": plots.calibration_figure(data.y_test, scores, name),
            "plots/reliability_validation.png": plots.reliability_figure(
                data.y_valid, result.scores.valid_raw, result.scores.valid, name
            ),
            "plots/lift_gain.png": plots.lift_gain_figure(data.y_test, scores, name),
            "plots/feature_importance.png": plots.importance_figure(
                result.candidate.feature_importance(spec, data.valid), name
            ),
        }
        for path, figure in figures.items():
            mlflow.log_figure(figure, path)
            plt.close(figure)
    return replace(result, run_id=run.info.run_id)


def fit_insight(
    winner: CandidateResult,
    spec: FeatureSpec,
    data: Split,
    seed: int,
    settings: TrainingSettings,
    playbook: Playbook,
) -> Insight:
    """Segments, deciles and customer value from the training split only (`data` is
    prepared), and the playbook with its segment traits resolved into this model's segment ids.

    The explainer's look-up table is the exception: every known customer fills it, so that fewer
    new customers land in a leaf it lacks (its values are CatBoost's own either way).
    """
    train = data.train
    value = CustomerValue(settings.customer_value_formula, settings.economics.customer_value)
    value.check(train)
    with step("Segments"):
        segments = fit_segments(spec, train, data.y_train, seed, settings.segments_k)
    traits_of = {p.segment_id: {t.feature for t in p.traits} for p in segments.profiles}
    with step("Deciles and the reference profile"):
        scores = winner.candidate.churn_probability(train)
        deciles = Deciles.from_scores(scores)
        reference = ReferenceProfile.fit(spec, train, deciles, scores)
    with step("Reasons"):
        explainer = explainer_for(
            winner.candidate.estimator, spec, (data.train, data.valid, data.test)
        )
    return Insight(
        deciles=deciles,
        segments=segments,
        playbook=playbook.for_segments(traits_of),
        value=value,
        explainer=explainer,
        reference=reference,
    )


def explainer_for(
    estimator: object, spec: FeatureSpec, known: tuple[pd.DataFrame, ...]
) -> Explainer:
    """What explains `estimator`; the `known` customers (prepared features) fill CatBoost's
    SHAP table, and are joined into one table only for it."""
    if isinstance(estimator, LinearScorer):
        return estimator
    if isinstance(estimator, CatBoostClassifier):
        return CatBoostShap.fit(estimator, spec, pd.concat(known))
    raise TypeError(f"Cannot explain a {type(estimator).__name__}")


def _register(
    winner: CandidateResult,
    spec: FeatureSpec,
    data: Split,
    raw_test: pd.DataFrame,
    seed: int,
    settings: TrainingSettings,
    playbook: Playbook,
    campaign: CampaignResults | None,
) -> str:
    """`data` is the prepared split; `raw_test` is its test table as read, logged for
    `promote` to score both versions on."""
    insight = fit_insight(winner, spec, data, seed, settings, playbook)
    model = ChurnModel(
        spec=spec,
        estimator=winner.candidate.estimator,
        candidate=winner.candidate.name,
        threshold=winner.threshold,
        tiers=winner.tiers,
        insight=insight,
        calibration=winner.candidate.calibration,
    )
    example = spec.prepare(pd.DataFrame([spec.example]))  # never a real customer's row
    signature = infer_signature(example, model.churn_probability(example))
    with (
        step("Registering"),
        mlflow.start_run(run_id=winner.run_id),
        tempfile.TemporaryDirectory() as folder,
    ):
        description = Path(folder) / MODEL_DESCRIPTION_FILE
        description.write_text(json.dumps(model.describe(), indent=2))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            artifacts={"description": str(description)},
            signature=signature,
            input_example=example,
            code_paths=[str(Path(churn.__file__).parent)],
            pip_requirements=[f"{p}=={package_version(p)}" for p in MODEL_PACKAGES],
            registered_model_name=settings.model_name,
            metadata={"candidate": winner.candidate.name, "threshold": winner.threshold},
        )
        mlflow.log_dict({"segments": model.insight.segments.describe()}, "insight/segments.json")
        mlflow.log_dict(model.insight.playbook.source, "insight/playbook.yaml")
        mlflow.log_dict(model.insight.playbook.describe(), "insight/playbook_as_used.json")
        if model.insight.reference is not None:
            mlflow.log_dict(model.insight.reference.to_dict(), "monitoring/reference.json")
        segments = model.insight.segments
        mlflow.log_metrics({f"segments.silhouette.k{k}": s for k, s in segments.silhouette.items()})
        if campaign is not None:
            mlflow.log_metrics(_acceptance_metrics(campaign))
        mlflow.log_params(
            {
                "playbook": model.insight.playbook.name,
                "playbook_version": model.insight.playbook.version,
                "playbook_dropped_rules": "; ".join(model.insight.playbook.dropped_rules) or "none",
                "segments": len(segments.profiles),
                "customer_value": settings.customer_value_formula
                or settings.economics.customer_value,
            }
        )
        evaluation = raw_test.assign(**{TARGET_COLUMN_IN_ARTIFACT: data.y_test})
        path = Path(folder) / Path(EVALUATION_ARTIFACT).name
        evaluation.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), Path(EVALUATION_ARTIFACT).parent.as_posix())
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    tags = {f"test.{k}": f"{v:.6g}" for k, v in winner.test.as_dict().items()}
    tags |= {"candidate": winner.candidate.name, "threshold": f"{winner.threshold:.6g}"}
    tags |= {"calibration": winner.calibration.method if winner.calibration else "none"}
    tags |= {"playbook": f"{playbook.name} {playbook.version}"}
    if playbook.dropped_rules:
        tags["playbook.dropped_rules"] = "; ".join(playbook.dropped_rules)
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, version, key, value)
    return version


def _acceptance_metrics(campaign: CampaignResults) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, estimate in campaign.acceptance.items():
        low, high = estimate.interval
        metrics |= {
            f"acceptance.{name}.rate": estimate.rate,
            f"acceptance.{name}.low": low,
            f"acceptance.{name}.high": high,
            f"acceptance.{name}.offered": float(estimate.offered),
        }
    return metrics
