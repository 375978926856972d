"""Check metadata: parse a producer's YAML metadata file into a DCAT-shaped record.

Producers write French keys (English ones are accepted too). The record's
field names follow DCAT / DCAT-AP terms, listed in `DCAT_TERMS`, so the DCAT
export is a view of the record rather than a translation.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from core import clock
from core.problems import Problem, Report, SubmissionRejected
from core.safe_yaml import UnsafeYaml, read_producer_yaml, short_error
from core.sources import check_source
from core.vocabularies import (
    EMAIL_PATTERN,
    SLUG_PATTERN,
    Frequency,
    find_frequency,
    find_theme,
    frequency_choices,
    normalise_label,
    theme_choices,
)
from pipelines import national_schemas
from pipelines.anonymise import parse_declarations, parse_k_anonymity

STAGE = "metadonnees"

# Internal field -> DCAT term it carries.
DCAT_TERMS = {
    "identifier": "dct:identifier",
    "title": "dct:title",
    "description": "dct:description",
    "publisher": "dct:publisher",
    "licence": "dct:license",
    "accrual_periodicity": "dct:accrualPeriodicity",
    "delivery": "dct:provenance",
    "modified": "dct:modified",
    "keywords": "dcat:keyword",
    "themes": "dcat:theme",
    "contact": "dcat:contactPoint",
    "crs": "dct:conformsTo",
    "spatial": "dct:spatial",
    "language": "dct:language",
}

# Keys producers may write -> internal field.
KEY_ALIASES = {
    "identifiant": "identifier",
    "identifier": "identifier",
    "titre": "title",
    "title": "title",
    "description": "description",
    "nature": "description",
    "producteur": "publisher",
    "source": "publisher",
    "commune": "publisher",
    "publisher": "publisher",
    "licence": "licence",
    "license": "licence",
    "frequence": "accrual_periodicity",
    "frequence_mise_a_jour": "accrual_periodicity",
    "frequency": "accrual_periodicity",
    "modalites_livraison": "delivery",
    "livraison": "delivery",
    "periodicite_livraison": "delivery",
    "delivery": "delivery",
    "date_mise_a_jour": "modified",
    "derniere_mise_a_jour": "modified",
    "modified": "modified",
    "mots_cles": "keywords",
    "keywords": "keywords",
    "theme": "themes",
    "themes": "themes",
    "contact": "contact",
    "systeme_coordonnees": "crs",
    "projection": "crs",
    "crs": "crs",
    "colonnes_geographiques": "geometry_columns",
    "geometry_columns": "geometry_columns",
    "couverture_spatiale": "spatial",
    "spatial": "spatial",
    "schema": "schema",
    "langue": "language",
    "language": "language",
    "acces": "access",
    "access": "access",
    "donnees_personnelles": "personal",
    "personal_data": "personal",
    "k_anonymat": "k_anonymity",
    "k_anonymity": "k_anonymity",
}

REQUIRED_FIELDS = {
    "title": "titre",
    "description": "description",
    "licence": "licence",
    "accrual_periodicity": "frequence",
    "delivery": "modalites_livraison",
    "modified": "date_mise_a_jour",
    "keywords": "mots_cles",
    "contact": "contact",
}


# Coordinate reference systems accepted from producers, with their usual names.
ACCEPTED_CRS = {
    4326: ("WGS 84", ("wgs84", "wgs 84", "gps")),
    2154: ("RGF93 v1 / Lambert-93", ("lambert 93", "lambert93", "l93", "rgf93 lambert 93")),
    3946: ("RGF93 v1 / CC46", ("cc46", "rgf93 cc46", "conique conforme 46")),
    4171: ("RGF93 v1 (géographique)", ("rgf93", "rgf93 geographique")),
}

# `schema: {nom: …, version: …}`: a national schema of schema.data.gouv.fr (issue #15).
NATIONAL_SCHEMA_KEYS = {"nom": "name", "name": "name", "version": "version"}


@dataclass(frozen=True)
class Contact:
    name: str
    email: str


@dataclass
class Metadata:
    identifier: str
    title: str
    description: str
    publisher: str
    licence: Any  # as written by the producer; resolved by the licence stage
    accrual_periodicity: str  # EU frequency code
    delivery: str
    modified: date
    keywords: list[str]
    themes: list[str]
    contact: Contact
    crs: int | None = None
    spatial: str | None = None
    # A Table Schema file, relative to the metadata file; or the national schema followed
    # (issue #15): {nom, version, titre, url, url_schema}, its version pinned at this stage.
    schema: str | dict[str, str] | None = None
    language: str = "fr"
    access: str = "public"  # public | restreint (signed-in users) | agents (public agents)
    personal: dict[str, dict[str, Any]] = field(default_factory=dict)  # column -> treatment
    k_anonymity: dict[str, Any] | None = None
    source: dict[str, str] | None = None  # declared source for pull delivery (issue #7)
    geometry_columns: dict[str, str] | None = None  # {x, y} or {geometrie}: a table's positions

    @property
    def frequency(self) -> Frequency:
        frequency = find_frequency(self.accrual_periodicity)
        assert frequency is not None
        return frequency

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["modified"] = self.modified.isoformat()
        for optional in ("source", "geometry_columns"):
            if record[optional] is None:
                del record[optional]  # records of datasets without them stay as they were
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Metadata:
        values = dict(record)
        values["modified"] = date.fromisoformat(values["modified"])
        values["contact"] = Contact(**values["contact"])
        return cls(**values)

    def to_dcat(self) -> dict[str, Any]:
        """The record keyed by DCAT terms."""
        record = self.to_dict()
        return {term: record[name] for name, term in DCAT_TERMS.items()}


def crs_code(value: Any) -> int | None:
    """EPSG code of an accepted CRS written as 'EPSG:3946', 3946, 'CC46'…; None if not accepted."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"(?:epsg:?|urn:ogc:def:crs:epsg::)?\s*(\d{4,5})", text)
    if match:
        code = int(match.group(1))
        return code if code in ACCEPTED_CRS else None
    for code, (name, synonyms) in ACCEPTED_CRS.items():
        if text == name.lower() or text in synonyms:
            return code
    return None


