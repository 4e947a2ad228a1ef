"""Recording a scored file in the prediction history, chunk by chunk, as it is scored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from churn.errors import UserError
from history.records import ScoredBatch, Source, rows_of
from history.sinks import OffsetMovedError, StreamOffset, sink_for
from history.store import History
from registry.client import champion, connect
from registry.settings import RegistrySettings

REGISTERED = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>.+))")
PREDICTION_KEYS = (
    "churn_probability", "churn", "risk_tier", "decile", "segment", "action", "expected_value",
)  # fmt: skip
EXPERIMENT_KEYS = ("experiment", "treatment", "held_back_action")


def registered_version(uri: str, settings: RegistrySettings) -> tuple[str, str]:
    """The registered model name and version a models:/ URI points at; UserError otherwise."""
    match = REGISTERED.fullmatch(uri)
    if match is None:
        raise UserError(
            f"--record needs a registered model (models:/<name>/<version> or models:/<name>@"
            f"<alias>), or --model-name and --model-version; {uri!r} is neither."
        )
    if match["version"]:
        return match["name"], match["version"]
    version = champion(connect(settings), match["name"], match["alias"])
    if version is None:
        raise UserError(f"{uri}: the alias {match['alias']!r} points at no version.")
    return match["name"], str(version.version)


class FileRecorder:
    """Writes each scored chunk's good rows to the history; bad rows have nothing to record."""

    def __init__(
        self,
        history: History,
        source: Source,
        model_name: str,
        model_version: str,
        features: list[str],
        id_column: str | None,
        request_id: str | None = None,
    ) -> None:
        self.history = history
        self.sink = sink_for(history.engine)
        self.source = source
        self.model_name = model_name
        self.model_version = model_version
        self.features = features
        self.id_column = id_column
        self.request_id = request_id
        self.recorded = 0
        self._random = np.random.default_rng()

    def __call__(self, scored: pd.DataFrame, offsets: Sequence[StreamOffset] = ()) -> None:
        """Record the good rows of `scored`, moving `offsets` in the same transaction; a chunk
        whose offsets moved already (OffsetMovedError) was recorded before."""
        good = scored[scored["error"].isna()]
        if good.empty and not offsets:
            return
        columns = good[list(PREDICTION_KEYS)].astype(object)
        predictions = [dict(zip(PREDICTION_KEYS, values, strict=True)) for values in columns.values]
        ids = good[self.id_column] if self.id_column in good.columns else None
        for row, prediction in enumerate(predictions):
            prediction["customer_id"] = None if ids is None else str(ids.iloc[row])
            prediction["model_version"] = self.model_version
            prediction["churn"] = bool(prediction["churn"])
            prediction["decile"] = int(prediction["decile"])
        for key in EXPERIMENT_KEYS:
            if key in good.columns:
                for prediction, value in zip(predictions, good[key].tolist(), strict=True):
                    prediction[key] = None if pd.isna(value) else str(value)
        sampled = self._random.random(len(good)) < self.history.settings.feature_sample
        features = good[self.features]
        inputs: list[Any] = [
            features.iloc[row].to_dict() if keep else None for row, keep in enumerate(sampled)
        ]
        reasons = None
        if "top_reasons" in good.columns:
            reasons = [
                text.split("; ") if isinstance(text, str) and text else None
                for text in good["top_reasons"]
            ]
        values = good["customer_value"].tolist() if "customer_value" in good.columns else None
        batch = ScoredBatch(
            datetime.now(UTC),
            self.source,
            self.model_name,
            predictions,
            inputs,
            request_ids=[self.request_id] * len(good) if self.request_id else None,
            reasons=reasons,
            customer_values=values,
        )
        # The inputs were sampled above; keep each one given.
        rows = rows_of(batch, self.history.ids, feature_sample=1.0)
        try:
            self.sink.write(rows, offsets=offsets)
        except OffsetMovedError:
            raise
        except Exception as error:
            raise UserError(
                f"Recording to the prediction history (CHURN_HISTORY_URL) failed after "
                f"{self.recorded:,} rows: {str(error).splitlines()[0]}"
            ) from error
        self.recorded += len(rows)

    def close(self) -> None:
        self.sink.close()
