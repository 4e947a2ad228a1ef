"""Diagnostic figures logged with every candidate run."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve


def roc_figure(y_true: np.ndarray, scores: np.ndarray, title: str) -> Figure:
    fpr, tpr, _ = roc_curve(y_true, scores)
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot(fpr, tpr, label=title)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    axis.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    axis.legend(loc="lower right")
    return figure


def precision_recall_figure(y_true: np.ndarray, scores: np.ndarray, title: str) -> Figure:
    precision, recall, _ = precision_recall_curve(y_true, scores)
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot(recall, precision, label=title)
    axis.axhline(float(np.mean(y_true)), linestyle="--", color="grey", label="base rate")
    axis.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve")
    axis.legend(loc="upper right")
    return figure


def calibration_figure(y_true: np.ndarray, scores: np.ndarray, title: str) -> Figure:
    observed, predicted = calibration_curve(y_true, scores, n_bins=10, strategy="quantile")
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot(predicted, observed, marker="o", label=title)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axis.set(
        xlabel="Predicted churn probability", ylabel="Observed churn rate", title="Calibration"
    )
    axis.legend(loc="upper left")
    return figure


def reliability_figure(
    y_true: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, title: str
) -> Figure:
    """The validation split's reliability before and after calibration."""
    figure, axis = plt.subplots(figsize=(5, 5))
    for scores, label in ((raw, "as estimated"), (calibrated, "calibrated")):
        observed, predicted = calibration_curve(y_true, scores, n_bins=10, strategy="quantile")
        axis.plot(predicted, observed, marker="o", label=label)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axis.set(
        xlabel="Predicted churn probability",
        ylabel="Observed churn rate",
        title=f"Reliability on validation: {title}",
    )
    axis.legend(loc="upper left")
    return figure


def lift_gain_figure(y_true: np.ndarray, scores: np.ndarray, title: str) -> Figure:
    order = np.argsort(-scores, kind="stable")
    captured = np.cumsum(y_true[order]) / max(1, int(np.sum(y_true)))
    share = np.arange(1, len(scores) + 1) / len(scores)
    lift = captured / share
    figure, (gain_axis, lift_axis) = plt.subplots(1, 2, figsize=(10, 5))
    gain_axis.plot(share, captured, label=title)
    gain_axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    gain_axis.set(
        xlabel="Share of customers contacted",
        ylabel="Share of churners reached",
        title="Cumulative gain",
    )
    gain_axis.legend(loc="lower right")
    lift_axis.plot(share, lift, label=title)
    lift_axis.axhline(1.0, linestyle="--", color="grey")
    lift_axis.set(xlabel="Share of customers contacted", ylabel="Lift", title="Lift")
    return figure


def importance_figure(importance: pd.Series, title: str) -> Figure:
    figure, axis = plt.subplots(figsize=(6, max(3.0, 0.3 * len(importance))))
    axis.barh(importance.index.astype(str), importance.to_numpy())
    axis.set(xlabel="Importance", title=f"Feature importance: {title}")
    figure.tight_layout()
    return figure


def search_history_figure(
    trials: np.ndarray, values: np.ndarray, objective: str, lower_is_better: bool, title: str
) -> Figure:
    """Each completed trial's cross-validated value, and the best so far after it."""
    best = np.minimum.accumulate(values) if lower_is_better else np.maximum.accumulate(values)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.scatter(trials, values, s=12, alpha=0.6, label="trial")
    axis.step(trials, best, where="post", color="black", label="best so far")
    axis.set(
        xlabel="Trial", ylabel=f"Cross-validated {objective}", title=f"Search history: {title}"
    )
    axis.legend(loc="upper right" if lower_is_better else "lower right")
    return figure