def accepted_crs_list() -> str:
    return ", ".join(f"EPSG:{code} ({name})" for code, (name, _) in ACCEPTED_CRS.items())


def read_metadata_file(path: Path, producer: str, default_identifier: str) -> Metadata:
    """Parse and check a metadata file; raise SubmissionRejected listing every problem."""
    try:
        document = read_producer_yaml(path)
    except FileNotFoundError as error:
        raise _rejection(
            "fichier-absent", f"Fichier de métadonnées introuvable : {path.name}"
        ) from error
    except UnsafeYaml as error:
        raise _rejection("yaml-refuse", str(error)) from error
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise _rejection(
            "yaml-invalide",
            f"Le fichier de métadonnées {path.name} n'est pas un YAML lisible en UTF-8 : {error}",
        ) from error
    if not isinstance(document, dict):
        raise _rejection(
            "yaml-invalide", "Le fichier de métadonnées doit contenir des paires « clé: valeur »."
        )
    return parse_metadata(document, producer, default_identifier)


def partial_metadata(path: Path) -> dict[str, Any]:
    """The fields of a refused metadata file that are valid, under their internal names
    (and the licence as written): the later stages' checks can still run on the data, so
    that one report tells the producer everything."""
    try:
        document = read_producer_yaml(path)
    except (OSError, ValueError, yaml.YAMLError):  # UnsafeYaml and UnicodeDecodeError included
        return {}
    if not isinstance(document, dict):
        return {}
    values, record, _report = _fields(document)
    return {**record, "licence": values.get("licence")}


def _fields(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Report]:
    """The document's values by internal name, those that parse, and the problems found."""
    report = Report()
    values: dict[str, Any] = {}
    for key, value in document.items():
        name = KEY_ALIASES.get(str(key).strip().lower())
        if name == "publisher" and isinstance(value, dict):
            name = "source"  # `source: {type: …, url: …}`: a source to pull from
        if name is None:
            report.add(
                _problem(
                    "cle-inconnue",
                    f"Clé « {str(key)[:60]} » inconnue. Clés acceptées : {_accepted_keys()}.",
                    column=str(key)[:60],
                )
            )
        elif value not in (None, "", []):
            values[name] = value

    for name, french_key in REQUIRED_FIELDS.items():
        if name not in values:
            report.add(
                _problem(
                    "champ-obligatoire",
                    f"Le champ « {french_key} » est obligatoire.",
                    column=french_key,
                )
            )

    record: dict[str, Any] = {}
    for name, parser in _PARSERS.items():
        if name in values:
            try:
                record[name] = parser(values[name])
            except ValueError as error:
                message = short_error(error)  # a message never repeats a long input
                report.add(
                    _problem("valeur-invalide", message, column=name, value=str(values[name])[:200])
                )
    return values, record, report


