"""The registered version a job scores with: resolved once on the driver, packed for executors."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from churn.errors import UserError
from registry.settings import RegistrySettings


@dataclass(frozen=True)
class ModelArchive:
    name: str
    version: str
    path: Path  # a .zip of the model's folder (MLmodel at its root)
    features: tuple[str, ...]  # the columns it needs
    id_column: str | None


def pack_model(uri: str, settings: RegistrySettings, folder: Path, job_id: str) -> ModelArchive:
    """Resolve `uri` (models:/<name>@<alias> or models:/<name>/<version>) to one version, and
    zip that version's files, so every executor scores with the same version whatever the alias
    does while the job runs."""
    import mlflow

    from registry.client import connect
    from scoring.record import registered_version

    name, version = registered_version(uri, settings)
    connect(settings)
    # Spark keeps a file added under one name for the session: the job's id makes it new.
    local = folder / f"{name}-v{version}-{job_id}"
    try:
        downloaded = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}",
            dst_path=str(local),
            tracking_uri=settings.tracking_uri,
        )
    except mlflow.exceptions.MlflowException as error:
        raise UserError(
            f"Cannot download models:/{name}/{version}: {str(error).splitlines()[0]}"
        ) from None
    # Loaded here once, so a version that cannot load fails the job before any task runs.
    spec = mlflow.pyfunc.load_model(downloaded).unwrap_python_model().spec
    archive = shutil.make_archive(str(local), "zip", root_dir=downloaded)
    shutil.rmtree(local)
    return ModelArchive(name, version, Path(archive), tuple(spec.names), spec.id_column)
