"""National schemas by reference (issue #15): the registry refreshed from a catalogue in
schema.data.gouv.fr's format, served here from a local HTTP server; then read offline.

The schema files are real ones from schema.data.gouv.fr, kept in tests/data/national_schemas/
(<owner>-<schema>/<version>/schema.json, with the schema's own valid example). The served
catalogue has the structure of https://schema.data.gouv.fr/schemas.json (as generated in
github.com/etalab/schema.data.gouv.fr, site/.vuepress/public/schemas.json): `schemas`, each
with `name`, `title`, `schema_type`, `schema_url` and `versions` [{version_name, schema_url}].
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyshacl
import pytest
import requests
import yaml
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, RDF

from core.deposit_checks import Received, check_deposit
from core.problems import SubmissionRejected
from opendata.cli import main as cli
from pipelines import national_schemas
from pipelines.metadata import parse_metadata
from pipelines.national_schemas import NationalSchemaError, RefreshError, refresh, resolve

from conftest import METADATA_TEMPLATE, running_catalog

REAL_SCHEMAS = Path(__file__).parent / "data" / "national_schemas"
SHAPES = Path(__file__).resolve().parents[2] / "shared" / "standards" / "dcat-ap-3.0.1"
DECP = "etalab/schema-decp-dpa"
PRENOMS = "scdl/prenoms"


@dataclass
class Site:
    """A folder served over HTTP, with the requests it received and forced answers."""

    root: Path
    base: str = ""
    requests: list[str] = field(default_factory=list)
    forced: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)


def _handler(site: Site) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            site.requests.append(self.path)
            if self.path in site.forced:
                status, headers = site.forced[self.path]
                self.send_response(status)
                for name, value in {"Content-Length": "0", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving_folder(root: Path, host: str = "127.0.0.1") -> Iterator[Site]:
    root.mkdir(parents=True, exist_ok=True)
    site = Site(root)
    server = ThreadingHTTPServer((host, 0), partial(_handler(site), directory=str(root)))
    site.base = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _entry(site: Site, name: str, title: str, versions: list[str], kind: str = "tableschema"):
    """A catalogue entry as schema.data.gouv.fr writes it (absolute URLs on its host)."""
    file = "schema.json" if kind == "tableschema" else "datapackage.json"
    return {
        "name": name,
        "title": title,
        "description": f"Spécification « {title} »",
        "schema_url": f"{site.base}/schemas/{name}/latest/{file}",
        "schema_type": kind,
        "contact": "schema@data.gouv.fr",
        "examples": [],
        "labels": [],
        "consolidation_dataset_id": None,
        "versions": [
            {"version_name": v, "schema_url": f"{site.base}/schemas/{name}/{v}/{file}"}
            for v in versions
        ],
        "external_doc": None,
        "external_tool": None,
        "homepage": f"https://github.com/{name}.git",
    }


def _publish_schema(site: Site, name: str, version: str, source: Path) -> None:
    target = site.root / "schemas" / name / version / "schema.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _real(name: str, version: str) -> Path:
    return REAL_SCHEMAS / name.replace("/", "-") / version / "schema.json"


def write_catalogue(site: Site) -> None:
    """DECP 1.0.0; prénoms listed as 1.1.6 and 1.1.10 (the real 1.1.6 file served under both
    names: the registry must order versions as numbers); a data package, not kept."""
    _publish_schema(site, DECP, "1.0.0", _real(DECP, "1.0.0"))
    for version in ("1.1.6", "1.1.10"):
        _publish_schema(site, PRENOMS, version, _real(PRENOMS, "1.1.6"))
    catalogue = {
        "$schema": "https://opendataschema.frama.io/catalog/schema-catalog.json",
        "version": 1,
        "schemas": [
            _entry(site, DECP, "Déclaration de profil d'acheteur", ["1.0.0"]),
            _entry(site, PRENOMS, "Prénoms des nouveaux-nés", ["1.1.6", "1.1.10"]),
            _entry(site, "etalab/schema-irve", "IRVE", ["2.3.1"], kind="datapackage"),
        ],
    }
    (site.root / "schemas.json").write_text(json.dumps(catalogue, ensure_ascii=False))


@pytest.fixture
def catalogue(tmp_path: Path) -> Iterator[Site]:
    with serving_folder(tmp_path / "site") as site:
        write_catalogue(site)
        yield site


def _index(registry: Path) -> str:
    return (registry / "index.json").read_text(encoding="utf-8")


def test_refresh_then_resolve_offline(catalogue: Site, tmp_path: Path):
    registry = tmp_path / "registre"
    registry.mkdir()  # a plain folder, made by hand: replaced as a whole
    (registry / "notes.txt").write_text("ancien contenu")
    refreshed = refresh(f"{catalogue.base}/schemas.json", registry)
    assert (refreshed.schemas, refreshed.versions, refreshed.warnings) == (2, 3, [])
    assert not (registry / "notes.txt").exists()
    assert not any("schema-irve" in path for path in catalogue.requests)  # data package
    assert (registry / DECP / "1.0.0" / "schema.json").is_file()
    catalogue.root.rename(tmp_path / "hors-ligne")  # nothing is read from the catalogue now

    decp = resolve(DECP, "1.0.0", registry)
    assert [f["name"] for f in decp.descriptor["fields"]] == [
        "siretAcheteur",
        "urlProfilAcheteur",
        "urlDCAT",
        "coordonnees",
    ]
    assert decp.reference() == {
        "nom": DECP,
        "version": "1.0.0",
        "titre": "Déclaration de profil d'acheteur",
        "url": f"{catalogue.base}/{DECP}/1.0.0.html",
        "url_schema": f"{catalogue.base}/schemas/{DECP}/1.0.0/schema.json",
    }
    assert resolve(PRENOMS, None, registry).version == "1.1.10"  # latest, as numbers
    assert resolve(PRENOMS, "v1.1.6", registry).version == "1.1.6"
    assert resolve("SCDL/Prenoms", "1.1.6", registry).name == PRENOMS
    assert national_schemas.listing(registry) == [
        {
            "nom": DECP,
            "titre": "Déclaration de profil d'acheteur",
            "versions": ["1.0.0"],
            "derniere": "1.0.0",
        },
        {
            "nom": PRENOMS,
            "titre": "Prénoms des nouveaux-nés",
            "versions": ["1.1.6", "1.1.10"],
            "derniere": "1.1.10",
        },
    ]


def test_unknown_name_or_version_is_explained_in_french(catalogue: Site, tmp_path: Path):
    registry = tmp_path / "registre"
    with pytest.raises(
        NationalSchemaError,
        match="registre des schémas nationaux de la "
        "plateforme est vide.*opendata schemas rafraichir",
    ):
        resolve(DECP, None, registry)
    refresh(f"{catalogue.base}/schemas.json", registry)
    with pytest.raises(NationalSchemaError) as unknown:
        resolve("etalab/schema-decp", None, registry)
    assert str(unknown.value).startswith(
        "Schéma national « etalab/schema-decp » inconnu du registre des schémas nationaux"
    )
    assert "Noms proches : etalab/schema-decp-dpa." in str(unknown.value)
    with pytest.raises(NationalSchemaError, match="Noms proches : scdl/prenoms"):
        resolve("prenoms", None, registry)  # the owner forgotten
    with pytest.raises(NationalSchemaError) as version:
        resolve(PRENOMS, "2.0", registry)
    assert str(version.value) == (
        "Version « 2.0 » inconnue pour le schéma national « scdl/prenoms ». Versions "
        "disponibles : 1.1.6, 1.1.10 (la plus récente : 1.1.10, prise si vous n'indiquez pas "
        "de version)."
    )


def test_failed_refresh_leaves_the_registry_intact(catalogue: Site, tmp_path: Path):
    registry = tmp_path / "registre"
    url = f"{catalogue.base}/schemas.json"
    refresh(url, registry)
    before = _index(registry)
    listed = sorted(p.name for p in tmp_path.iterdir())

    catalogue.forced[f"/schemas/{PRENOMS}/1.1.10/schema.json"] = (503, {})
    with pytest.raises(RefreshError, match="503"):
        refresh(url, registry)
    catalogue.forced.clear()
    (catalogue.root / "schemas.json").write_text("<html>maintenance</html>")
    with pytest.raises(RefreshError, match="pas un JSON lisible"):
        refresh(url, registry)
    with pytest.raises(RefreshError, match="requête impossible"):
        refresh("http://127.0.0.1:9/schemas.json", registry)  # nothing listens there

    assert _index(registry) == before
    assert resolve(PRENOMS, None, registry).version == "1.1.10"
    assert sorted(p.name for p in tmp_path.iterdir()) == listed  # no half-made snapshot left


def test_refresh_stays_on_the_catalogue_host(catalogue: Site, tmp_path: Path):
    """A version elsewhere (listed there, or redirected there) is never fetched; a version
    gone from the catalogue's host keeps the copy the registry had."""
    registry = tmp_path / "registre"
    url = f"{catalogue.base}/schemas.json"
    refresh(url, registry)
    with serving_folder(tmp_path / "ailleurs", host="localhost") as elsewhere:
        catalogue_json = json.loads((catalogue.root / "schemas.json").read_text())
        decp = catalogue_json["schemas"][0]["versions"][0]
        decp["schema_url"] = f"{elsewhere.base}/schema.json"
        (catalogue.root / "schemas.json").write_text(json.dumps(catalogue_json))
        catalogue.forced[f"/schemas/{PRENOMS}/1.1.6/schema.json"] = (
            302,
            {"Location": f"{elsewhere.base}/prenoms.json"},
        )
        refreshed = refresh(url, registry)
        assert elsewhere.requests == []
    assert refreshed.warnings == [
        f"{DECP} 1.0.0 : adresse {elsewhere.base}/schema.json hors de l'hôte du catalogue "
        "(127.0.0.1) : refusée ; copie précédente conservée.",
        f"{PRENOMS} 1.1.6 : adresse {elsewhere.base}/prenoms.json hors de l'hôte du catalogue "
        "(127.0.0.1) : refusée ; copie précédente conservée.",
    ]
    assert resolve(DECP, "1.0.0", registry).descriptor["fields"][0]["name"] == "siretAcheteur"
    # A second refresh switched snapshots: the registry is a link to the newest, and only
    # the previous one (a submission may still be reading it) is kept beside it.
    assert registry.is_symlink()
    assert len([p for p in tmp_path.glob(".registre-*") if p.is_dir()]) == 2