def parse_metadata(document: dict[str, Any], producer: str, default_identifier: str) -> Metadata:
    values, record, report = _fields(document)

    source = None
    if "source" in values:  # `source: {type: …, url: …}`: a source to pull from (issue #7)
        source, problems = check_source(values["source"])
        for message in problems:
            report.add(_problem("source-invalide", message, column="source"))

    declared = values.get("publisher")
    if declared is not None and str(declared).strip().lower() != producer:
        report.add(
            _problem(
                "producteur-different",
                f"Le producteur déclaré « {declared} » n'est pas la commune qui soumet "
                f"(« {producer} »). "
                "Une commune ne publie que ses propres données.",
                column="producteur",
            )
        )
    if "identifier" not in record:
        try:
            record["identifier"] = _parse_identifier(default_identifier)
        except ValueError as error:
            report.add(_problem("valeur-invalide", str(error), column="identifiant"))
    if not report.valid:
        raise SubmissionRejected(report)
    return Metadata(
        identifier=record["identifier"],
        title=record["title"],
        description=record["description"],
        publisher=producer,
        licence=values["licence"],
        accrual_periodicity=record["accrual_periodicity"],
        delivery=record["delivery"],
        modified=record["modified"],
        keywords=record["keywords"],
        themes=record.get("themes", []),
        contact=record["contact"],
        crs=record.get("crs"),
        spatial=record.get("spatial"),
        schema=record.get("schema"),
        language=record.get("language", "fr"),
        access=record.get("access", "public"),
        personal=record.get("personal", {}),
        k_anonymity=record.get("k_anonymity"),
        source=source,
        geometry_columns=record.get("geometry_columns"),
    )


def _accepted_keys() -> str:
    return ", ".join(sorted(set(KEY_ALIASES)))


def _problem(rule: str, message: str, **where: Any) -> Problem:
    return Problem(stage=STAGE, rule=rule, message=message, **where)


def _rejection(rule: str, message: str) -> SubmissionRejected:
    report = Report()
    report.add(_problem(rule, message))
    return SubmissionRejected(report)


# Bounds on what a producer writes: a page shows them, feeds and catalogues repeat them.
MAX_TITLE = 250
MAX_DESCRIPTION = 20_000
MAX_TEXT = 2_000
MAX_KEYWORDS = 50
MAX_KEYWORD = 100


def _parse_text(value: Any, limit: int = MAX_TEXT) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError("Un texte est attendu, pas une liste ni un dictionnaire.")
    text = str(value).strip()
    if not text:
        raise ValueError("Texte vide.")
    if len(text) > limit:
        raise ValueError(f"Texte de {len(text)} caractères : {limit} au plus.")
    return text


def _parse_title(value: Any) -> str:
    return _parse_text(value, MAX_TITLE)


def _parse_description(value: Any) -> str:
    return _parse_text(value, MAX_DESCRIPTION)


def _parse_identifier(value: Any) -> str:
    text = str(value).strip()
    if not SLUG_PATTERN.fullmatch(text) or len(text) > 80:
        raise ValueError(
            f"Identifiant « {text} » invalide : lettres minuscules sans accent, chiffres et "
            "tirets uniquement (ex. « equipements-sportifs »)."
        )
    return text


def _parse_frequency(value: Any) -> str:
    frequency = find_frequency(str(value))
    if frequency is None:
        raise ValueError(
            f"Fréquence « {value} » inconnue. Valeurs acceptées (vocabulaire européen) : "
            f"{frequency_choices()}."
        )
    return frequency.code


def _parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        parsed = value.date()
    elif isinstance(value, date):
        parsed = value
    else:
        text = str(value).strip()
        for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                parsed = datetime.strptime(text, fmt).date()
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"Date « {text} » illisible : écrivez AAAA-MM-JJ ou JJ/MM/AAAA.")
    if parsed > clock.today():
        raise ValueError(f"La date de mise à jour {parsed.isoformat()} est dans le futur.")
    return parsed


def _parse_list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value).split(",")
    cleaned = [str(item).strip() for item in items if str(item).strip()]
    if not cleaned:
        raise ValueError("Liste vide.")
    if len(cleaned) > MAX_KEYWORDS:
        raise ValueError(f"Liste de {len(cleaned)} éléments : {MAX_KEYWORDS} au plus.")
    longest = max(cleaned, key=len)
    if len(longest) > MAX_KEYWORD:
        raise ValueError(f"Élément de {len(longest)} caractères : {MAX_KEYWORD} au plus.")
    return cleaned


