"""Request and response models built from the served model's own MLflow signature.

A model trained on any customer table is served without code changes: its signature names the
feature columns and their types, and `/docs` shows exactly those fields.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any, Literal

from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, DataType
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, FiniteFloat, create_model

from churn.columns import Columns, object_array
from churn.explain import Reason
from churn.features import FeatureSpec

NUMERIC_TYPES = {DataType.double, DataType.float, DataType.integer, DataType.long}


class Prediction(BaseModel):
    customer_id: str | None = Field(default=None, description="Echoed from the request, if sent.")
    churn_probability: float = Field(ge=0.0, le=1.0)
    churn: bool = Field(description="True when the probability reaches the model's threshold.")
    risk_tier: Literal["low", "medium", "high"]
    decile: int = Field(ge=1, le=10, description="1 = the riskiest 10% of the training population.")
    segment_id: int
    segment: str = Field(description="The behavioural segment, named from its profile.")
    action: str = Field(description='The retention action worth most, or "no action".')
    expected_value: float = Field(description="p(churn) x customer value x acceptance - cost.")
    model_version: str
    role: Literal["champion", "challenger"] = Field(
        default="champion", description="Which version answered: the challenger in a canary."
    )
    experiment: str | None = Field(
        default=None, description="The retention experiment the customer is in, if any."
    )
    treatment: Literal["treated", "control"] | None = Field(
        default=None,
        description='The experiment\'s group: "control" customers are held back from the action.',
    )
    held_back_action: str | None = Field(
        default=None, description="For a control customer: the action it would have had."
    )


class Explanation(BaseModel):
    customer_id: str | None = None
    churn_probability: float
    reasons: list[Reason] = Field(description="The 3 features that move this customer's risk most.")
    model_version: str


def customer_model(
    signature: ModelSignature, id_column: str | None, example: dict[str, Any]
) -> type[BaseModel]:
    """One pydantic field per signature column; numerics must be finite and accept null as
    missing."""
    fields: dict[str, Any] = {}
    for index, column in enumerate(_columns(signature)):
        python_type: Any = (
            Annotated[FiniteFloat | None, BeforeValidator(_blank_is_missing)]
            if column.type in NUMERIC_TYPES
            else str
        )
        name = str(column.name)
        fields[_field_name(name, index)] = (
            python_type,
            Field(alias=name, examples=[example.get(name)]),
        )
    if id_column is not None:
        fields["customer_id"] = (
            str | int | None,
            Field(default=None, alias=id_column, description="Echoed back in the prediction."),
        )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Customer",
        __config__=ConfigDict(populate_by_name=True, extra="ignore"),
        **fields,
    )


def request_model(
    customer: type[BaseModel], max_customers: int, example: dict[str, Any]
) -> type[BaseModel]:
    return create_model(  # type: ignore[call-overload, no-any-return]
        "PredictRequest",
        customers=(
            list[customer],  # type: ignore[valid-type]
            Field(
                min_length=1,
                max_length=max_customers,
                description=f"1 to {max_customers} customers, scored in order.",
                examples=[[example]],
            ),
        ),
    )


def customer_columns(customers: Sequence[BaseModel]) -> Columns:
    """Validated customers as columns of their values, under the model's own column names.

    One attribute read per value, which is cheaper than `model_dump` per customer and then
    regrouping the dicts.
    """
    fields = type(customers[0]).model_fields if customers else {}
    arrays = {
        info.alias or name: object_array([getattr(customer, name) for customer in customers])
        for name, info in fields.items()
    }
    return Columns(arrays, len(customers))


def customer_features(spec: FeatureSpec, customers: Sequence[BaseModel]) -> Columns:
    """`spec.prepare_columns(customer_columns(customers))` in one pass: each feature's
    values are read from the customers and prepared, with no column of raw values between."""
    field_of = _field_names(type(customers[0])) if customers else {}
    if customers:
        spec.require(field_of)
    return spec.prepare_values(
        lambda column: [getattr(customer, field_of[column]) for customer in customers],
        len(customers),
    )


@cache
def _field_names(customer: type[BaseModel]) -> dict[str, str]:
    """Each column's field in `customer`."""
    return {info.alias or name: name for name, info in customer.model_fields.items()}


def _columns(signature: ModelSignature) -> list[ColSpec]:
    inputs = signature.inputs
    if inputs is None or not inputs.has_input_names():
        raise ValueError("The served model's signature has no named input columns.")
    return [column for column in inputs.inputs if isinstance(column, ColSpec)]


def _blank_is_missing(value: Any) -> Any:
    """A blank string in a numeric field is a missing value, as in the training table."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _field_name(column: str | None, index: int) -> str:
    name = re.sub(r"\W", "_", str(column))
    if (
        not name.isidentifier()
        or keyword.iskeyword(name)
        or name.startswith(("_", "model_"))
        or name == "customer_id"
    ):
        name = f"feature_{index}"
    return name
