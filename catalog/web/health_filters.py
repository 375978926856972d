"""The health page's filters and sorting, as query parameters: they work without JavaScript
(a form submitted by GET, column headers that are links) and give a shareable address.

- `commune`: a commune's slug (every commune when empty);
- `statut`: `publie` or `depublie`;
- `en_retard=1`: late datasets only, and the communes that have one;
- `en_echec=1`: failing only: datasets whose source fails; communes whose last run
  failed, whose refusals repeat, or with a failing source;
- `tri`, `ordre` (`croissant`, `decroissant`): the datasets' table order;
  `tri_communes`, `ordre_communes`: the communes' table order.

A value the page does not know is a 400 with a French message (nothing is guessed).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException

ASCENDING, DESCENDING = "croissant", "decroissant"
ARIA = {ASCENDING: "ascending", DESCENDING: "descending"}
DIRECTIONS = {ASCENDING: "croissant", DESCENDING: "décroissant"}
STATUSES = ("publie", "depublie")
FLAGS = ("1", "oui", "on")


def alphabetical(text: str) -> str:
    """A French sort key: « Écully » between « Dardilly » and « Lyon », case ignored."""
    decomposed = unicodedata.normalize("NFD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _text(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: (alphabetical(str(row.get(key) or "")), row.get("slug", ""))


def _optional(key: str) -> Callable[[dict[str, Any]], Any]:
    """Rows without a value last in ascending order."""
    return lambda row: (row.get(key) is None, str(row.get(key) or ""), row.get("slug", ""))


# column → (French label, sort key); the datasets' table
DATASET_COLUMNS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "jeu": ("Jeu de données", _text("titre")),
    "commune": ("Commune", lambda r: (r["commune"], r["slug"])),
    "statut": ("Statut", _text("statut_libelle")),
    "derniere_mise_a_jour": (
        "Dernière mise à jour des données (producteur) et publication (plateforme)",
        _optional("derniere_mise_a_jour"),
    ),
    "prochaine_mise_a_jour": (
        "Prochaine mise à jour attendue",
        _optional("prochaine_mise_a_jour"),
    ),
    "depublication": ("Dépublication", _optional("depublication_prevue_le")),
}


def _deposits(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: (row["depots"][key], alphabetical(row["nom"]))


def _last_run(row: dict[str, Any]) -> Any:
    """Oldest first; a commune without any run (or Airflow unknown) before every other."""
    run = (row.get("airflow") or {}).get("derniere_execution") or {}
    return (run.get("demandee_le") or "", alphabetical(row["nom"]))


COMMUNE_COLUMNS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "commune": ("Commune", lambda r: alphabetical(r["nom"])),
    "recus": ("Dépôts reçus (30 jours)", _deposits("recus_30_jours")),
    "publies": ("Publiés (30 jours)", _deposits("publies_30_jours")),
    "refuses": ("Refusés (30 jours)", _deposits("refuses_30_jours")),
    "derniere_execution": ("Dernière exécution", _last_run),
}


@dataclass(frozen=True)
class HealthFilters:
    commune: str | None = None
    status: str | None = None
    late_only: bool = False
    failing_only: bool = False
    sort: str = "commune"
    order: str = ASCENDING
    communes_sort: str = "commune"
    communes_order: str = ASCENDING

    @classmethod
    def from_query(cls, query: Mapping[str, str], communes: Collection[str]) -> HealthFilters:
        commune = query.get("commune") or None
        if commune is not None and commune not in communes:
            raise HTTPException(400, detail=f"Commune « {commune} » inconnue.")
        status = query.get("statut") or None
        if status is not None and status not in STATUSES:
            raise HTTPException(
                400, detail=f"Statut « {status} » inconnu : publie ou depublie attendu."
            )
        return cls(
            commune=commune,
            status=status,
            late_only=_flag(query, "en_retard"),
            failing_only=_flag(query, "en_echec"),
            sort=_choice(query, "tri", DATASET_COLUMNS, "commune"),
            order=_choice(query, "ordre", ARIA, ASCENDING),
            communes_sort=_choice(query, "tri_communes", COMMUNE_COLUMNS, "commune"),
            communes_order=_choice(query, "ordre_communes", ARIA, ASCENDING),
        )

    def query(self) -> dict[str, str]:
        """The parameters that differ from the defaults."""
        values = {
            "commune": self.commune or "",
            "statut": self.status or "",
            "en_retard": "1" if self.late_only else "",
            "en_echec": "1" if self.failing_only else "",
            "tri": "" if self.sort == "commune" else self.sort,
            "ordre": "" if self.order == ASCENDING else self.order,
            "tri_communes": "" if self.communes_sort == "commune" else self.communes_sort,
            "ordre_communes": "" if self.communes_order == ASCENDING else self.communes_order,
        }
        return {k: v for k, v in values.items() if v}

    def as_json(self) -> dict[str, Any]:
        return {
            "commune": self.commune,
            "statut": self.status,
            "en_retard": self.late_only,
            "en_echec": self.failing_only,
            "tri": self.sort,
            "ordre": self.order,
            "tri_communes": self.communes_sort,
            "ordre_communes": self.communes_order,
        }

    @property
    def active(self) -> bool:
        return bool(self.commune or self.status or self.late_only or self.failing_only)

    # --- applying them ---------------------------------------------------------------------------

    def datasets(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [
            r
            for r in rows
            if (self.commune is None or r["commune"] == self.commune)
            and (self.status is None or r["statut"] == self.status)
            and (not self.late_only or r["en_retard"])
            and (not self.failing_only or (r["source"] or {}).get("en_echec"))
        ]
        key = DATASET_COLUMNS[self.sort][1]
        return sorted(kept, key=key, reverse=self.order == DESCENDING)

    def communes(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [
            r
            for r in rows
            if (self.commune is None or r["slug"] == self.commune)
            and (not self.late_only or r["en_retard"])
            and (not self.failing_only or r["en_echec"])
        ]
        key = COMMUNE_COLUMNS[self.communes_sort][1]
        return sorted(kept, key=key, reverse=self.communes_order == DESCENDING)

    def keeps_commune(self, commune: str | None) -> bool:
        return self.commune is None or commune == self.commune

    # --- the column headers ----------------------------------------------------------------------

    def headers(self, table: str) -> list[dict[str, Any]]:
        """Each sortable column of `table` (`jeux` or `communes`): its label, `aria-sort`
        when the table is sorted by it, and the link that sorts by it (the other way when
        it is already the sort)."""
        columns, field, order_field = (
            (DATASET_COLUMNS, "sort", "order")
            if table == "jeux"
            else (COMMUNE_COLUMNS, "communes_sort", "communes_order")
        )
        current, order = getattr(self, field), getattr(self, order_field)
        headers = []
        for name, (label, _) in columns.items():
            sorted_here = name == current
            following = DESCENDING if sorted_here and order == ASCENDING else ASCENDING
            target = replace(self, **{field: name, order_field: following})
            headers.append(
                {
                    "colonne": name,
                    "libelle": label,
                    "aria_sort": ARIA[order] if sorted_here else None,
                    "lien": "?" + urlencode(target.query()),
                    "action": f"trier par ordre {DIRECTIONS[following]}",
                }
            )
        return headers


def _flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name) or ""
    if value and value not in FLAGS:
        raise HTTPException(400, detail=f"Paramètre « {name} » : 1 attendu (lu : « {value} »).")
    return bool(value)


def _choice(query: Mapping[str, str], name: str, allowed: Mapping[str, Any], default: str) -> str:
    value = query.get(name) or default
    if value not in allowed:
        known = ", ".join(allowed)
        raise HTTPException(400, detail=f"Paramètre « {name} » : « {value} » inconnu ({known}).")
    return value