def test_cli_refreshes_and_lists(catalogue: Site, settings, capsys):
    assert cli(["schemas", "lister"]) == 0
    assert "Registre vide" in capsys.readouterr().out
    assert cli(["schemas", "rafraichir", "--catalogue", f"{catalogue.base}/schemas.json"]) == 0
    assert "2 schémas, 3 versions" in capsys.readouterr().out
    assert (settings.data_dir / "schemas-nationaux" / PRENOMS / "1.1.10").is_dir()
    assert cli(["schemas", "liste", "--json"]) == 0
    assert [s["nom"] for s in json.loads(capsys.readouterr().out)] == [DECP, PRENOMS]
    assert cli(["schemas", "rafraichir", "--catalogue", "ftp://exemple.fr/schemas.json"]) == 1
    assert "Registre inchangé" in capsys.readouterr().err


def test_submission_follows_a_national_schema(
    catalogue: Site, settings, store, submit, dataset_folder
):
    refresh(f"{catalogue.base}/schemas.json", settings.national_schemas_dir)
    example = (REAL_SCHEMAS / "etalab-schema-decp-dpa" / "1.0.0" / "exemple-valide.csv").read_text(
        encoding="utf-8"
    )
    reference = f"schema: {{nom: {DECP}}}\n"  # no version: the latest, pinned
    data = dataset_folder("profils.csv", example, name="profils", extra_metadata=reference)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee", outcome.summary()
    dataset = store.get_dataset("ecully-profils")
    page = f"{catalogue.base}/{DECP}/1.0.0.html"
    assert dataset.metadata["schema"]["url"] == page
    assert dataset.metadata["schema"]["version"] == "1.0.0"

    with running_catalog(store) as base:
        html = requests.get(f"{base}/jeux-de-donnees/ecully-profils", timeout=10).text
        turtle = requests.get(f"{base}/api/datasets/ecully-profils/dcat.ttl", timeout=10).text
    assert "Conforme au schéma national" in html
    assert f'<a href="{page}">Déclaration de profil d&#39;acheteur</a>' in html
    assert "version 1.0.0" in html
    graph = Graph().parse(data=turtle, format="turtle")
    assert URIRef(page) in set(graph.objects(None, DCTERMS.conformsTo))
    assert (URIRef(page), RDF.type, DCTERMS.Standard) in graph
    assert graph.value(URIRef(page), DCTERMS.title) == Literal(
        f"Déclaration de profil d'acheteur ({DECP}), version 1.0.0", lang="fr"
    )
    shapes = Graph()
    for name in ("shapes.ttl", "range.ttl"):
        shapes.parse(SHAPES / name)
    conforms, _, text = pyshacl.validate(
        graph, shacl_graph=shapes, inference="none", allow_warnings=True
    )
    assert conforms, text


