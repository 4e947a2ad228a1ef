"""Command line: synth · train · promote · score · history · outcomes · performance ·
experiments, and more. Each command parses arguments and calls one function."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from churn.errors import UserError
from cli.runner import run
from scoring.cli import score as score_command
from training.settings import TrainingSettings

if TYPE_CHECKING:
    from history.agreement import Agreement
    from training.paired import Paired

MAX_BAD_ROWS_SHOWN = 20
# `train --tune` without --trials or --budget-minutes searches this long.
DEFAULT_BUDGET_MINUTES = 15.0
SqlTable = Annotated[Optional[str], typer.Option(help="SQL table to read, with a URL in --data.")]
SqlQuery = Annotated[Optional[str], typer.Option(help="SQL query to run, with a URL in --data.")]
WeekStart = Annotated[
    Optional[str],
    typer.Option(help="Start of the window: a time, a date, or a duration back (7d) [7d]."),
]
OutcomeWindowDays = Annotated[
    Optional[int],
    typer.Option(
        min=1,
        help="Days before an outcome a prediction may be made [env "
        "CHURN_HISTORY_OUTCOME_WINDOW_DAYS].",
    ),
]
WindowEnd = Annotated[
    Optional[str], typer.Option(help="End of the window: a time or a date [default: now].")
]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


def _settings(**overrides: object) -> TrainingSettings:
    values = {key: value for key, value in overrides.items() if value is not None}
    return TrainingSettings(**values)  # type: ignore[arg-type]


@app.command()
def synth(
    rows: Annotated[int, typer.Option(min=1, help="How many customers to write.")] = 5000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed writes the same table.")
    ] = 42,
    out: Annotated[Path, typer.Option(help="Output .csv or .parquet file.")] = Path(
        "data/customers.csv"
    ),
    shape: Annotated[
        str,
        typer.Option(help="telco (the IBM Telco columns, target Churn) or bank (target Exited)."),
    ] = "telco",
) -> None:
    """Write a deterministic synthetic customer table with the IBM Telco or a bank's schema."""
    from training.synth import write_synthetic

    if shape not in ("telco", "bank"):
        raise UserError(f"--shape: {shape!r} is not telco or bank.")
    started = time.perf_counter()
    table = write_synthetic(rows, seed, out, "telco" if shape == "telco" else "bank")
    churn_rate = (table["Churn"] == "Yes").mean() if shape == "telco" else table["Exited"].mean()
    typer.echo(
        f"Wrote {len(table):,} customers to {out} in {time.perf_counter() - started:.1f} s "
        f"(churn rate {churn_rate:.1%})."
    )


