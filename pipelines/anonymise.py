"""Anonymise stage: apply the producer's declared treatment to every personal column.

Runs between the structure check and publication. Undeclared personal columns
block the publication; after the treatments the table is scanned again, and
anything still personal blocks it too (fail closed). Reports give counts and
kinds, never the personal values themselves.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
import yaml
from shapely.geometry import Point

from core.metadata_checks import DEFAULT_K  # declared in the metadata (k_anonymat)
from core.problems import Problem, Report, SubmissionRejected
from pipelines import personal
from pipelines.personal import names
from pipelines.publish import CheckedData

STAGE = "anonymisation"
DEFAULT_GRID_M = 100
METRIC_CRS = 2154


@dataclass(frozen=True)
class Treatment:
    column: str
    kind: str  # one of TREATMENTS
    level: str | None = None  # generaliser: mois | annee | commune | departement
    band: int | None = None  # generaliser: width of age bands
    grid_m: int | None = None  # generaliser: grid of coordinates, in metres
    justification: str | None = None  # non-personnel


@dataclass(frozen=True)
class KAnonymity:
    quasi_identifiers: list[str]
    k: int = DEFAULT_K
    suppress: str = "lignes"  # lignes | cellules


@dataclass
class ColumnRecord:
    colonne: str
    natures: list[str]
    traitement: str
    valeurs_modifiees: int = 0
    justification: str | None = None


@dataclass
class AnonymisationReport:
    """What the release records: per column, kind found, treatment, counts; and k reached."""

    colonnes: list[ColumnRecord] = field(default_factory=list)
    k_anonymat: dict[str, Any] | None = None
    pseudonymise: bool = False

    @property
    def treated(self) -> bool:
        return any(c.traitement != "non-personnel" for c in self.colonnes) or bool(self.k_anonymat)

    def to_dict(self) -> dict[str, Any]:
        return {
            "colonnes": [asdict(c) for c in self.colonnes],
            "k_anonymat": self.k_anonymat,
            "pseudonymise": self.pseudonymise,
        }

    def public_summary(self) -> dict[str, Any]:
        """General terms for the public metadata: how, not what."""
        counts: dict[str, int] = {}
        for record in self.colonnes:
            counts[record.traitement] = counts.get(record.traitement, 0) + 1
        labels = {
            "supprimer": "colonne(s) supprimée(s)",
            "pseudonymiser": "colonne(s) pseudonymisée(s)",
            "generaliser": "colonne(s) généralisée(s)",
            "masquer": "colonne(s) au texte masqué",
        }
        parts = [f"{n} {labels[t]}" for t, n in sorted(counts.items()) if t in labels]
        if self.k_anonymat:
            parts.append(
                f"k-anonymat (k = {self.k_anonymat['k']}) sur "
                f"{len(self.k_anonymat['quasi_identifiants'])} quasi-identifiant(s)"
            )
        status = "pseudonymisées (et non anonymes)" if self.pseudonymise else "anonymisées"
        summary = (
            (f"Données personnelles {status} avant publication : " + ", ".join(parts) + ".")
            if parts
            else "Aucune donnée personnelle détectée."
        )
        return {
            "anonymise": self.treated and not self.pseudonymise,
            "pseudonymise": self.pseudonymise,
            "resume": summary,
        }


def holds_personal_data(report: dict[str, Any]) -> bool:
    """Whether a release's anonymisation report says its raw file held personal data."""
    columns = report.get("colonnes") or []
    return bool(report.get("k_anonymat")) or any(
        c.get("traitement") != "non-personnel" for c in columns
    )


# --- declarations in the metadata ------------------------------------------------------------


def treatments_of(metadata: dict[str, Any]) -> dict[str, Treatment]:
    result = {}
    for column, spec in (metadata.get("personal") or {}).items():
        level = spec.get("niveau")
        result[column] = Treatment(
            column=column,
            kind=spec["traitement"],
            level=str(level).replace("é", "e") if level else None,
            band=int(spec["tranches"]) if spec.get("tranches") else None,
            grid_m=int(spec["grille_m"]) if spec.get("grille_m") else None,
            justification=spec.get("justification"),
        )
    return result