def test_unknown_national_schema_refuses_the_submission_in_french(
    catalogue: Site, settings, submit, dataset_folder
):
    refresh(f"{catalogue.base}/schemas.json", settings.national_schemas_dir)
    reference = f"schema: {{nom: {DECP}, version: 2.0.0}}\n"
    data = dataset_folder("profils.csv", "siretAcheteur\n1\n", extra_metadata=reference)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    text = outcome.summary()
    assert "Version « 2.0.0 » inconnue pour le schéma national « etalab/schema-decp-dpa »" in text
    assert "Versions disponibles : 1.0.0" in text


def test_metadata_reference_is_checked_and_pinned(catalogue: Site, settings):
    refresh(f"{catalogue.base}/schemas.json", settings.national_schemas_dir)
    document = yaml.safe_load(METADATA_TEMPLATE.format(licence="etalab-2.0"))
    pinned = parse_metadata({**document, "schema": {"nom": PRENOMS}}, "ecully", "prenoms")
    assert pinned.schema["version"] == "1.1.10"
    assert parse_metadata({**document, "schema": "schema.json"}, "ecully", "x").schema == (
        "schema.json"
    )
    for written, message in (
        ({"nom": PRENOMS, "versoin": "1.1.6"}, "clé « versoin » inattendue"),
        ({"version": "1.1.6"}, "Schéma national sans nom"),
    ):
        with pytest.raises(SubmissionRejected) as refused:
            parse_metadata({**document, "schema": written}, "ecully", "prenoms")
        assert message in refused.value.report.to_text()


