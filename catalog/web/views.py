"""The JSON shapes of a dataset, as the API and the portal's pages show it (French keys).

`summary` is a search hit or a card of the portal; `detail` the whole metadata of
`/api/datasets/<slug>` and of the dataset page; `published_schema` the Table Schema of
what a release publishes (after anonymisation), which downloads and rows follow.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from catalog import lifecycle
from catalog.store import Releases, downloads
from core import clock
from core.dates import dates_of
from core.licences import fill_notice
from core.records import Dataset, Release
from core.urls import dataset_api, dataset_page, download
from core.vocabularies import THEMES, find_frequency
from core.wording import french_date


def is_public(dataset: Dataset) -> bool:
    """Published and open to anonymous callers (restricted data needs authentication)."""
    return dataset.status == "publie" and is_open(dataset)


def is_open(dataset: Dataset) -> bool:
    """Not restricted: anonymous callers may know it exists (or existed)."""
    return dataset.metadata.get("access", "public") == "public"


def published_schema(store: Releases, release: Release) -> dict[str, Any]:
    """The Table Schema of what the release publishes (after anonymisation)."""
    structure = next(
        v
        for v in store.structure_versions(release.dataset)
        if v.version == release.structure_version
    ).structure
    return structure.get("published_schema") or structure["schema"]


def national_schema(metadata: dict[str, Any]) -> dict[str, str] | None:
    """The national schema the dataset follows (issue #15): {nom, version, titre, url…}."""
    declared = metadata.get("schema")
    return declared if isinstance(declared, dict) else None


def summary(dataset: Dataset, release: Release | None) -> dict[str, Any]:
    """A dataset as a search hit, or a card of the portal."""
    metadata = dataset.metadata
    frequency = find_frequency(metadata["accrual_periodicity"])
    dates, today = dates_of(dataset), clock.today()  # the one reference date (core.dates)
    expected = dates.next_expected
    return {
        "slug": dataset.slug,
        "titre": metadata["title"],
        "description": metadata["description"],
        "source": metadata.get("publisher_name", dataset.producer),
        "producteur": dataset.producer,
        "licence": dataset.licence["short_name"],
        "frequence": frequency.label if frequency else metadata["accrual_periodicity"],
        "date_mise_a_jour": dates.data_updated.isoformat(),
        "themes": list(metadata.get("themes", [])),
        "geographique": metadata.get("crs") is not None,
        "formats": downloads.offered(metadata.get("crs") is not None) if release else [],
        "prochaine_mise_a_jour": expected.isoformat() if expected else None,
        "statut_mise_a_jour": "en-retard" if dates.late(today) else "a-jour",
        "dates": dates.as_json(today),
        "url": dataset_api("", dataset.slug),
        "page": dataset_page("", dataset.slug),
    }


def detail(dataset: Dataset, release: Release, store: Releases) -> dict[str, Any]:
    """Everything known of a dataset and its current release (`/api/datasets/<slug>`)."""
    versions = store.structure_versions(dataset.slug)
    current = next(v for v in versions if v.version == release.structure_version)
    licence = dataset.licence
    metadata = dataset.metadata
    return {
        **summary(dataset, release),
        "mots_cles": metadata["keywords"],
        "themes": [{"code": t, "libelle": THEMES[t]} for t in metadata.get("themes", [])],
        "modalites_livraison": metadata["delivery"],
        "contact": metadata["contact"],
        "systeme_coordonnees": f"EPSG:{metadata['crs']}" if metadata.get("crs") else None,
        "couverture_spatiale": metadata.get("spatial"),
        "schema_national": national_schema(metadata),
        "donnees_personnelles": metadata.get("anonymisation"),
        "licence": {
            "id": licence["id"],
            "nom": licence["name"],
            "url": licence["url"],
            "homologuee": licence["homologated"],
            "sectorielle": licence["sector"],
            "obligations": licence["obligations"],
            "mention": fill_notice(  # French text: the date as a reader writes it
                licence["notice"],
                metadata.get("publisher_name", dataset.producer),
                french_date(dates_of(dataset).data_updated),
            ),
        },
        "premiere_publication": dataset.first_published_at.isoformat(),
        "derniere_publication": dataset.last_published_at.isoformat(),
        "derniere_confirmation": dataset.last_confirmed_at.isoformat(),
        "version_courante": {
            "id": release.id,
            "structure": release.structure_version,
            "lignes": release.row_count,
            "empreinte_sha256": release.content_hash,
            "publiee_le": release.published_at.isoformat(),
        },
        "structure": current.structure,
        "schema_publie": current.structure.get("published_schema") or current.structure["schema"],
        "versions_structure": [
            {
                "version": v.version,
                "actuelle": v.version == dataset.current_version,
                "retiree": lifecycle.retired(store, dataset.slug, v.version) is not None,
                "url": download("", dataset.slug, "csv", v.version),
            }
            for v in versions
        ],
        "cycle_de_vie": lifecycle.lifecycle_of(store, dataset),
        "historique": [
            {
                "version": r.id,
                "structure": r.structure_version,
                "lignes": r.row_count,
                "publiee_le": r.published_at.isoformat(),
            }
            for r in store.releases(dataset.slug)
        ],
        "distributions": [
            {
                **asdict(d),
                "media_type": d.media_type,
                "url": download("", dataset.slug, d.format),
                "url_version": download("", dataset.slug, d.format, release.structure_version),
            }
            for d in release.distributions
        ],
    }
