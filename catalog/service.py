"""The catalog HTTP service's entry points, kept where deployments name them.

`catalog.service:create_app_from_env` is what `opendata serve` hands uvicorn; the service
itself is `catalog.web` (issue #17): `catalog.web.app.create_app` assembles the routers of
`catalog.web.routes` and the middleware. The names below are re-exported for callers of
this module.
"""

from __future__ import annotations

from catalog.web.app import create_app, create_app_from_env
from catalog.web.pages import describe_constraints
from catalog.web.views import is_open, is_public, published_schema

__all__ = [
    "create_app",
    "create_app_from_env",
    "describe_constraints",
    "is_open",
    "is_public",
    "published_schema",
]
