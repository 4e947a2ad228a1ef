"""The checks every request passes, in one order for every door: who is asking, how many bodies
they are still sending, whether a file task fits, what they may send, and what it costs them."""

from __future__ import annotations

from starlette.types import ASGIApp

from serving.access.access import Access
from serving.access.authenticate import Authenticate
from serving.access.rate_limit import RateLimit
from serving.http.body_limit import BodyLimit
from serving.http.file_tasks import FileTaskLimit, FileTasks
from serving.http.unfinished_bodies import UnfinishedBodies
from serving.settings import ServingSettings

FILE_SUBMIT_PATH = "/score_file/submit"


def gated(
    app: ASGIApp,
    settings: ServingSettings,
    access: Access | None,
    file_tasks: FileTasks,
    charged_by_app: frozenset[str],
) -> ASGIApp:
    """`app` behind the checks; the paths in `charged_by_app` charge their customers themselves
    as they validate them (serving/http/fast_predict.py)."""
    if access is not None:
        app = RateLimit(
            app, access.limiter, settings.max_customers_per_request, charged_by_app=charged_by_app
        )
    app = BodyLimit(
        app,
        limits={"/score_file": settings.max_file_bytes, "/ui/files": settings.max_file_bytes},
        default_limit=settings.max_request_bytes,
    )
    app = FileTaskLimit(app, file_tasks, FILE_SUBMIT_PATH)
    app = UnfinishedBodies(app, settings.max_unfinished_bodies_per_client)
    if access is not None:
        app = Authenticate(app, access.keys, access.pepper, settings.metrics_require_key)
    return app
