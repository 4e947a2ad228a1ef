"""MLflow at the edge: where runs go, registering versions, and the `champion` alias."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from training.errors import UserError
from training.settings import TrainingSettings

log = logging.getLogger(__name__)


def connect(settings: TrainingSettings) -> MlflowClient:
    """Point MLflow at the configured store; the embedded SQLite store is created on first use."""
    if settings.tracking_uri.startswith("sqlite:///"):
        Path(settings.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(settings.tracking_uri, settings.tracking_uri)


def ensure_experiment(client: MlflowClient, settings: TrainingSettings) -> str:
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    artifact_location = None
    if settings.uses_database_store:
        # A tracking server picks its own artifact store; a bare database needs one from us.
        artifact_location = settings.artifact_root.resolve().as_uri()
    return str(client.create_experiment(settings.experiment, artifact_location=artifact_location))


def champion(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def latest_version(client: MlflowClient, model_name: str) -> ModelVersion:
    versions = client.search_model_versions(f"name = '{model_name}'")
    if not versions:
        raise UserError(
            f"No versions of model {model_name!r} are registered yet; "
            "run `python -m training train`."
        )
    return max(versions, key=lambda version: int(version.version))


def get_version(client: MlflowClient, model_name: str, version: str) -> ModelVersion:
    try:
        return client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise UserError(f"Model {model_name!r} has no version {version}.") from exc


def set_alias(client: MlflowClient, model_name: str, alias: str, version: str) -> None:
    client.set_registered_model_alias(model_name, alias, version)
    log.info("Alias %s of %s now points at version %s.", alias, model_name, version)
