"""MLflow at the edge: connecting, finding versions, and moving the `champion` alias."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from churn.errors import UserError
from registry.settings import RegistrySettings

log = logging.getLogger(__name__)


def connect(settings: RegistrySettings) -> MlflowClient:
    """Point MLflow at the configured store; the embedded SQLite store is created on first use."""
    if settings.tracking_uri.startswith("sqlite:///"):
        Path(settings.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(settings.tracking_uri, settings.tracking_uri)


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
    # MLflow keeps no time for an alias move; a service following the alias measures how long
    # the swap took from this tag (serving/model/follow.py).
    client.set_registered_model_tag(model_name, moved_tag(alias), moved_value(version))
    log.info("Alias %s of %s now points at version %s.", alias, model_name, version)


def moved_tag(alias: str) -> str:
    return f"churn.alias.{alias}.moved"


def moved_value(version: str, at: float | None = None) -> str:
    return json.dumps({"version": str(version), "at": time.time() if at is None else at})


def moved_at(tags: dict[str, str], alias: str, version: str) -> float | None:
    """When the alias was moved to `version`, if it was moved by this product's promote."""
    try:
        moved = json.loads(tags.get(moved_tag(alias), ""))
    except ValueError:
        return None
    if not isinstance(moved, dict) or str(moved.get("version")) != str(version):
        return None
    at = moved.get("at")
    return float(at) if isinstance(at, int | float) else None


def model_description(model_name: str, version: str) -> dict[str, Any]:
    """What `ChurnModel.describe` wrote into a registered version (its playbook, tiers, spec),
    read without loading the model."""
    from churn.model import MODEL_DESCRIPTION_FILE  # the runtime, only when asked for

    with tempfile.TemporaryDirectory() as folder:
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{model_name}/{version}/artifacts/{MODEL_DESCRIPTION_FILE}",
                dst_path=folder,
            )
        except (MlflowException, OSError) as error:
            raise UserError(
                f"{model_name} version {version} has no {MODEL_DESCRIPTION_FILE}: "
                f"{str(error).splitlines()[0]}"
            ) from None
        description: dict[str, Any] = json.loads(Path(path).read_text())
    return description