# --- the stage -------------------------------------------------------------------------------


def anonymise(
    data: CheckedData, metadata: dict[str, Any], key: bytes, commune_centre: tuple | None = None
) -> tuple[CheckedData, AnonymisationReport]:
    """Treat `data` as declared; raise SubmissionRejected on anything undeclared or left."""
    treatments = treatments_of(metadata)
    exempt = frozenset(c for c, t in treatments.items() if t.kind == "non-personnel")
    declared = frozenset(treatments) - exempt
    # Positions read from columns are judged (and treated) in those columns; the map follows.
    own_geometry = data.geometry is not None and not data.geometry_columns
    scanned = scan_or_refuse(data.typed, own_geometry, exempt, treated=declared)
    findings = scanned.findings
    _refuse_undeclared(findings, treatments, data, metadata)
    report = AnonymisationReport()
    by_column: dict[str, list[str]] = {}
    for finding in findings:
        by_column.setdefault(finding.column, []).append(finding.label)
    table, geometry = data.typed, data.geometry
    pair = _coordinate_pair(table, treatments)
    if pair:
        table, pair_changed = _generalise_lat_lon(table, *pair, commune_centre)
    for column, treatment in treatments.items():
        if pair and column in pair[:2]:
            changed = pair_changed
        else:
            table, geometry, changed = _apply(
                table, geometry, data.crs, treatment, key, commune_centre
            )
        report.colonnes.append(
            ColumnRecord(
                colonne=column,
                natures=by_column.get(column, ["déclarée par le producteur"]),
                traitement=treatment.kind,
                valeurs_modifiees=changed,
                justification=treatment.justification,
            )
        )
        report.pseudonymise |= treatment.kind == "pseudonymiser"
    if metadata.get("k_anonymity"):
        table, geometry, report.k_anonymat = _k_anonymise(table, geometry, metadata["k_anonymity"])
    treated = _geometry_follows_columns(data, table, geometry, treatments)
    # The same detector again (fail closed); a column no treatment touched (none declared, or
    # declared not personal) reads the same: its evidence is not read again.
    untouched = {c: e for c, e in scanned.evidence.items() if c not in declared}
    # A pseudonymised column holds only HMAC digests (20 hexadecimal characters).
    hashed = [c for c, t in treatments.items() if t.kind == "pseudonymiser"]
    untouched |= {c: personal.digests_evidence(c, table.column(c)) for c in hashed}
    _refuse_leftovers(treated, treatments, untouched)
    return treated, report


def scan_or_refuse(
    table: pa.Table,
    geometry_present: bool,
    exempt: frozenset[str] = frozenset(),
    unchanged: dict[str, Any] | None = None,
    treated: frozenset[str] = frozenset(),
) -> personal.Scan:
    """The detector's scan; a refusal, not a publication, when it cannot run."""
    try:
        return personal.scan(table, geometry_present, exempt, unchanged, treated)
    except personal.DetectorUnavailable as error:
        raise SubmissionRejected(_single("detecteur-indisponible", str(error), None)) from error


def undeclared_problems(
    findings: list[personal.Finding], treatments: dict[str, Treatment], metadata: dict[str, Any]
) -> list[Problem]:
    """One problem per personal finding that no declaration covers."""
    declared_k = set((metadata.get("k_anonymity") or {}).get("quasi_identifiants") or ())
    quasi = [f for f in findings if f.kind == "quasi-identifiants"]
    problems = []
    if quasi and not {f.column for f in quasi} & (declared_k | set(treatments)):
        # One problem for the combination; once any of its columns is treated, the scan
        # after the treatments says whether k = 11 is reached.
        columns = ", ".join(f.column for f in quasi)
        message = _undeclared_message(quasi[0])
        problems.append(Problem(STAGE, "quasi-identifiants-non-traites", message, column=columns))
    for finding in findings:
        if finding.column in treatments or finding.kind == "quasi-identifiants":
            continue
        problems.append(
            Problem(
                STAGE,
                "donnee-personnelle-non-traitee",
                _undeclared_message(finding),
                column=finding.column,
            )
        )
    return problems


