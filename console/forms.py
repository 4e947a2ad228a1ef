"""The score-a-customer form, generated from the served model's feature spec and reference:
numeric inputs with their training range, selects with the levels the model knows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from churn.features import MISSING_CATEGORY, FeatureSpec
from churn.reference import ReferenceProfile


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "numeric" or "categorical"
    value: str
    levels: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    error: str | None = None

    @property
    def hint(self) -> str:
        if self.kind == "numeric" and self.low is not None and self.high is not None:
            return f"{self.low:,.6g} to {self.high:,.6g} in training"
        return ""


def form_fields(
    spec: FeatureSpec,
    reference: ReferenceProfile | None,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[Field]:
    """One field per feature, with the id column first; filled with `values`, or with the
    model's typical customer."""
    ranges = {
        bins.feature: (bins.low, bins.high)
        for bins in (reference.features if reference else ())
        if bins.kind == "numeric"
    }
    errors = errors or {}
    fields = []
    if spec.id_column:
        shown = (values or {}).get(spec.id_column, "")
        fields.append(Field(spec.id_column, "id", shown, error=errors.get(spec.id_column)))
    for feature in spec.features:
        typical = spec.example.get(feature.name)
        shown = (values or {}).get(feature.name, "" if typical is None else _shown(typical))
        low, high = ranges.get(feature.name, (None, None))
        levels = tuple(level for level in feature.levels if level != MISSING_CATEGORY)
        fields.append(
            Field(feature.name, feature.kind, shown, levels, low, high, errors.get(feature.name))
        )
    return fields


def parse_customer(
    model: type[BaseModel], spec: FeatureSpec, form: Mapping[str, str]
) -> tuple[BaseModel | None, dict[str, str]]:
    """The validated customer, or None and a message per field at fault."""
    numeric = set(spec.numeric)
    raw: dict[str, Any] = {}
    if spec.id_column:
        raw[spec.id_column] = form.get(spec.id_column, "").strip() or None
    for name in spec.names:
        text = form.get(name, "").strip()
        # A blank number is missing, as in the training table; a level is text either way.
        raw[name] = None if name in numeric and text == "" else text
    try:
        return model.model_validate(raw), {}
    except ValidationError as error:
        messages: dict[str, str] = {}
        for problem in error.errors(include_url=False):
            field = str(problem["loc"][0]) if problem["loc"] else "form"
            messages.setdefault(_field_name(model, field), problem["msg"])
        return None, messages


def _field_name(model: type[BaseModel], field: str) -> str:
    """The form field (the column's own name) of a request-model field."""
    for name, info in model.model_fields.items():
        if field in (name, info.alias):
            return info.alias or name
    return field


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
