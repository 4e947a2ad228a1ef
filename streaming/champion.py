"""The version the stream scores with: the registry's champion, loaded and checked as follow
mode loads one, and followed the same way (serving/model/follow.py)."""

from __future__ import annotations

import time
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from churn.errors import UserError
from registry.client import champion
from serving.model.declared import DeclaredApi, api_of
from serving.model.follow import (
    DownloadError,
    Follower,
    FollowSettings,
    LoadedVersion,
    RefusedError,
    fetch_version,
)
from serving.model.served import Served, ServedModel
from streaming.settings import StreamSettings


def served_from(loaded: LoadedVersion, name: str) -> Served:
    return Served.of(
        loaded.model,
        name,
        loaded.version,
        loaded.run_id,
        loaded.description,
        loaded.tags,
        loaded.model_dir,
        f"models:/{name}/{loaded.version}",
    )


def follow_champion(
    settings: StreamSettings, folder: Path
) -> tuple[ServedModel, DeclaredApi, Follower]:
    """The champion, loaded and held, its API, and a follower (not started) that swaps in the
    version the alias moves to; UserError if no version has the alias."""
    uri, name, alias = settings.tracking_uri, settings.model_name, settings.model_alias
    client = MlflowClient(uri, uri)
    found = champion(client, name, alias)
    if found is None:
        raise UserError(
            f"No version of model {name!r} has the alias {alias!r} at {uri}; train and promote "
            "one first (python -m training train)."
        )
    follow = FollowSettings(name, alias, uri, settings.follow_poll_s, 0, None, 1, folder)
    try:
        fetched = fetch_version(client, follow, str(found.version))
    except (MlflowException, DownloadError) as error:
        raise UserError(f"Cannot read {name} version {found.version} from {uri}: {error}") from None
    api = api_of(fetched.local, max_customers=1)
    holder: ServedModel | None = None

    def swap(loaded: LoadedVersion) -> None:
        assert holder is not None
        holder.swap(served_from(loaded, name))

    follower = Follower(
        follow,
        lambda: holder.current.version if holder is not None else "",
        api.inputs,
        api.customer,
        api.example,
        swap,
    )
    try:
        first = follower.open(fetched, time.time(), "poll")
    except RefusedError as refusal:
        raise UserError(f"Cannot score with {name} version {found.version}: {refusal}") from None
    holder = ServedModel(served_from(first, name))
    return holder, api, follower
