"""Paging through a service: every page, or a French error (never a partial result)."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.harvest.errors import SourceError

MAX_PAGES = 10_000


def all_pages(page: Callable[[int], int], total: int | None, url: str) -> int:
    """Ask page after page (`page(start)` keeps the features, says how many), until `total`
    features (when known) or an empty page; the number of pages asked."""
    received = pages = 0
    while True:
        if pages == MAX_PAGES:
            raise SourceError("pagination-sans-fin", f"Plus de {MAX_PAGES} pages", url)
        got = page(received)
        received += got
        pages += 1
        if not got or (total is not None and received >= total):
            break
    if total is not None and received != total:
        raise paging_error(received, total, url)
    return pages


def paging_error(received: int, total: int, url: str) -> SourceError:
    return SourceError(
        "pagination-interrompue",
        f"Le serveur s'est arrêté en cours de pagination : {received} objet(s) reçu(s) sur "
        f"{total} annoncé(s) ; rien n'est publié à partir d'une récupération partielle",
        url,
    )