@app.command()
def train(
    data: Annotated[str, typer.Option(help="CSV or Parquet file, or a SQLAlchemy URL.")],
    target: Annotated[
        str, typer.Option(help="The label column (yes/no, true/false, 1/0, y/n).")
    ] = "Churn",
    id_column: Annotated[
        Optional[str], typer.Option(help="Customer id column, kept out of the features.")
    ] = None,
    table: SqlTable = None,
    query: SqlQuery = None,
    categorical: Annotated[
        Optional[list[str]], typer.Option(help="Force a column to be categorical.")
    ] = None,
    numeric: Annotated[
        Optional[list[str]], typer.Option(help="Force a column to be numeric.")
    ] = None,
    model_name: Annotated[
        Optional[str], typer.Option(help="Registered model name [env CHURN_MODEL_NAME].")
    ] = None,
    experiment: Annotated[
        Optional[str], typer.Option(help="MLflow experiment [env CHURN_EXPERIMENT].")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and the models.")] = 42,
    playbook_missing: Annotated[
        Optional[str],
        typer.Option(
            help="refuse (exit 2) or skip the playbook rules naming columns the table lacks "
            "[env CHURN_PLAYBOOK_MISSING; default refuse]."
        ),
    ] = None,
    campaign_results: Annotated[
        Optional[Path],
        typer.Option(
            help="CSV of a past campaign (id column, action, accepted): measured acceptance "
            "rates replace the playbook's."
        ),
    ] = None,
    tune: Annotated[
        bool, typer.Option(help="Search each candidate's parameters first, with Optuna.")
    ] = False,
    budget_minutes: Annotated[
        Optional[float],
        typer.Option(help="With --tune: the search's time, shared by the candidates [15]."),
    ] = None,
    trials: Annotated[
        Optional[int],
        typer.Option(help="With --tune: trials per candidate (the same trials, the same model)."),
    ] = None,
    folds: Annotated[int, typer.Option(help="With --tune: cross-validation folds.")] = 5,
    tune_objective: Annotated[
        str, typer.Option(help="With --tune: what a trial maximises: profit, or log_loss (lowest).")
    ] = "profit",
    uplift_from: Annotated[
        Optional[str],
        typer.Option(
            help="A retention experiment in the history whose measured uplift replaces the "
            "playbook's acceptance rates (python -m training experiments shows it)."
        ),
    ] = None,
) -> None:
    """Train the candidates, log them to MLflow and register the winner."""
    if playbook_missing not in (None, "refuse", "skip"):
        raise UserError(f"--playbook-missing: {playbook_missing!r} is not refuse or skip.")
    if tune_objective not in ("profit", "log_loss"):
        raise UserError(f"--tune-objective: {tune_objective!r} is not profit or log_loss.")
    if not tune and (budget_minutes is not None or trials is not None):
        raise UserError("--budget-minutes and --trials go with --tune.")
    settings = _settings(
        model_name=model_name, experiment=experiment, playbook_missing=playbook_missing
    )
    from training.data import Source, require_columns
    from training.search_options import SearchOptions

    source = Source(data, table=table, query=query)
    require_columns(source, target, id_column)
    search_options = None
    if tune:
        budget = DEFAULT_BUDGET_MINUTES if budget_minutes is None and trials is None else None
        search_options = SearchOptions(
            trials, budget_minutes if budget_minutes is not None else budget, folds,
            tune_objective,  # type: ignore[arg-type]
        )  # fmt: skip
        search_options.check_settings()
    # Imported once the settings, the file's header and the search are known to be good:
    # MLflow and the models take seconds.
    from training.metrics_table import metrics_table
    from training.train import train as run_training

    result = run_training(
        source,
        target=target,
        id_column=id_column,
        seed=seed,
        settings=settings,
        categorical=tuple(categorical or ()),
        numeric=tuple(numeric or ()),
        campaign_results=campaign_results,
        uplift_from=uplift_from,
        search_options=search_options,
    )
    typer.echo(metrics_table(result))
    typer.echo(f"\nWinner: {result.winner}  run {result.model_run_id}")
    typer.echo(f"  by {result.winner_reason}")
    typer.echo(
        f"Registered {result.model_name} version {result.version} "
        f"(parent run {result.parent_run_id})."
    )


@app.command()
def promote(
    version: Annotated[Optional[str], typer.Option(help="Version to make champion.")] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Promote the newest version only if it earns more.")
    ] = False,
    data: Annotated[
        Optional[str], typer.Option(help="With --auto: held-out customers to compare on.")
    ] = None,
    challenger: Annotated[
        bool,
        typer.Option("--challenger", help="Promote the version the challenger alias points at."),
    ] = False,
    if_better: Annotated[
        bool,
        typer.Option(
            "--if-better",
            help="With --challenger: only if its realised profit on the same customers' "
            "outcomes is higher, with 95% confidence.",
        ),
    ] = False,
    min_outcomes: Annotated[
        int, typer.Option(min=1, help="With --if-better: customers with outcomes it needs.")
    ] = 500,
    alias: Annotated[
        Optional[str],
        typer.Option(help="With --version: the alias to move, e.g. challenger [champion]."),
    ] = None,
    model_name: Annotated[
        Optional[str], typer.Option(help="Registered model name [env CHURN_MODEL_NAME].")
    ] = None,
) -> None:
    """Point the `champion` alias at a version; the service serves whatever it points at."""
    if [version is not None, auto, challenger].count(True) != 1:
        raise UserError("Give exactly one of --version N, --auto or --challenger.")
    if if_better and not challenger:
        raise UserError("--if-better goes with --challenger.")
    if alias is not None and version is None:
        raise UserError("--alias goes with --version.")
    settings = _settings(model_name=model_name, model_alias=alias)
    from training.data import Source
    from training.promote import promote_auto, promote_version

    if challenger:
        _promote_challenger(settings, if_better, min_outcomes)
        return
    if version is not None:
        result = promote_version(version, settings)
    else:
        result = promote_auto(settings, Source(data) if data else None)
    alias = f"{settings.model_name}@{settings.model_alias}"
    if result.challenger_profit is not None:
        typer.echo(
            f"Expected profit per customer: challenger v{result.challenger_version} "
            f"{result.challenger_profit:.2f}, champion {result.champion_profit:.2f}."
        )
    messages = {
        "first": f"{alias} -> version {result.champion_version} (first version).",
        "promoted": f"{alias} -> version {result.champion_version}.",
        "kept": f"{alias} stays at version {result.champion_version}.",
    }
    typer.echo(messages[result.decision])


