"""`training drift`: the drift of a registered version over a window of its recorded rows."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from churn.errors import UserError
from churn.reference import ReferenceProfile
from history.store import History
from monitoring.drift import DriftReport
from monitoring.recorded_drift import recorded_drift

REFERENCE_ARTIFACT = "monitoring/reference.json"


def reference_of(client: MlflowClient, model_name: str, version: str) -> ReferenceProfile:
    """The reference profile logged with `version` when it was trained."""
    try:
        run_id = client.get_model_version(model_name, version).run_id
        with tempfile.TemporaryDirectory() as folder:
            path = client.download_artifacts(str(run_id), REFERENCE_ARTIFACT, folder)
            return ReferenceProfile.from_dict(json.loads(Path(path).read_text()))
    except (MlflowException, OSError) as error:
        raise UserError(
            f"{model_name} version {version} has no drift reference ({REFERENCE_ARTIFACT}): "
            f"{str(error).splitlines()[0]}. Versions trained before drift existed have none."
        ) from None


def measure_drift(
    history: History,
    reference: ReferenceProfile,
    version: str,
    since: datetime,
    until: datetime,
    min_rows: int,
) -> DriftReport:
    if since >= until:
        raise UserError(
            f"--since ({since.isoformat()}) is not before --until ({until.isoformat()})."
        )
    return recorded_drift(history.engine, reference, version, since, until, min_rows)
