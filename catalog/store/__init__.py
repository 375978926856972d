"""The catalog store: what the pipeline and the web side both read and write.

One small Protocol per concern (`concerns.py`: releases, lifecycle, deliveries, source
checks, accounts, usage, search), the optional PostGIS capability (`store.spatial`), and the
backends, chosen from a table by the URL's scheme. The pipeline enters the catalog only
through this package (an import-linter contract in pyproject.toml).

| URL | backend |
|---|---|
| `sqlite:///…` (embedded default) | `sql.SqlCatalogStore`: catalog in SQLite, files |
| `postgresql+psycopg://…` (production) | `postgis.PostgisCatalogStore`: Alembic, PostGIS tables |

A backend is one module with a class taking `(url, files_dir)` and one entry below.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from catalog.store.concerns import (
    Accounts,
    CatalogStore,
    Deliveries,
    LayerSource,
    Lifecycle,
    Publications,
    Releases,
    Search,
    SourceChecks,
    SpatialTables,
    Usage,
)
from core.plugins import load

__all__ = [
    "BACKENDS",
    "Accounts",
    "CatalogStore",
    "Deliveries",
    "LayerSource",
    "Lifecycle",
    "Publications",
    "Releases",
    "Search",
    "SourceChecks",
    "SpatialTables",
    "Usage",
    "open_store",
]

# SQLAlchemy backend name → "module:class"; imported only when chosen.
BACKENDS = {
    "sqlite": "catalog.store.sql:SqlCatalogStore",
    "postgresql": "catalog.store.postgis:PostgisCatalogStore",
}


def open_store(url: str, files_dir: Path) -> CatalogStore:
    """The store for a URL: sqlite:///… for the embedded default, postgresql+psycopg://…
    for PostGIS (schema migrated with Alembic, data tables and views)."""
    backend = sa.engine.make_url(url).get_backend_name()
    if backend not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"Base du catalogue « {backend} » non prise en charge ({known}).")
    store: CatalogStore = load(BACKENDS[backend])(url, files_dir)
    return store
