"""Hostile and broken uploads (issue #9): refused in French, or read as documented; never a
crash, a hang, a file left behind, or a half-publication.

Every file of the corpus (`hostile_corpus.py`, 240+ files) goes through the read and
structure stages (`read_source` then `validate`, as `stage_read` and `stage_structure`
chain them); one file per family, and every file that must be accepted, go through the
whole pipeline with its store; refused resubmissions of a published dataset leave its
published version exactly as it was.
"""

from __future__ import annotations

import faulthandler
import hashlib
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hostile_corpus import Case, build_corpus

import pipelines.read.text
import pipelines.read.xlsx
from core.problems import Report, SubmissionRejected
from pipelines import safety
from pipelines.harvest.errors import SourceError
from pipelines.harvest.http import HttpClient, RetryPolicy
from pipelines.harvest.registry import fetch
from pipelines.read.stage import read_source
from pipelines.schema import infer_schema
from pipelines.validate import validate

CORPUS = build_corpus()
BY_NAME = {case.name: case for case in CORPUS}
FRENCH = re.compile(
    r"(\b(le|la|les|de|des|du|un|une|est|sont|au|aux|en|ne|pas|dans|sans|avec|contient|ligne|"
    r"colonne|objet|fichiers?|cellules?)\b|\b[ld]')",
    re.IGNORECASE,
)
ENGLISH = re.compile(r"\b(the|is not|failed|error|cannot|could not|invalid)\b", re.IGNORECASE)
HANG_SECONDS = 60


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    """A reader that hangs ends the run with every thread's traceback instead of blocking."""
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder the readers extract to, to check they leave nothing in it."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def with_limits(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    modules = {
        "text": pipelines.read.text,
        "xlsx": pipelines.read.xlsx,
        "safety": safety,
    }
    for key, value in case.limits.items():
        module, name = key.split(".")
        monkeypatch.setattr(modules[module], name, value)


def read_and_check(case: Case, path: Path) -> Report:
    """The read stage, then the structure check against the schema inferred at first
    publication: the report the commune would get (valid when nothing is wrong)."""
    try:
        source = read_source(path, case.declared_crs)
    except SubmissionRejected as refusal:
        return refusal.report
    return validate(source, infer_schema(source)).report