def personal_problems(
    table: pa.Table, geometry_present: bool, metadata: dict[str, Any]
) -> list[Problem]:
    """What the anonymisation stage would refuse in this table, for a report made earlier
    (the structure's), so that a producer learns everything in one pass."""
    treatments = treatments_of(metadata)
    exempt = frozenset(c for c, t in treatments.items() if t.kind == "non-personnel")
    try:
        findings = personal.detect(table, geometry_present, exempt)
    except personal.DetectorUnavailable as error:
        return [Problem(STAGE, "detecteur-indisponible", str(error))]
    return undeclared_problems(findings, treatments, metadata)


def _refuse_undeclared(
    findings: list[personal.Finding],
    treatments: dict[str, Treatment],
    data: CheckedData,
    metadata: dict[str, Any],
) -> None:
    report = Report()
    present = set(data.typed.column_names) | ({"geometry"} if data.geometry is not None else set())
    for column in treatments:
        if column not in present:
            report.add(
                Problem(
                    STAGE,
                    "colonne-declaree-absente",
                    f"La colonne « {column} » déclarée dans « donnees_personnelles » "
                    "n'existe pas dans le fichier.",
                    column=column,
                )
            )
    for problem in undeclared_problems(findings, treatments, metadata):
        report.add(problem)
    if not report.valid:
        raise SubmissionRejected(report)


# The treatment proposed first, by kind: the least destructive one that removes the risk.
PROPOSED = {
    "nom": "pseudonymiser",
    "coordonnees-individuelles": "generaliser, grille_m: 200",
    "date-naissance": "generaliser, niveau: annee",
    "adresse": "generaliser",
    "quasi-identifiants": "generaliser",
}


def _undeclared_message(finding: personal.Finding) -> str:
    if finding.kind == "quasi-identifiants":
        return (
            f"{finding.detail} Ou bien déclarez « k_anonymat » (les lignes trop rares sont "
            "alors retirées) :\n      k_anonymat: {quasi_identifiants: [...], k: 11}"
        )
    origin = " (d'après le nom de la colonne)" if finding.by_name else ""
    why = f" {finding.detail}" if finding.detail else ""
    proposed = "masquer" if finding.in_sentences else PROPOSED.get(finding.kind, "supprimer")
    return (
        f"{finding.label.capitalize()} détecté(e)s dans {finding.count} valeur(s){origin}."
        f"{why} Rien ne peut être publié tant que cette colonne n'a pas de traitement déclaré "
        "dans metadata.yaml, par exemple :\n"
        f"      donnees_personnelles:\n        {finding.column}: {{traitement: {proposed}}}"
        "   # ou supprimer, pseudonymiser, generaliser, masquer\n"
        "    ou, si ces valeurs ne sont pas des données personnelles :\n"
        f"        {finding.column}: {{traitement: non-personnel, justification: \"…\"}}"
    )


def _refuse_leftovers(
    data: CheckedData, treatments: dict[str, Treatment], untouched: dict[str, Any]
) -> None:
    exempt = frozenset(c for c, t in treatments.items() if t.kind == "non-personnel")
    generalised = {c for c, t in treatments.items() if t.kind == "generaliser"}
    report = Report()
    scanned = scan_or_refuse(data.typed, data.geometry is not None, exempt, untouched)
    for finding in scanned.findings:
        if finding.column in exempt or (
            finding.kind == "coordonnees-individuelles" and finding.column in generalised
        ):
            continue
        report.add(
            Problem(
                STAGE,
                "traitement-insuffisant",
                f"Après le traitement déclaré, la colonne contient encore des "
                f"{finding.label} ({finding.count} valeur(s)). "
                + (f"{finding.detail} " if finding.detail else "")
                + "Choisissez un traitement qui les retire (supprimer, pseudonymiser, "
                "generaliser ou masquer).",
                column=finding.column,
            )
        )
    if not report.valid:
        raise SubmissionRejected(report)


