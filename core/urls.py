"""The platform's public addresses, built in one place from the public base URL
(`OPENDATA_PUBLIC_URL`): what e-mails, feeds and pages link to."""

from __future__ import annotations


def dataset_page(base: str, slug: str) -> str:
    return f"{base}/jeux-de-donnees/{slug}"


def dataset_feed(base: str, slug: str) -> str:
    return f"{base}/api/datasets/{slug}/changements.atom"
