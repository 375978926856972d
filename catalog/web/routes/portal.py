"""The portal's pages: server-rendered French HTML, out of the OpenAPI document.

- `/`: search, themes and communes with counts, results;
- `/communes` and `/communes/<commune>`: the communes, and one commune's page in its
  colours, with its datasets, their usage (for its agents) and the snippet to embed them;
- `/integration/<commune>`: what that snippet (an `<iframe>`) shows in another site;
- `/jeux-de-donnees/<slug>`: the dataset's page (information, data, map, downloads with
  their sizes, its addresses in a GIS, API examples; schema.org JSON-LD, `catalog.web.handoff`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from catalog import search
from catalog.visibility import CALLER
from catalog.web import handoff
from catalog.web.context import Web, base
from catalog.web.pages import TEMPLATES, format_labels
from catalog.web.routes.downloads import ready_files
from catalog.web.routes.statistics import statistics_for
from catalog.web.views import detail, summary
from core.access import Principal
from core.vocabularies import THEMES

PORTAL_STATISTICS_DAYS = 30


def router(web: Web) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    @pages.get("/", response_class=HTMLResponse)
    def home(
        request: Request,
        q: str = "",
        theme: str | None = None,
        commune: str | None = None,
        principal: Principal = CALLER,
    ) -> HTMLResponse:
        filters = {k: v for k, v in {"theme": theme, "commune": commune}.items() if v}
        result = search.search(web.store, principal, search.Query(q, filters, size=100))
        context = {
            "q": q,
            "total": result["total"],
            "facettes": result["facettes"],
            "datasets": [summary(h.dataset, h.release) for h in result["hits"]],
            "themes": THEMES,
            "communes": web.producers,
        }
        return TEMPLATES.TemplateResponse(request, "home.html", context)

    @pages.get("/communes", response_class=HTMLResponse)
    def communes_page(request: Request) -> HTMLResponse:
        context = {"communes": list(web.producers.values())}
        return TEMPLATES.TemplateResponse(request, "communes.html", context)

    @pages.get("/communes/{commune}", response_class=HTMLResponse)
    def commune_page(request: Request, commune: str, principal: Principal = CALLER) -> HTMLResponse:
        producer = web.commune_or_404(commune)
        snippet = (
            f'<iframe src="{base(request)}/integration/{producer.slug}" '
            f'title="Données ouvertes de {producer.name}" width="100%" height="420" '
            'style="border:0"></iframe>'
        )
        context = {
            "commune": producer,
            "datasets": web.commune_cards(producer.slug, principal),
            "snippet": snippet,
            "statistiques": statistics_for(web, producer.slug, PORTAL_STATISTICS_DAYS, principal),
        }
        return TEMPLATES.TemplateResponse(request, "commune.html", context)

    @pages.get("/integration/{commune}", response_class=HTMLResponse)
    def embedded_list(
        request: Request, commune: str, principal: Principal = CALLER
    ) -> HTMLResponse:
        """What a commune's own website shows in the iframe of its snippet."""
        producer = web.commune_or_404(commune)
        context = {
            "commune": producer,
            "datasets": web.commune_cards(producer.slug, principal),
            "base": base(request),
        }
        return TEMPLATES.TemplateResponse(request, "integration.html", context)

    @pages.get("/jeux-de-donnees/{slug}", response_class=HTMLResponse)
    def dataset_page(request: Request, slug: str, principal: Principal = CALLER) -> HTMLResponse:
        dataset = web.dataset_or_404(slug, principal)
        release = web.release_or_404(slug, None)
        described = detail(dataset, release, web.store)
        # the files downloads would serve now, for their sizes (none is built here)
        ready = ready_files(web.store, release, described["formats"])
        context = {
            "d": described,
            "formats": format_labels(),
            "base": base(request),
            "fond_de_carte": web.map_background,
            **handoff.page_context(
                web.store, dataset, release, described["structure"], base(request), ready
            ),
        }
        web.counter.count(slug, "page")
        return TEMPLATES.TemplateResponse(request, "dataset.html", context)

    return pages
