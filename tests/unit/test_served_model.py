"""The one holder of the served version: a swap replaces it in one call and tells each listener."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving.model.served import Served, ServedModel


def served(version: str) -> Served:
    return Served(model=None, version=version, run_id=f"run-{version}", info={"name": "churn"},  # type: ignore[arg-type]
                  model_dir=Path(f"/models/{version}"))  # fmt: skip


def test_a_swap_serves_the_new_version_and_tells_every_listener_in_order() -> None:
    holder = ServedModel(served("1"))
    told: list[tuple[str, str, str]] = []

    def listener(name: str) -> Any:
        return lambda old, new: told.append((name, old.version, new.version))

    holder.on_swap(listener("history"))
    holder.on_swap(listener("monitor"))
    first = holder.current
    holder.swap(served("2"))

    assert holder.current.version == "2" and first.version == "1"
    assert told == [("history", "1", "2"), ("monitor", "1", "2")]


def test_listeners_see_the_new_version_already_served() -> None:
    holder = ServedModel(served("1"))
    seen: list[str] = []
    holder.on_swap(lambda old, new: seen.append(holder.current.version))
    holder.swap(served("2"))
    assert seen == ["2"]