def assert_refused_in_french(report: Report, case: Case, *hidden: Path) -> None:
    assert not report.valid, f"{case.name} was accepted"
    rules = {problem.rule for problem in report.problems}
    assert rules & case.rules, f"{case.name}: rules {rules}, expected one of {set(case.rules)}"
    text = report.to_text()
    for problem in report.problems:
        assert FRENCH.search(problem.message), problem.message
        assert not ENGLISH.search(problem.message), problem.message
    for path in hidden:  # no path of the server in what the commune reads
        assert str(path) not in text


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_every_hostile_file_is_refused_in_french_or_read(
    case: Case, tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_limits(case, monkeypatch)
    upload = tmp_path / "depot"
    upload.mkdir()
    path = upload / case.filename
    path.write_bytes(case.content)
    report = read_and_check(case, path)
    if case.refused:
        assert_refused_in_french(report, case, tmp_path)
    else:
        assert report.valid, f"{case.name} ({case.note}): {report.to_text()}"
    assert list(scratch.iterdir()) == [], "a reader left files in its temporary folder"
    assert [p.name for p in upload.iterdir()] == [case.filename], "a reader wrote beside it"
    assert path.read_bytes() == case.content


def test_the_corpus_covers_every_family_with_enough_files() -> None:
    families = {case.family for case in CORPUS}
    assert len(CORPUS) >= 200
    assert {"zip", "xlsx", "geojson", "kml", "gml", "gpkg", "csv-binaire"} <= families
    assert sum(case.refused for case in CORPUS) >= 200


def test_a_readable_file_keeps_its_line_numbers_and_values(tmp_path: Path) -> None:
    """The documented normalisations, checked on their values, not only on acceptance."""
    path = tmp_path / "a.xlsx"
    path.write_bytes(BY_NAME["xlsx/lignes-vides-en-tete"].content)
    source = read_source(path)
    assert source.table.to_pylist() == [{"id": "5"}]
    assert source.row_number([0]).tolist() == [7]
    path = tmp_path / "a.kml"
    path.write_bytes(BY_NAME["kml/dossiers"].content)
    assert read_source(path).table.num_rows == 8  # two folders of four placemarks
    path = tmp_path / "a.csv"
    path.write_bytes(BY_NAME["csv-lignes/retour-chariot-seul"].content)
    assert read_source(path).table.to_pylist() == [{"id": "1", "nom": "a"}, {"id": "2", "nom": "b"}]
    path.write_bytes(BY_NAME["csv-lignes/cellule-d-espaces"].content)
    assert read_source(path).table.to_pylist() == [
        {"id": "1", "nom": None},
        {"id": "2", "nom": "b"},
    ]
    path = tmp_path / "a.zip"
    path.write_bytes(BY_NAME["zip/dossier-et-macosx"].content)
    assert read_source(path).table.column("materiau").to_pylist()[:2] == ["bois", "métal"]


def test_rows_and_columns_are_named_in_the_report(tmp_path: Path) -> None:
    expectations = {
        "csv-separateurs/une-ligne-4": ("separateur-different", 4, None),
        "csv-guillemets/non-ferme-ligne-3": ("guillemet-non-ferme", 4, "nom"),
        "csv-encodage/mixte-1": ("encodage-mixte", 5, None),
        "geojson/papillon": ("geometrie-invalide", 4, "geometrie"),
        "geojson/un-point-inverse": ("coordonnees-inversees", 6, "geometrie"),
        "xlsx/cellule-hors-entete": ("cellules-en-trop", 3, None),
        "csv-entete/casse": ("entete-duplique", 1, "nom"),
    }
    for name, (rule, row, column) in expectations.items():
        case = BY_NAME[name]
        path = tmp_path / case.filename
        path.write_bytes(case.content)
        found = [p for p in read_and_check(case, path).problems if p.rule == rule]
        assert found and (found[0].row, found[0].column) == (row, column), (name, found)


# --- the whole pipeline ----------------------------------------------------------------------

# One refused file per family (the first), and every file that must be accepted.
FIRST_REFUSED = {}
for _case in CORPUS:
    if _case.refused and not _case.limits:
        FIRST_REFUSED.setdefault(_case.family, _case)
PIPELINE = list(FIRST_REFUSED.values()) + [case for case in CORPUS if not case.refused]
PIPELINE += [
    BY_NAME[name]
    for name in (
        "zip/chemin-../bancs.shp",
        "gpkg/vue-recursive",
        "kml/milliard-de-rires",
        "xlsx/milliard-de-rires",
    )
]


def crs_metadata(case: Case) -> str:
    return f"systeme_coordonnees: EPSG:{case.declared_crs}\n" if case.declared_crs else ""


def files_under(folder: Path) -> dict[str, str]:
    """Every file under a folder with its SHA-256 (empty folders do not count)."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix not in {".db", ".db-journal", ".db-wal"}
    }


@pytest.mark.parametrize("case", PIPELINE, ids=[case.name for case in PIPELINE])
def test_the_whole_pipeline_refuses_without_publishing_or_publishes(
    case: Case, submit, dataset_folder, store, settings, scratch: Path
) -> None:
    data = dataset_folder(
        case.filename, case.content, name="hostile", extra_metadata=crs_metadata(case)
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    if case.refused:
        assert outcome.status == "refusee", outcome.summary()
        assert_refused_in_french(outcome.report, case, data.parent, settings.data_dir)
        assert store.get_dataset("ecully-hostile") is None
        assert store.releases("ecully-hostile") == []
        assert files_under(settings.files_dir) == {}
        assert files_under(settings.work_dir) == {}
    else:
        assert outcome.status == "publiee", outcome.summary()
        assert len(store.releases("ecully-hostile")) == 1
    assert list(scratch.iterdir()) == []


# A published dataset, then a hostile resubmission of the same dataset in the same format.
RESUBMISSIONS = [
    ("csv-encodage/lu-utf-8", "csv-binaire/png"),
    ("csv-encodage/lu-utf-8", "csv-guillemets/non-ferme-ligne-3"),
    ("csv-encodage/lu-utf-8", "csv-encodage/mixte-0"),
    ("csv-bancal/reference", "csv-bancal/graine-2"),
    ("zip/valide", "zip/taux-annonce"),
    ("zip/valide", "zip/chemin-../../tmp/bancs.shp"),
    ("geojson/valide", "geojson/un-point-inverse"),
    ("geojson/valide", "geojson/attribut-fid"),
    ("geojson/valide", "geojson/lat-lon-inverses"),
    ("geojson/valide", "geojson/tronque-265"),
    ("xlsx/minimal", "xlsx/milliard-de-rires"),
    ("kml/valide", "kml/xxe"),
    ("gpkg/valide", "gpkg/vue-recursive"),
]


@pytest.mark.parametrize(("good", "hostile"), RESUBMISSIONS, ids=[h for _, h in RESUBMISSIONS])
def test_a_refused_resubmission_leaves_the_published_version_intact(
    good: str, hostile: str, submit, dataset_folder, store, settings, scratch: Path
) -> None:
    first = BY_NAME[good]
    data = dataset_folder(first.filename, first.content, name="bancs")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    release = store.current_release("ecully-bancs")
    published = files_under(settings.files_dir)
    assert published, "the first version was not published"
    case = BY_NAME[hostile]
    data = dataset_folder(case.filename, case.content, name="bancs")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee", outcome.summary()
    assert_refused_in_french(outcome.report, case, data.parent, settings.data_dir)
    assert store.current_release("ecully-bancs").id == release.id
    assert [r.id for r in store.releases("ecully-bancs")] == [release.id]
    assert files_under(settings.files_dir) == published
    assert list(scratch.iterdir()) == []


# --- XML pulled from a commune's services (pipelines/harvest/) ------------------------------

LAUGHS_CAPABILITIES = (
    b'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
    b'<wfs:WFS_Capabilities xmlns:wfs="http://www.opengis.net/wfs/2.0">&b;</wfs:WFS_Capabilities>'
)
XXE_RDF = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">&x;</rdf:RDF>'
)
SHIFT_JIS = b'<?xml version="1.0" encoding="Shift_JIS"?>' + LAUGHS_CAPABILITIES[21:]


@contextmanager
def answering(body: bytes, media_type: str) -> Iterator[str]:
    """A commune's server on the loopback answering every GET with `body`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize(
    ("body", "media_type", "source", "rule"),
    [
        (LAUGHS_CAPABILITIES, "text/xml", {"type": "wfs", "couche": "x"}, "xml-entites-interdites"),
        (SHIFT_JIS, "text/xml", {"type": "wfs", "couche": "x"}, "xml-encodage-non-pris-en-charge"),
        (XXE_RDF, "application/rdf+xml",
         {"type": "dcat", "jeu": "x", "format": "csv"}, "xml-entites-interdites"),
    ],
    ids=["wfs-milliard-de-rires", "wfs-encodage-evasif", "dcat-xxe"],
)  # fmt: skip
def test_pulled_xml_declaring_entities_is_refused_before_any_parser(
    body: bytes, media_type: str, source: dict, rule: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OPENDATA_SOURCES_ALLOW", "127.0.0.1")
    policy = RetryPolicy(attempts=1, base_delay=0.01, max_delay=0.01, retry_after_cap=0.1)
    with answering(body, media_type) as base, pytest.raises(SourceError) as failed:
        fetch({**source, "url": f"{base}/service"}, None, tmp_path, client=HttpClient(policy))
    assert failed.value.rule == rule
    assert FRENCH.search(failed.value.message)