def _geometry_follows_columns(
    data: CheckedData, table: pa.Table, geometry: gpd.GeoSeries | None, treatments: dict
) -> CheckedData:
    """A map drawn from columns shows what the treated columns say: points rebuilt from
    treated coordinates, no map at all when a treated shape column cannot be redrawn."""
    columns = data.geometry_columns or {}
    named = [columns.get(role) for role in ("x", "y", "shape")]
    touched = [c for c in named if c in treatments]
    touched = [c for c in touched if treatments[c].kind != "non-personnel"]
    if not touched:
        return replace(data, typed=table, geometry=geometry)
    points = _points_from(table, columns.get("x"), columns.get("y"), data.crs)
    if points is None:
        return replace(data, typed=table, geometry=None, crs=None, geometry_columns=None)
    return replace(data, typed=table, geometry=points)


def _points_from(
    table: pa.Table, x: str | None, y: str | None, crs: int | None
) -> gpd.GeoSeries | None:
    if x is None or y is None or x not in table.column_names or y not in table.column_names:
        return None
    try:
        xs = pc.cast(table.column(x), pa.float64()).to_numpy().astype(float)
        ys = pc.cast(table.column(y), pa.float64()).to_numpy().astype(float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    known = np.isfinite(xs) & np.isfinite(ys)
    geometries = np.full(len(xs), None, dtype=object)
    geometries[known] = shapely.points(xs[known], ys[known])
    return gpd.GeoSeries(geometries, crs=f"EPSG:{crs}")


# --- treatments ------------------------------------------------------------------------------


def _apply(
    table: pa.Table,
    geometry: gpd.GeoSeries | None,
    crs: int | None,
    treatment: Treatment,
    key: bytes,
    centre: tuple | None,
) -> tuple[pa.Table, gpd.GeoSeries | None, int]:
    name = treatment.column
    if name == "geometry":
        return (table, *_treat_geometry(geometry, crs, treatment, centre))
    column = table.column(name).combine_chunks()
    present = len(column) - column.null_count
    if treatment.kind == "non-personnel":
        return table, geometry, 0
    if treatment.kind == "supprimer":
        return table.drop_columns([name]), geometry, present
    if treatment.kind == "pseudonymiser":
        treated = pseudonymise(column, key)
    elif treatment.kind == "masquer":
        treated = redact(column)
    else:
        treated = generalise(column, treatment)
    changed = pc.sum(
        pc.fill_null(
            pc.not_equal(pc.cast(column, pa.string()), pc.cast(treated, pa.string())), False
        )
    ).as_py()
    position = table.column_names.index(name)
    return table.set_column(position, name, treated), geometry, int(changed or 0)


def pseudonymise(column: pa.Array, key: bytes) -> pa.Array:
    """Keyed HMAC-SHA256 of each value: stable across versions, so joins keep working.
    Computed once per distinct value."""
    encoded = column.dictionary_encode()
    digests = [
        hmac.digest(key, str(v).encode(), "sha256").hex()[:20]
        for v in encoded.dictionary.to_pylist()
    ]
    return pc.take(pa.array(digests, pa.string()), encoded.indices)


def redact(column: pa.Array) -> pa.Array:
    """Replace every personal match inside free text by a label saying what was there
    (worked out once per distinct text, then mapped back onto the rows)."""
    text = pc.cast(column, pa.string())
    distinct = pc.unique(pc.drop_null(text))
    if len(distinct) < len(text):
        redacted = _redact_each(distinct)
        changed = pc.not_equal(distinct, redacted)
        replacements = dict(
            zip(
                pc.filter(distinct, changed).to_pylist(),
                pc.filter(redacted, changed).to_pylist(),
                strict=True,
            )
        )
        return _replace_values(text, replacements) if replacements else text
    return _redact_each(text)


def _redact_each(text: pa.Array) -> pa.Array:
    for code in ("courriel", "iban", "nir", "telephone", "plaque", "adresse", "date-naissance"):
        kind = personal.KINDS[code]
        if kind.confirm is None:
            text = pc.replace_substring_regex(text, kind.pattern, kind.redaction)
        elif pc.any(personal.matching_mask(text, code)).as_py():
            text = _redact_confirmed(text, code)
    found = names.names_in_texts(pc.unique(pc.drop_null(text)).to_pylist())
    if found:
        text = _replace_values(text, {v: _redact_names(v, spans) for v, spans in found.items()})
    return text


def _replace_values(text: pa.Array, replacements: dict[str, str | None]) -> pa.Array:
    """`text` with each value found in `replacements` replaced, vectorised (the work per
    value is done once per distinct value)."""
    keys = pa.array(list(replacements), pa.string())
    positions = pc.index_in(text, value_set=keys)
    replaced = pc.take(pa.array(list(replacements.values()), pa.string()), positions)
    return pc.if_else(pc.is_valid(positions), replaced, text)


def _redact_confirmed(text: pa.Array, code: str) -> pa.Array:
    """Redact the confirmed matches, touching only the values that hold one."""
    kind, regex = personal.KINDS[code], personal.python_regex(code)
    canonical = re.compile(kind.canonical) if kind.canonical else None

    def confirmed(match: str) -> bool:
        return bool(canonical and canonical.fullmatch(match)) or kind.confirm(match)

    holding = pc.unique(pc.filter(text, personal.matching_mask(text, code))).to_pylist()
    return _replace_values(
        text,
        {
            v: regex.sub(lambda m: kind.redaction if confirmed(m.group(0)) else m.group(0), v)
            for v in holding
        },
    )


def _redact_names(value: str | None, spans: list[tuple[int, int]] | None) -> str | None:
    if value is None or not spans:
        return value
    for start, end in sorted(spans, reverse=True):
        value = value[:start] + personal.KINDS["nom"].redaction + value[end:]
    return value


def generalise(column: pa.Array, treatment: Treatment) -> pa.Array:
    if treatment.level in CODE_LEVELS:  # a code, even when read as a number
        return _coarser_code(pc.cast(column, pa.string()), treatment.level)
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        year = pc.cast(pc.year(column), pa.string())
        if treatment.level != "mois":
            return year
        month = pc.utf8_lpad(pc.cast(pc.month(column), pa.string()), 2, "0")
        return pc.binary_join_element_wise(year, month, "-")
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        width = treatment.band or 10
        low = pc.multiply(pc.floor(pc.divide(pc.cast(column, pa.float64()), width)), width)
        low = pc.cast(low, pa.int64())
        high = pc.add(low, width - 1)
        return pc.binary_join_element_wise(
            pc.cast(low, pa.string()), pc.cast(high, pa.string()), "-"
        )
    # Addresses: the street without its number.
    pattern = rf"(?i)^\s*\d{{1,4}}\s?(bis|ter|b)?,?\s+(({personal.STREET_WORDS})\b)"
    return pc.replace_substring_regex(pc.cast(column, pa.string()), pattern, r"\2")


CODE_LEVELS = {"departement", "commune"}


def _coarser_code(codes: pa.Array, level: str) -> pa.Array:
    """A postcode, INSEE or IRIS code reduced to its département (2 characters, 3 overseas)
    or, for an IRIS code, to its commune (5 characters)."""
    if level == "commune":
        return pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(codes), 0, 5)
    trimmed = pc.utf8_trim_whitespace(codes)
    overseas = pc.match_substring_regex(trimmed, r"^97")
    return pc.if_else(
        overseas,
        pc.utf8_slice_codeunits(trimmed, 0, 3),
        pc.utf8_slice_codeunits(trimmed, 0, 2),
    )


