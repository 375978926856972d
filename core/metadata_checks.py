"""The checks of a producer's metadata file, shared by the pipeline's metadata stage
(`pipelines.metadata`) and the upload API (`catalog.web.routes.uploads`): the same rules, the
same French words, whether a commune drops a folder or uploads over HTTP.

Pure checks of a parsed YAML document (no file of the submission is read): the keys a
producer may write (French ones, English ones accepted too), the required fields, each
value parsed to what the record keeps, every problem found listed in one `Report` (never
only the first). A misspelt key gets the closest accepted one as a suggestion
(« vouliez-vous dire « contact » ? »), as does an unreadable two-digit-year date. A
national schema reference is resolved in the registry the platform keeps offline
(`core.national_registry`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from core import clock
from core.national_registry import resolve
from core.problems import Problem, Report, SubmissionRejected
from core.safe_yaml import UnsafeYaml, load_producer_yaml, short_error
from core.sources import check_source
from core.vocabularies import (
    EMAIL_PATTERN,
    SLUG_PATTERN,
    find_frequency,
    find_theme,
    frequency_choices,
    normalise_label,
    theme_choices,
)

STAGE = "metadonnees"

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

# The keys a suggestion offers first: the French ones the guide teaches.
FRENCH_KEYS = (
    "identifiant",
    "titre",
    "description",
    "producteur",
    "licence",
    "frequence",
    "modalites_livraison",
    "date_mise_a_jour",
    "mots_cles",
    "theme",
    "contact",
    "systeme_coordonnees",
    "colonnes_geographiques",
    "couverture_spatiale",
    "schema",
    "langue",
    "acces",
    "donnees_personnelles",
    "k_anonymat",
)

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

# Personal data declared in the metadata (`donnees_personnelles`, `k_anonymat`), treated by
# the pipeline's anonymisation stage.
TREATMENTS = ("supprimer", "pseudonymiser", "generaliser", "masquer", "non-personnel")
DEFAULT_K = 11


@dataclass(frozen=True)
class Contact:
    name: str
    email: str


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


@dataclass
class CheckedMetadata:
    """A metadata document checked: its values by internal name (as written), those that
    parse, the declared source, and every problem found."""

    values: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    source: dict[str, str] | None = None
    report: Report = field(default_factory=Report)


def load_metadata(content: bytes, name: str) -> dict[str, Any]:
    """A metadata file's YAML as a mapping; SubmissionRejected (in French) when it is not
    one: too large, with aliases, not YAML, not UTF-8, or not « clé: valeur » pairs."""
    try:
        document = load_producer_yaml(content, name)
    except (UnsafeYaml, yaml.YAMLError, UnicodeDecodeError) as error:
        raise unreadable(error, name) from error
    return mapping_or_rejection(document)


def unreadable(error: Exception, name: str) -> SubmissionRejected:
    """The rejection of a metadata file YAML cannot read (safe_yaml's French message)."""
    if isinstance(error, UnsafeYaml):
        return _rejection("yaml-refuse", str(error))
    return _rejection(
        "yaml-invalide",
        f"Le fichier de métadonnées {name} n'est pas un YAML lisible en UTF-8 : {error}",
        row=getattr(error, "line", None),
    )


def mapping_or_rejection(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise _rejection(
            "yaml-invalide", "Le fichier de métadonnées doit contenir des paires « clé: valeur »."
        )
    return document


def check_metadata(
    document: dict[str, Any], producer: str, default_identifier: str | None
) -> CheckedMetadata:
    """Every check of a metadata document for `producer`'s submission; the identifier, when
    the document has none, is `default_identifier` (the drop folder's name)."""
    checked = check_fields(document)
    values, record, report = checked.values, checked.record, checked.report
    if "source" in values:  # `source: {type: …, url: …}`: a source to pull from (issue #7)
        checked.source, problems = check_source(values["source"])
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
    if "identifier" not in record and default_identifier is not None:
        try:
            record["identifier"] = _parse_identifier(default_identifier)
        except ValueError as error:
            report.add(_problem("valeur-invalide", str(error), column="identifiant"))
    return checked


def check_fields(document: dict[str, Any]) -> CheckedMetadata:
    """The document's values by internal name, those that parse, and the problems found."""
    checked = CheckedMetadata()
    values, report = checked.values, checked.report
    misspelt: dict[str, str] = {}  # accepted key suggested -> key written
    keys: dict[str, str] = {}  # internal name -> the key the producer wrote
    for key, value in document.items():
        written = str(key)[:60]
        name = KEY_ALIASES.get(str(key).strip().lower())
        if name == "publisher" and isinstance(value, dict):
            name = "source"  # `source: {type: …, url: …}`: a source to pull from
        if name is None:
            suggestion = closest_key(written)
            if suggestion:
                misspelt.setdefault(suggestion, written)
            report.add(_unknown_key(written, suggestion))
        elif value not in (None, "", []):
            values[name] = value
            keys[name] = written.strip()

    for name, french_key in REQUIRED_FIELDS.items():
        if name not in values:
            report.add(_missing_field(name, french_key, misspelt))

    for name, parser in _PARSERS.items():
        if name in values:
            try:
                checked.record[name] = parser(values[name])
            except (ValueError, TypeError) as error:
                message = short_error(error)  # a message never repeats a long input
                report.add(
                    _problem(
                        "valeur-invalide",
                        message,
                        column=keys[name],  # as the producer wrote it: « date_mise_a_jour »
                        value=str(values[name])[:200],
                        suggestion=getattr(error, "suggestion", None),
                    )
                )
    return checked


def closest_key(written: str) -> str | None:
    """The accepted key a misspelt one most looks like (the French ones first), if any."""
    folded = "_".join(normalise_label(written).split())
    for candidates in (FRENCH_KEYS, tuple(KEY_ALIASES)):
        if folded in candidates:
            return folded  # « Date mise à jour » is date_mise_a_jour written otherwise
        found = difflib.get_close_matches(folded, candidates, n=1, cutoff=0.75)
        if found:
            return found[0]
    return None


def did_you_mean(suggestion: str) -> str:
    return f"vouliez-vous dire « {suggestion} » ?"


def _unknown_key(written: str, suggestion: str | None) -> Problem:
    hint = f" : {did_you_mean(suggestion)}" if suggestion else "."
    return _problem(
        "cle-inconnue",
        f"Clé « {written} » inconnue{hint} Clés acceptées : {accepted_keys()}.",
        column=written,
        suggestion=suggestion,
    )


def _missing_field(name: str, french_key: str, misspelt: dict[str, str]) -> Problem:
    written = next((w for key, w in misspelt.items() if KEY_ALIASES.get(key) == name), None)
    hint = f" (la clé « {written} » est-elle mal orthographiée ?)" if written else ""
    return _problem(
        "champ-obligatoire",
        f"Le champ « {french_key} » est obligatoire{hint}.",
        column=french_key,
    )


def accepted_keys() -> str:
    return ", ".join(sorted(set(KEY_ALIASES)))


def _problem(rule: str, message: str, **where: Any) -> Problem:
    return Problem(stage=STAGE, rule=rule, message=message, **where)


def _rejection(rule: str, message: str, **where: Any) -> SubmissionRejected:
    report = Report()
    report.add(_problem(rule, message, **where))
    return SubmissionRejected(report)


class InvalidValue(ValueError):
    """A value that does not parse, with the value the producer probably meant."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


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
            raise _unreadable_date(text)
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


GEOMETRY_COLUMN_ALIASES = {
    "x": "x",
    "longitude": "x",
    "y": "y",
    "latitude": "y",
    "geometrie": "geometrie",
    "wkt": "geometrie",
    "geojson": "geometrie",
}


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
    return resolve(reference["name"], reference.get("version")).reference()


def _unreadable_date(text: str) -> InvalidValue:
    """A date written with a two-digit year (`20/11/26`) is not guessed: the producer is
    asked, with the reading that is most likely."""
    two_digits = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{2})", text)
    if two_digits:
        day, month, year = (int(part) for part in two_digits.groups())
        century = 2000 if 2000 + year <= clock.today().year else 1900
        try:
            meant = date(century + year, month, day)
        except ValueError:
            meant = None
        if meant is not None:
            shown = f"{meant:%d/%m/%Y}"
            return InvalidValue(
                f"Date « {text} » illisible : l'année doit s'écrire en entier (AAAA-MM-JJ ou "
                f"JJ/MM/AAAA) ; {did_you_mean(shown)}",
                suggestion=shown,
            )
    return InvalidValue(f"Date « {text} » illisible : écrivez AAAA-MM-JJ ou JJ/MM/AAAA.")


def _parse_access(value: Any) -> str:
    text = normalise_label(str(value))
    if text in {"public", "ouvert"}:
        return "public"
    if text in {"restreint", "restricted", "reserve"}:
        return "restreint"
    if text in {"agents", "agents publics", "public agents", "reserve aux agents"}:
        return "agents"
    raise ValueError(f"Accès « {value} » inconnu : « public », « restreint » ou « agents ».")


def parse_declarations(value: Any) -> dict[str, dict[str, Any]]:
    """Check the `donnees_personnelles` block of a metadata file."""
    if not isinstance(value, dict):
        raise ValueError(
            "« donnees_personnelles » doit associer à chaque colonne un traitement "
            "(ex. « courriel: {traitement: supprimer} »)."
        )
    declarations = {}
    for column, spec in value.items():
        spec = {"traitement": spec} if isinstance(spec, str) else dict(spec or {})
        kind = str(spec.get("traitement", "")).strip().lower().replace("é", "e")
        if kind not in TREATMENTS:
            raise ValueError(
                f"Traitement « {spec.get('traitement')} » inconnu pour la colonne "
                f"« {column} ». Traitements possibles : {', '.join(TREATMENTS)}."
            )
        if kind == "non-personnel" and not str(spec.get("justification", "")).strip():
            raise ValueError(
                f"La colonne « {column} » est déclarée non personnelle sans "
                "justification : ajoutez « justification: … »."
            )
        declarations[str(column)] = {**spec, "traitement": kind}
    return declarations


def parse_k_anonymity(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value.get("quasi_identifiants"):
        raise ValueError(
            "« k_anonymat » doit lister ses « quasi_identifiants » "
            "(et peut préciser « k », 11 par défaut)."
        )
    k = int(value.get("k", DEFAULT_K))
    if k < 2:
        raise ValueError("« k » doit valoir au moins 2.")
    suppress = str(value.get("suppression", "lignes"))
    if suppress not in {"lignes", "cellules"}:
        raise ValueError("« suppression » vaut « lignes » ou « cellules ».")
    return {
        "quasi_identifiants": [str(c) for c in value["quasi_identifiants"]],
        "k": k,
        "suppression": suppress,
    }


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