def _print_paired(settings: TrainingSettings, matched: Any) -> None:
    """With a champion and a challenger in the registry: the two on the same customers."""
    from registry.client import champion, connect
    from training.paired import paired

    client = connect(settings)
    current = champion(client, settings.model_name, settings.model_alias)
    rival = champion(client, settings.model_name, settings.challenger_alias)
    if current is None or rival is None or current.version == rival.version:
        return
    evidence = paired(matched, str(current.version), str(rival.version), settings.economics)
    if evidence.customers:
        _print_evidence(evidence)


def _print_evidence(evidence: Paired) -> None:
    typer.echo(
        f"Paired on {evidence.customers:,} customers with outcomes, challenger "
        f"v{evidence.challenger_version} minus champion v{evidence.champion_version}:"
    )
    for row in evidence.differences:
        shown = "n/a" if row.difference is None else (
            f"{row.difference:+.4f} (95% interval {row.low:+.4f} to {row.high:+.4f})"
        )  # fmt: skip
        typer.echo(f"  {row.metric:<22}{shown}")


def _promote_challenger(settings: TrainingSettings, if_better: bool, min_outcomes: int) -> None:
    from training.promote_challenger import promote_challenger

    result = promote_challenger(settings, if_better, min_outcomes)
    if result.evidence is not None:
        _print_evidence(result.evidence)
    alias = f"{settings.model_name}@{settings.model_alias}"
    if result.decision == "promoted":
        typer.echo(f"{alias} -> version {result.champion_version}: {result.reason}.")
    else:
        typer.echo(f"{alias} stays at version {result.champion_version}: {result.reason}.")


app.command("score")(score_command)


@app.command()
def history(
    customer: Annotated[str, typer.Option(help="The customer id, as it was sent for scoring.")],
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many scores to show.")] = 20,
) -> None:
    """Print a customer's recorded scores, newest first, as GET /customers/{id}/history does."""
    from history.store import History

    page = History.open(_settings().history).customer_history(customer, limit)
    if not page.scores:
        typer.echo(f"No recorded scores for customer {customer!r}.")
        return
    typer.echo(f"{'scored at (UTC)':<28}{'version':>8}{'probability':>13}  {'tier':<8}action")
    for score in page.scores:
        typer.echo(
            f"{score['scored_at']:<28}{score['model_version']:>8}"
            f"{score['churn_probability']:>13.3f}  {score['risk_tier']:<8}{score['action']}"
        )
        for reason in score["reasons"] or []:
            typer.echo(f"{'':<30}{reason}")
    if page.next_before:
        typer.echo(f"Older scores exist; showing the newest {limit}.")