def _treat_geometry(
    geometry: gpd.GeoSeries | None, crs: int | None, treatment: Treatment, centre: tuple | None
) -> tuple[gpd.GeoSeries | None, int]:
    if geometry is None or treatment.kind == "non-personnel":
        return geometry, 0
    if treatment.kind != "generaliser":
        raise SubmissionRejected(
            _single(
                "traitement-inadapte",
                "La géométrie ne peut qu'être généralisée "
                "(« generaliser » avec « grille_m » ou "
                "« niveau: commune »).",
                "geometry",
            )
        )
    if treatment.level == "commune":
        if centre is None:
            raise SubmissionRejected(
                _single(
                    "centre-inconnu", "Le centre de la commune n'est pas configuré.", "geometry"
                )
            )
        point = gpd.GeoSeries([Point(*centre)], crs=4326).to_crs(crs).iloc[0]
        return gpd.GeoSeries([point] * len(geometry), crs=geometry.crs), len(geometry)
    size = treatment.grid_m or DEFAULT_GRID_M
    metric = geometry.to_crs(METRIC_CRS).centroid
    snapped = gpd.GeoSeries(
        gpd.points_from_xy(
            (np.floor(metric.x / size) + 0.5) * size, (np.floor(metric.y / size) + 0.5) * size
        ),
        crs=METRIC_CRS,
    ).to_crs(geometry.crs)
    return snapped, len(geometry)