def _parse_themes(value: Any) -> list[str]:
    themes = []
    for item in _parse_list(value):
        code = find_theme(item)
        if code is None:
            raise ValueError(f"Thème « {item} » inconnu. Thèmes acceptés : {theme_choices()}.")
        themes.append(code)
    return themes


def _parse_contact(value: Any) -> Contact:
    if isinstance(value, dict):
        name = str(value.get("nom") or value.get("name") or "").strip()
        email = str(value.get("email") or value.get("courriel") or "").strip()
    else:
        name, email = "", str(value).strip()
    if not EMAIL_PATTERN.fullmatch(email):
        raise ValueError(
            f"Contact sans adresse électronique valide (« {email} ») : "
            "écrivez « contact: {nom: Service…, email: …@… } »."
        )
    return Contact(name=name or email, email=email)


def _parse_crs(value: Any) -> int:
    code = crs_code(value)
    if code is None:
        raise ValueError(
            f"Système de coordonnées « {value} » non accepté. Systèmes acceptés : "
            f"{accepted_crs_list()}."
        )
    return code


GEOMETRY_COLUMN_ALIASES = {"x": "x", "longitude": "x", "y": "y", "latitude": "y",
                           "geometrie": "geometrie", "wkt": "geometrie", "geojson": "geometrie"}


def _parse_geometry_columns(value: Any) -> dict[str, str]:
    """`{x: colonne, y: colonne}` (or longitude/latitude) or `{geometrie: colonne}`."""
    usage = (
        "écrivez « colonnes_geographiques: {x: <colonne des longitudes ou X>, y: <colonne "
        "des latitudes ou Y>} » ou « colonnes_geographiques: {geometrie: <colonne WKT ou "
        "GeoJSON>} »."
    )
    if not isinstance(value, dict):
        raise ValueError(f"Colonnes géographiques mal écrites : {usage}")
    declared = {}
    for key, column in value.items():
        role = GEOMETRY_COLUMN_ALIASES.get(normalise_label(str(key)))
        if role is None or not isinstance(column, str) or not column.strip():
            raise ValueError(f"Colonnes géographiques : clé « {key} » inattendue ; {usage}")
        declared[role] = column.strip()
    if set(declared) not in ({"x", "y"}, {"geometrie"}):
        raise ValueError(f"Colonnes géographiques incomplètes : {usage}")
    return declared


def _parse_schema(value: Any) -> str | dict[str, str]:
    """`schema: fichier.json` beside the metadata, or `schema: {nom: …, version: …}`, a
    national schema of the platform's registry (its latest version if none is given)."""
    if not isinstance(value, dict):
        return _parse_text(value)
    usage = "écrivez « schema: {nom: etalab/schema-irve-statique, version: 2.3.1} »"
    reference: dict[str, str] = {}
    for key, item in value.items():
        role = NATIONAL_SCHEMA_KEYS.get(normalise_label(str(key)))
        if role is None:
            raise ValueError(f"Schéma national : clé « {key} » inattendue ; {usage}.")
        if item not in (None, ""):
            reference[role] = str(item).strip()
    if not reference.get("name"):
        raise ValueError(f"Schéma national sans nom : {usage}.")
    return national_schemas.resolve(reference["name"], reference.get("version")).reference()


def _parse_access(value: Any) -> str:
    text = normalise_label(str(value))
    if text in {"public", "ouvert"}:
        return "public"
    if text in {"restreint", "restricted", "reserve"}:
        return "restreint"
    if text in {"agents", "agents publics", "public agents", "reserve aux agents"}:
        return "agents"
    raise ValueError(f"Accès « {value} » inconnu : « public », « restreint » ou « agents ».")


_PARSERS = {
    "identifier": _parse_identifier,
    "title": _parse_title,
    "description": _parse_description,
    "accrual_periodicity": _parse_frequency,
    "delivery": _parse_text,
    "modified": _parse_date,
    "keywords": _parse_list,
    "themes": _parse_themes,
    "contact": _parse_contact,
    "crs": _parse_crs,
    "geometry_columns": _parse_geometry_columns,
    "spatial": _parse_text,
    "schema": _parse_schema,
    "language": _parse_text,
    "access": _parse_access,
    "personal": parse_declarations,
    "k_anonymity": parse_k_anonymity,
}