@app.command()
def outcomes(
    data: Annotated[str, typer.Option(help="CSV or Parquet file of outcomes, or a SQL URL.")],
    id_column: Annotated[str, typer.Option(help="The customer id column.")],
    target: Annotated[
        str, typer.Option(help="Whether the customer churned (yes/no, true/false, 1/0, y/n).")
    ] = "Churn",
    observed_at: Annotated[
        Optional[str], typer.Option(help="When it was observed; default: now, for every row.")
    ] = None,
    table: SqlTable = None,
    query: SqlQuery = None,
) -> None:
    """Load what really happened into the history's outcomes table; bad rows are listed and
    every good row is loaded."""
    from history.store import History
    from training.data import Source
    from training.outcomes import read_outcomes, store_outcomes

    read = read_outcomes(Source(data, table=table, query=query), id_column, target, observed_at)
    stored = store_outcomes(History.open(_settings().history), read.table)
    typer.echo(f"Loaded {stored:,} outcomes; rejected {len(read.bad_rows):,} rows.")
    for bad in read.bad_rows[:MAX_BAD_ROWS_SHOWN]:
        typer.echo(f"  row {bad.row}: {bad.message}")
    if len(read.bad_rows) > MAX_BAD_ROWS_SHOWN:
        typer.echo(f"  ... and {len(read.bad_rows) - MAX_BAD_ROWS_SHOWN:,} more.")


@app.command()
def performance(
    window_days: OutcomeWindowDays = None,
    out: Annotated[Path, typer.Option(help="Folder for performance.json and .html.")] = Path(
        "reports/performance"
    ),
    model_name: Annotated[
        Optional[str], typer.Option(help="Registered model name [env CHURN_MODEL_NAME].")
    ] = None,
    log_to_mlflow: Annotated[
        bool, typer.Option(help="Tag each version with realised.* and attach the page.")
    ] = True,
) -> None:
    """Realised performance of each model version, from the predictions and outcomes."""
    from history.store import History
    from registry.client import connect
    from training.realised import matched_predictions, realised
    from training.realised_report import COLUMNS, Report, log_to_versions, store_in_history

    settings = _settings(model_name=model_name)
    window = window_days or settings.history.outcome_window_days
    history = History.open(settings.history)
    matched = matched_predictions(history, settings.model_name, window)
    if matched.empty:
        raise UserError(
            f"No outcome has a prediction of {settings.model_name!r} in the {window} days before "
            "it: load outcomes with `python -m training outcomes` once predictions are recorded."
        )
    report = Report(settings.model_name, window, realised(matched, settings.economics))
    json_path, html_path = report.write(out)
    typer.echo(f"{'version':<9}" + "".join(f"{title:>18}" for _, title, _ in COLUMNS))
    for result in report.results:
        cells = (getattr(result, key) for key, _, _ in COLUMNS)
        typer.echo(
            f"v{result.model_version:<8}"
            + "".join(
                f"{'n/a' if value is None else shape.format(value):>18}"
                for value, (_, _, shape) in zip(cells, COLUMNS, strict=True)
            )
        )
    typer.echo(f"Report: {json_path} and {html_path}")
    _print_paired(settings, matched)
    store_in_history(history, report)
    if log_to_mlflow:
        logged = log_to_versions(connect(settings), report, html_path)
        typer.echo(f"Logged realised.* to version(s) {', '.join(logged) or 'none'} in MLflow.")


@app.command()
def drift(
    since: Annotated[
        Optional[str],
        typer.Option(
            help="Start of the window: a time (2026-12-01T08:00), a date, or a duration back "
            "from --until (24h, 7d) [default: CHURN_DRIFT_WINDOW back, 24h]."
        ),
    ] = None,
    until: Annotated[
        Optional[str], typer.Option(help="End of the window: a time or a date [default: now].")
    ] = None,
    version: Annotated[
        Optional[str], typer.Option(help="Model version [default: the champion's].")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for drift.json and drift.html.")] = Path(
        "reports/drift"
    ),
) -> None:
    """PSI of each feature and of the predictions: a version's recorded rows against its
    training split, as the service exports them to Prometheus."""
    from history.store import History
    from monitoring.drift_page import write_drift_report
    from monitoring.settings import DriftSettings
    from registry.client import champion, connect
    from training.drift import measure_drift, reference_of

    settings = _settings()
    start, end = _window(since, until, settings.drift.window)
    client = connect(settings)
    if version is None:
        found = champion(client, settings.model_name, settings.model_alias)
        if found is None:
            raise UserError(f"No {settings.model_name}@{settings.model_alias}; give --version.")
        version = str(found.version)
    reference = reference_of(client, settings.model_name, version)
    history = History.open(settings.history)
    report = measure_drift(history, reference, version, start, end, DriftSettings().min_rows)
    typer.echo(
        f"Drift of {settings.model_name} v{version}, "
        f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    )
    typer.echo(f"{'':<24}{'PSI':>8}  {'stability':<12}{'rows':>10}")
    for item in (report.prediction, *report.features):
        name = "predictions" if item is report.prediction else item.feature
        shown = "n/a" if item.psi is None else f"{item.psi:.3f}"
        typer.echo(f"{name:<24}{shown:>8}  {item.stability:<12}{item.rows:>10,}")
    json_path, html_path = write_drift_report(report, out)
    typer.echo(f"Report: {json_path} and {html_path}")