def test_upload_api_needs_no_schema_file_for_a_national_schema(catalogue: Site, settings):
    refresh(f"{catalogue.base}/schemas.json", settings.national_schemas_dir)
    metadata = METADATA_TEMPLATE.format(licence="etalab-2.0") + "identifiant: profils\n"
    metadata += f"schema: {{nom: {DECP}, version: 1.0.0}}\n"

    def problems(schema: bytes | None) -> dict[str, str]:
        head = b"siretAcheteur\n1\n"
        received = Received("ecully", metadata.encode(), schema, "p.csv", head, len(head), None)
        verdict = check_deposit(received, settings.licenses_dir)
        return {p.rule: p.message for p in verdict.report.problems}

    schema_rules = {"schema-en-double", "schema-absent", "schema-national-introuvable"}
    assert not schema_rules & set(problems(None))
    assert "schéma national" in problems(b'{"fields": []}')["schema-en-double"]


def test_refresh_takes_every_real_schema(tmp_path: Path):
    """The teammates' miniature of the real catalogue (relative URLs, 59 Table Schemas):
    every version lands in the registry and resolves offline."""
    listed = json.loads((REAL_SCHEMAS / "catalog.json").read_text(encoding="utf-8"))["schemas"]
    registry = tmp_path / "registre"
    with serving_folder(REAL_SCHEMAS) as site:
        refreshed = refresh(f"{site.base}/catalog.json", registry)
    assert refreshed.warnings == []
    assert refreshed.schemas == len(listed)
    for entry in listed:
        for version in entry["versions"]:
            found = resolve(entry["name"], version["version_name"], registry)
            assert found.descriptor["fields"], entry["name"]
    assert resolve("etalab/schema-irve-statique", None, registry).version == "2.3.1"
