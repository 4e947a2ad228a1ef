"""Import the registry's champion into the BentoML model store (the first step of `make bento`)."""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

import bentoml
from mlflow.tracking import MlflowClient

from churn.errors import UserError
from churn.features import FeatureSpec
from churn.model import MODEL_DESCRIPTION_FILE
from registry.client import champion, connect
from serving.settings import ServingSettings

log = logging.getLogger(__name__)


def champion_labels(settings: ServingSettings) -> dict[str, str]:
    version = champion(connect(settings), settings.model_name, settings.model_alias)
    if version is None:
        raise UserError(
            f"No {settings.model_name}@{settings.model_alias} in the registry at "
            f"{settings.tracking_uri}. Train and promote a model first: "
            "`python -m training train ...` then `python -m training promote --auto`."
        )
    return {
        "registered_model": settings.model_name,
        "alias": settings.model_alias,
        "version": str(version.version),
        "run_id": str(version.run_id),
    }


def champion_version(settings: ServingSettings) -> str | None:
    """The version the champion alias points at now, or None; for the alert on a served version
    that is not the champion."""
    version = champion(_client(settings.tracking_uri), settings.model_name, settings.model_alias)
    return None if version is None else str(version.version)


@cache
def _client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri, tracking_uri)


def import_champion(settings: ServingSettings) -> bentoml.Model:
    """Import `models:/<name>@<alias>` unless the newest import already is that version."""
    labels = champion_labels(settings)
    try:
        imported = bentoml.models.list(settings.model_name)
    except bentoml.exceptions.NotFound:
        imported = []
    existing = sorted(imported, key=lambda m: m.info.creation_time)
    if existing and existing[-1].info.labels == labels:
        log.info(
            "%s is already the newest import of version %s.", existing[-1].tag, labels["version"]
        )
        return existing[-1]
    uri = f"models:/{settings.model_name}/{labels['version']}"
    model: bentoml.Model = bentoml.mlflow.import_model(
        settings.model_name, uri, labels=labels, metadata=_metadata(settings, labels)
    )
    log.info("Imported %s as %s.", uri, model.tag)
    return model


def _metadata(settings: ServingSettings, labels: dict[str, str]) -> dict[str, Any]:
    """The version's tags (test metrics among them), so the bento can report them offline."""
    version = connect(settings).get_model_version(settings.model_name, labels["version"])
    return {"version_tags": json.dumps(dict(version.tags), sort_keys=True)}


def model_description(model: bentoml.Model) -> dict[str, Any]:
    """The ChurnModel's own description (spec, threshold, tiers), read without unpickling it."""
    path = Path(model.path_of("mlflow_model")) / "artifacts" / MODEL_DESCRIPTION_FILE
    return dict(json.loads(path.read_text()))


def example_customer(model: bentoml.Model) -> dict[str, Any]:
    """One real customer record from the training data, as the request schema expects it."""
    return example_of(model_description(model))


def example_of(description: dict[str, Any]) -> dict[str, Any]:
    """The example customer of a ChurnModel's description, with an id if the model has one."""
    spec = FeatureSpec.from_dict(description["feature_spec"])
    example = dict(spec.example)
    if spec.id_column is not None:
        example = {spec.id_column: "0001-EXAMPLE", **example}
    return example