@app.command()
def challenger(
    since: WeekStart = None,
    until: WindowEnd = None,
) -> None:
    """The challenger beside the champion on the customers both scored (shadow or canary
    mode), by segment: same risk tier, same action, correlation of the probabilities, and the
    difference in expected profit per customer."""
    from history.store import History

    settings = _settings()
    start, end = _window(since, until, timedelta(days=7))
    table = History.open(settings.history).agreement(start, end)
    if not table:
        raise UserError(
            f"No customer was scored by both champion and challenger from {start:%Y-%m-%d %H:%M} "
            f"to {end:%Y-%m-%d %H:%M} UTC: serve with CHURN_CHALLENGER_MODE=shadow or canary."
        )
    _print_agreement(table)


@app.command()
def replay(
    version: Annotated[str, typer.Option(help="The registered version to re-score with.")],
    since: WeekStart = None,
    until: WindowEnd = None,
) -> None:
    """Re-score the customers whose features the history kept with any registered version,
    and set its decisions beside the answered ones, by segment, before it serves anyone."""
    from training.replay import replay as replay_version

    settings = _settings()
    start, end = _window(since, until, timedelta(days=7))
    _print_agreement(replay_version(settings, version, start, end), ("answered", "replayed"))


@app.command()
def experiments(
    experiment: Annotated[
        Optional[str], typer.Option(help="The experiment [env CHURN_EXPERIMENT_NAME].")
    ] = None,
    since: Annotated[
        Optional[str],
        typer.Option(help="Start of the decisions: a time, a date, or a duration back [90d]."),
    ] = None,
    until: WindowEnd = None,
    window_days: OutcomeWindowDays = None,
    min_outcomes: Annotated[
        int, typer.Option(min=1, help="Outcomes each group needs before a verdict.")
    ] = 100,
    out: Annotated[Path, typer.Option(help="Folder for <experiment>.json and .html.")] = Path(
        "reports/experiments"
    ),
    log_to_mlflow: Annotated[
        bool, typer.Option(help="Tag the served version with experiment.* and attach the page.")
    ] = True,
) -> None:
    """What a retention experiment measured: treated against control, per action and segment,
    from the decisions and the outcomes that followed them."""
    from churn.experiment import ExperimentSettings

    name = experiment or ExperimentSettings().name
    if name is None:
        raise UserError("Name the experiment: --experiment NAME or CHURN_EXPERIMENT_NAME.")
    settings = _settings()
    start, end = _window(since, until, timedelta(days=90))
    from history.experiments import measure
    from history.store import History
    from registry.client import champion, connect
    from training.experiment_report import ExperimentReport, log_to_version

    client = connect(settings)
    served = champion(client, settings.model_name, settings.model_alias)
    version = None if served is None else str(served.version)
    costs = {} if version is None else _action_costs(settings.model_name, version)
    history = History.open(settings.history)
    window = window_days or settings.history.outcome_window_days
    result = measure(history.engine, name, start, end, window, costs, min_outcomes)
    report = ExperimentReport(result, settings.model_name, version)
    json_path, html_path = report.write(out)
    _print_uplifts(report)
    typer.echo(f"Report: {json_path} and {html_path}")
    if log_to_mlflow and version is not None:
        log_to_version(client, report, html_path)
        typer.echo(f"Logged experiment.{name}.* to version {version} in MLflow.")