def _coordinate_pair(
    table: pa.Table, treatments: dict[str, Treatment]
) -> tuple[str, str, Treatment] | None:
    """The latitude and longitude columns declared to be generalised, together."""
    generalised = {
        c: t for c, t in treatments.items() if t.kind == "generaliser" and c in table.column_names
    }
    lat = [c for c in generalised if personal.coordinate_axis(c) == "lat"]
    lon = [c for c in generalised if personal.coordinate_axis(c) == "lon"]
    if not lat and not lon:
        return None
    if len(lat) != 1 or len(lon) != 1:
        raise SubmissionRejected(
            _single(
                "coordonnees-a-generaliser-ensemble",
                "Latitude et longitude se généralisent ensemble : déclarez « generaliser » (avec "
                "« grille_m » ou « niveau: commune ») pour les deux colonnes.",
                (lat + lon)[0],
            )
        )
    return lat[0], lon[0], generalised[lat[0]]


def _generalise_lat_lon(
    table: pa.Table, lat: str, lon: str, treatment: Treatment, centre: tuple | None
) -> tuple[pa.Table, int]:
    """WGS84 coordinates to the centre of a grid cell of N metres (Lambert-93), or the commune."""
    from pyproj import Transformer

    latitudes = table.column(lat).to_numpy().astype(float)
    longitudes = table.column(lon).to_numpy().astype(float)
    present = ~(np.isnan(latitudes) | np.isnan(longitudes))
    if treatment.level == "commune":
        if centre is None:
            raise SubmissionRejected(
                _single("centre-inconnu", "Le centre de la commune n'est pas configuré.", lat)
            )
        new_lon = np.where(present, centre[0], np.nan)
        new_lat = np.where(present, centre[1], np.nan)
    else:
        size = treatment.grid_m or DEFAULT_GRID_M
        x, y = Transformer.from_crs(4326, METRIC_CRS, always_xy=True).transform(
            longitudes, latitudes
        )
        x, y = (np.floor(x / size) + 0.5) * size, (np.floor(y / size) + 0.5) * size
        new_lon, new_lat = Transformer.from_crs(METRIC_CRS, 4326, always_xy=True).transform(x, y)
    for name, values in ((lat, new_lat), (lon, new_lon)):
        rounded = pa.array(np.round(values, 6), mask=~present, type=pa.float64())
        table = table.set_column(table.column_names.index(name), name, rounded)
    return table, int(present.sum())


def _single(rule: str, message: str, column: str | None) -> Report:
    report = Report()
    report.add(Problem(STAGE, rule, message, column=column))
    return report


