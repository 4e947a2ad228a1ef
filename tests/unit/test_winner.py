from dataclasses import dataclass, replace

import numpy as np

from training.evaluate import Metrics, choose_threshold, evaluate
from training.settings import Economics
from training.winner import pick_winner

ECONOMICS = Economics()


@dataclass(frozen=True)
class Candidate:
    threshold: float
    validation: Metrics


def judged(
    y: np.ndarray, scores: np.ndarray, log_loss: float, threshold: float | None = None
) -> Candidate:
    """A candidate with these validation scores, its log-loss set to tell which one it favours;
    its threshold the one that maximises profit unless given."""
    if threshold is None:
        threshold = choose_threshold(y, scores, ECONOMICS)
    return Candidate(
        threshold, replace(evaluate(y, scores, threshold, ECONOMICS), log_loss=log_loss)
    )


def customers(count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = (rng.random(count) < 0.27).astype(np.int64)
    informative = np.clip(0.27 + 0.5 * (y - 0.27) + rng.normal(0, 0.15, count), 0.01, 0.99)
    return y, informative


def test_a_clear_profit_lead_wins_whatever_the_log_loss() -> None:
    y, informative = customers(2000)
    noise = np.random.default_rng(8).random(len(y))
    candidates = {"sharp": judged(y, informative, 0.6), "blind": judged(y, noise, 0.3)}
    choice = pick_winner(candidates, {"sharp": informative, "blind": noise}, y, ECONOMICS)
    assert choice.name == "sharp"
    assert choice.leads[0].over == "blind" and choice.leads[0].clear
    assert choice.reason.startswith("best validation profit")


def test_a_lead_within_noise_goes_to_the_lower_log_loss() -> None:
    y, informative = customers(2000)
    best = judged(y, informative, 0.45)
    # The same scores with the five least risky of the targeted customers left out: the
    # threshold that maximises profit stays ahead, by a hair.
    targeted = np.sort(informative[informative >= best.threshold])
    fewer = judged(y, informative, 0.40, threshold=float(targeted[5]))
    choice = pick_winner(
        {"best": best, "fewer": fewer}, {"best": informative, "fewer": informative}, y, ECONOMICS
    )
    assert choice.leader == "best"
    assert 0 < choice.leads[0].difference < choice.leads[0].high
    assert not choice.leads[0].clear
    assert choice.name == "fewer"
    assert "within noise" in choice.reason


def test_with_one_candidate_it_wins() -> None:
    y, informative = customers(500)
    choice = pick_winner({"only": judged(y, informative, 0.5)}, {"only": informative}, y, ECONOMICS)
    assert (choice.name, choice.leads, choice.reason) == ("only", [], "the only candidate")