def _action_costs(model_name: str, version: str) -> dict[str, float]:
    from registry.client import model_description

    actions = model_description(model_name, version)["playbook"]["actions"]
    return {action: float(figures["cost"]) for action, figures in actions.items()}


def _print_uplifts(report: Any) -> None:
    result = report.result
    groups = ", ".join(f"{count:,} {group}" for group, count in sorted(result.assigned.items()))
    typer.echo(
        f"Experiment {result.experiment}: {groups} customers, {result.with_outcome:,} with an "
        "outcome."
    )
    if result.unassigned_outcomes:
        typer.echo(
            f"{result.unassigned_outcomes:,} customers with an outcome were never assigned by "
            "the experiment; they are left out."
        )
    typer.echo(
        f"{'action':<24}{'treated':>8}{'control':>8}{'uplift':>8}{'95% interval':>18}"
        f"{'kept/1k':>8}{'profit/treated':>15}  {'verdict':<17}segment"
    )
    for row in result.uplifts:
        uplift = "n/a" if row.uplift is None else f"{row.uplift:+.1%}"
        interval = "n/a" if row.uplift_low is None else (
            f"{row.uplift_low:+.1%}..{row.uplift_high:+.1%}"
        )  # fmt: skip
        kept = "n/a" if row.kept_per_1000_treated is None else f"{row.kept_per_1000_treated:.1f}"
        profit = "n/a" if row.incremental_profit_per_treated is None else (
            f"{row.incremental_profit_per_treated:,.2f}"
        )  # fmt: skip
        typer.echo(
            f"{row.action[:23]:<24}{row.treated:>8,}{row.control:>8,}{uplift:>8}{interval:>18}"
            f"{kept:>8}{profit:>15}  {row.verdict:<17}{row.segment}"
        )
    judged = sum(row.verdict != "too few outcomes" for row in result.uplifts)
    typer.echo(
        f"A verdict holds for the {judged} rows with enough outcomes together (Bonferroni); "
        "each interval shown is the row's own 95%."
    )


def _print_agreement(
    table: list[Agreement], arms: tuple[str, str] = ("champion", "challenger")
) -> None:
    typer.echo(
        f"{arms[0]:>9}{arms[1]:>11}{'customers':>10}{'same tier':>10}{'same action':>12}"
        f"{'corr.':>8}{'profit diff':>12}  segment"
    )
    for row in table:
        correlation = "n/a" if row.probability_correlation is None else (
            f"{row.probability_correlation:.3f}"
        )  # fmt: skip
        typer.echo(
            f"{'v' + row.champion_version:>9}{'v' + row.challenger_version:>11}"
            f"{row.customers:>10,}{row.same_tier:>10.1%}{row.same_action:>12.1%}"
            f"{correlation:>8}{row.expected_profit_difference_per_customer:>+12.2f}  {row.segment}"
        )


def _window(since: str | None, until: str | None, default: timedelta) -> tuple[datetime, datetime]:
    """--since and --until as times: --since may be a duration back from --until."""
    from monitoring.settings import parse_duration

    end = _moment(until, "--until") if until else datetime.now(UTC)
    if since is None:
        return end - default, end
    if since[-1:] in "smhd" and since[:-1].replace(".", "", 1).isdigit():
        return end - parse_duration(since), end
    return _moment(since, "--since"), end


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{option}: {text!r} is not a time, a date or a duration like 24h."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("champion-version")
def champion_version(
    model_name: Annotated[Optional[str], typer.Option(help="Registered model name.")] = None,
) -> None:
    """Print the version the champion alias points at, or "none"."""
    from registry.client import champion, connect

    settings = _settings(model_name=model_name)
    current = champion(connect(settings), settings.model_name, settings.model_alias)
    typer.echo("none" if current is None else str(current.version))


def main() -> None:
    run(app)


if __name__ == "__main__":
    main()