def _k_anonymise(
    table: pa.Table, geometry: gpd.GeoSeries | None, spec: dict[str, Any]
) -> tuple[pa.Table, gpd.GeoSeries | None, dict[str, Any]]:
    columns, k = spec["quasi_identifiants"], spec["k"]
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SubmissionRejected(
            _single(
                "quasi-identifiant-absent",
                f"Quasi-identifiant(s) absent(s) du fichier : {', '.join(missing)}.",
                missing[0],
            )
        )
    frame = pd.DataFrame({c: table.column(c).to_pandas() for c in columns}).astype(str)
    sizes = frame.groupby(columns, dropna=False)[columns[0]].transform("size").to_numpy()
    rare = sizes < k
    summary = {"quasi_identifiants": columns, "k": k, "suppression": spec["suppression"]}
    if rare.all():
        raise SubmissionRejected(
            _single(
                "k-anonymat-impossible",
                f"Aucune combinaison de {', '.join(columns)} n'apparaît au moins {k} fois : le "
                "k-anonymat supprimerait toutes les lignes. Généralisez davantage ces colonnes.",
                columns[0],
            )
        )
    if spec["suppression"] == "lignes":
        keep = pa.array(~rare)
        table = table.filter(keep)
        if geometry is not None:
            geometry = geometry[~rare].reset_index(drop=True)
        remaining = sizes[~rare]
        summary["lignes_supprimees"] = int(rare.sum())
    else:
        for name in columns:
            position = table.column_names.index(name)
            column = table.column(name).combine_chunks()
            nulls = pa.nulls(len(column), column.type)
            table = table.set_column(position, name, pc.if_else(pa.array(rare), nulls, column))
        remaining = sizes[~rare]
        summary["cellules_supprimees"] = int(rare.sum()) * len(columns)
    summary["k_atteint"] = int(remaining.min()) if len(remaining) else None
    return table, geometry, summary


# --- keys ------------------------------------------------------------------------------------


def pseudonym_key(producer: str, secrets_file: Path) -> bytes:
    """The producer's HMAC key: from OPENDATA_PSEUDONYM_KEY_<PRODUCER>, else the secrets file
    (created with random keys on first use, readable by its owner only)."""
    variable = "OPENDATA_PSEUDONYM_KEY_" + re.sub(r"[^A-Z0-9]", "_", producer.upper())
    if os.environ.get(variable):
        return os.environ[variable].encode()
    keys: dict[str, str] = {}
    if secrets_file.is_file():
        keys = yaml.safe_load(secrets_file.read_text(encoding="utf-8")) or {}
    if producer not in keys:
        keys[producer] = secrets.token_hex(32)
        secrets_file.parent.mkdir(parents=True, exist_ok=True)
        secrets_file.touch(mode=0o600, exist_ok=True)
        secrets_file.write_text(yaml.safe_dump(keys), encoding="utf-8")
    return keys[producer].encode()


def with_published_schema(
    schema: dict[str, Any], treatments: dict[str, Treatment]
) -> dict[str, Any]:
    """The Table Schema of what is published, after the treatments."""
    fields = []
    for spec in schema.get("fields", []):
        treatment = treatments.get(spec["name"])
        if treatment is None or treatment.kind == "non-personnel":
            fields.append(spec)
        elif treatment.kind == "supprimer":
            continue
        elif treatment.kind == "pseudonymiser":
            fields.append(
                {
                    "name": spec["name"],
                    "type": "string",
                    "description": "valeur pseudonymisée (HMAC-SHA256)",
                }
            )
        elif treatment.kind == "generaliser" and spec.get("type") in {"date", "datetime"}:
            fields.append(
                {"name": spec["name"], "type": "yearmonth" if treatment.level == "mois" else "year"}
            )
        elif treatment.kind == "generaliser" and spec.get("type") in {"integer", "number"}:
            fields.append(
                {"name": spec["name"], "type": "string", "description": "tranche de valeurs"}
            )
        else:
            fields.append({**spec, "type": "string"})
    published = {**schema, "fields": fields}
    key = published.get("primaryKey")
    names = {f["name"] for f in fields}
    if key and not set([key] if isinstance(key, str) else key) <= names:
        published.pop("primaryKey")
    return published


def mask_personal_values(report: Report, table: pa.Table, metadata: dict[str, Any]) -> Report:
    """The same report, saying nothing of the values of personal columns: a problem there
    keeps its row, column and rule, and a message that quotes no value."""
    columns = set(metadata.get("personal") or {}) | personal.person_like_columns(table)
    masked = Report(rows_checked=report.rows_checked)
    masked.counts.update(report.counts)
    for problem in report.problems:
        named = set((problem.column or "").split(", "))  # a primary key names its columns
        if named & columns:
            message = (
                f"Valeur non conforme à la règle « {problem.rule} » (valeur masquée : "
                "la colonne contient des données personnelles)."
            )
            problem = Problem(problem.stage, problem.rule, message, problem.row, problem.column)
        masked.problems.append(problem)
    return masked
