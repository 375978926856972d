"""What the catalog's routes share, and the lookups every route starts with.

A `Web` is built once by `create_app` and handed to every router: the store, the
communes (`config/producers.yaml`), the usage counter. Its lookups answer in French and
never tell more than the caller may know: a restricted dataset is, to a caller who may
not read it, a dataset that does not exist (404, and the refusal is audited); a
depublished dataset or a retired structure answers 410 Gone (`Gone`), an HTML page on the
portal's pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, Response

from catalog import lifecycle, search, site, usage
from catalog.store import CatalogStore
from catalog.visibility import may_see_or_refuse
from catalog.web.lookups import CachedLookups, LookupView
from catalog.web.pages import TEMPLATES
from catalog.web.views import summary
from core import clock
from core.access import Principal
from core.producers import Producer
from core.records import ChangeNotice, Dataset, Release
from core.settings import MapBackground, Settings
from core.urls import dataset_api
from core.wording import french_date

PORTAL_PAGE_PREFIX = "/jeux-de-donnees/"  # a 410 there is a page, elsewhere JSON
COMMUNE_CARDS = 100_000  # a commune's page lists all its datasets


class Gone(HTTPException):
    """410 Gone, with a French explanation (an HTML page for the portal's pages)."""

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(410, detail=detail, headers=headers)


async def gone_answer(request: Request, error: Exception) -> Response:
    """The exception handler of `Gone`: the portal's page, or the API's JSON."""
    assert isinstance(error, Gone)
    if request.url.path.startswith(PORTAL_PAGE_PREFIX):
        return TEMPLATES.TemplateResponse(
            request,
            "retire.html",
            {"message": error.detail},
            status_code=410,
            headers=error.headers,
        )
    return JSONResponse({"detail": error.detail}, status_code=410, headers=error.headers)


@dataclass
class Web:
    """The state the routes share; one per application."""

    store: CatalogStore
    producers: dict[str, Producer]
    counter: usage.UsageCounter
    settings: Settings  # built once by the application's factory
    map_background: MapBackground | None = None  # OPENDATA_MAP_BACKGROUND; None: outlines
    lookups: CachedLookups = field(init=False)

    def __post_init__(self) -> None:
        self.lookups = CachedLookups(self.store)

    def view(self) -> LookupView:
        """The catalogue as of now, its look-ups kept while it does not change."""
        return self.lookups.view()

    def dataset_or_404(
        self, slug: str, principal: Principal, view: LookupView | None = None
    ) -> Dataset:
        """The published dataset `principal` may read (404, or 410 once depublished),
        decided on every request, from `view` (by default the catalogue as of now)."""
        dataset = (view or self.view()).get_dataset(slug)
        if not may_see_or_refuse(self.store, principal, dataset):
            # A restricted dataset gets the same answer as a missing one: not even its
            # existence is told to a caller who may not read it (the refusal is audited).
            raise HTTPException(404, detail=f"Jeu de données « {slug} » introuvable.")
        if dataset.status == "depublie":
            raise Gone(lifecycle.depublication_message(self.store, dataset))
        if dataset.status != "publie":
            raise HTTPException(404, detail=f"Jeu de données « {slug} » introuvable.")
        return dataset

    def release_or_404(
        self, slug: str, version: int | None, view: LookupView | None = None
    ) -> Release:
        """The current release of structure `version` (None: the current structure);
        410 Gone once that structure is retired."""
        view = view or self.view()
        too_large = version is not None and not 0 < version < 2**31
        retired_by = (
            None if too_large or version is None else lifecycle.retired(view, slug, version)
        )
        if retired_by is not None:
            raise gone_structure(slug, retired_by)
        release = None if too_large else view.current_release(slug, version)
        if release is None:
            raise HTTPException(404, detail=f"Version v{version} de « {slug} » introuvable.")
        return release

    def commune_or_404(self, slug: str) -> Producer:
        if slug not in self.producers:
            raise HTTPException(404, detail=f"Commune « {slug} » introuvable.")
        return self.producers[slug]

    def commune_cards(self, slug: str, principal: Principal) -> list[dict[str, Any]]:
        """The commune's datasets `principal` may read, as the portal's cards (from the
        search index: never the whole catalogue)."""
        query = search.Query(filters={"commune": slug}, sort=search.BY_SLUG, size=COMMUNE_CARDS)
        found = search.search(self.store, principal, query)
        return [summary(hit.dataset, hit.release) for hit in found["hits"]]


def gone_structure(slug: str, notice: ChangeNotice) -> Gone:
    """410 for a retired structure, pointing to the one that replaced it."""
    successor = dataset_api("", slug, notice.to_version)
    retired_on = notice.retired_at.date() if notice.retired_at else clock.today()
    return Gone(
        f"La structure v{notice.from_version} de « {slug} » n'est plus diffusée depuis le "
        f"{french_date(retired_on)} (changement annoncé le {french_date(notice.announced_at)}, "
        f"diffusion en parallèle terminée). Utilisez la structure v{notice.to_version} : "
        f"{successor}/…",
        headers={"Link": f'<{successor}/download/csv>; rel="successor-version"'},
    )


def add_headers(response: Response, headers: dict[str, str]) -> None:
    """Add headers; a `Link` joins the ones already set (licence, next page…)."""
    for name, value in headers.items():
        if name.lower() == "link" and "link" in response.headers:
            response.headers["link"] = f"{response.headers['link']}, {value}"
        else:
            response.headers[name] = value


def base(request: Request) -> str:
    """The public base URL of absolute links (`catalog.site`), never the request's Host."""
    return site.public_url(request)
