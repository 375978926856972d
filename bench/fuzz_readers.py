"""Fuzz every reader of the read stage, and the metadata reader, with atheris (libFuzzer,
coverage-guided).

Each target feeds the fuzzer's bytes to `pipelines.read.stage.read_source` as one kind of file
(or as one part inside an otherwise valid container, to reach the parsers behind it), or
to `pipelines.metadata.read_metadata_file` as a producer's metadata.yaml, for a bounded
time, in a child process of its own. A finding is any exception other than
`SubmissionRejected`, a refusal by the read stage's catch-all rule `fichier-illisible`
(an error no guard anticipated), an input running longer than `--timeout`, memory beyond
`--rss-mb`, or a request reaching the attacker server. When a child stops on a finding,
the parent keeps its input under `--artifacts` and starts it again for the time left, so
that one bug does not end the run.

The attacker server (issue #16) is an HTTP server on loopback started by the parent: it
stands for the platform's internal network and records every request it gets. Its port is
in the children's environment (`FUZZ_ATTACKER_PORT`), and the network-reaching seeds (a
GeoJSON « crs » link, a KML NetworkLink or Icon, a GML schemaLocation or xlink:href…) name
it. The server appends each request to a log file (`FUZZ_ATTACKER_LOG`) before answering,
so the child sees, as soon as an input has been read, whether reading it called out.

    .venv/bin/python bench/fuzz_readers.py --seconds 60              # every target
    .venv/bin/python bench/fuzz_readers.py --seconds 20 --targets csv,kml --write

Seeds are the hostile corpus of the tests (tests/hostile_corpus.py) plus valid files, and
the bench's own seeds (`extra_seeds`): metadata files, network-reaching documents.
`--write` puts the figures in bench/FUZZ_RESULTS.md (keeping its « Findings fixed » part).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "FUZZ_RESULTS.md"
HISTORY = "## Findings fixed"
CATCH_ALL = "fichier-illisible"
# A forged sheet row number makes the reader count up to Excel's 1,048,576 rows (about a
# second) before refusing: lower bounds keep the fuzzer fast on the same branches.
HARNESS_LIMITS = {"MAX_XLSX_ROWS": 20_000, "MAX_XLSX_CELLS": 500_000}
ATTACKER_PORT = "FUZZ_ATTACKER_PORT"  # environment of the children
ATTACKER_LOG = "FUZZ_ATTACKER_LOG"


@dataclass(frozen=True)
class Target:
    name: str
    filename: str  # the upload's name: its extension picks the reader
    extension: str  # seeds from the hostile corpus with this extension
    member: str | None = None  # the fuzzed bytes are this part of a valid container
    what: str = ""
    reader: str = "read"  # "read": read_source; "metadata": read_metadata_file


TARGETS = {
    t.name: t
    for t in (
        Target("csv", "f.csv", ".csv", what="CSV, any bytes"),
        Target("xlsx", "f.xlsx", ".xlsx", what="whole XLSX (zip)"),
        Target("xlsx-feuille", "f.xlsx", ".xlsx", "xl/worksheets/sheet1.xml", "XLSX sheet XML"),
        Target("geojson", "f.geojson", ".geojson", what="GeoJSON"),
        Target("shapefile", "f.zip", ".zip", what="whole zipped Shapefile"),
        Target("shapefile-shp", "f.zip", ".zip", "bancs.shp", ".shp inside a valid zip"),
        Target("shapefile-dbf", "f.zip", ".zip", "bancs.dbf", ".dbf inside a valid zip"),
        Target("gpkg", "f.gpkg", ".gpkg", what="GeoPackage (SQLite)"),
        Target("kml", "f.kml", ".kml", what="KML"),
        Target("gml", "f.gml", ".gml", what="GML"),
        Target("metadata", "metadata.yaml", ".yaml", what="producer YAML", reader="metadata"),
    )
}


# --- inside the child: one target under atheris ----------------------------------------------


def container(target: Target) -> dict[str, bytes]:
    """The valid container whose `target.member` the fuzzer replaces."""
    sys.path.insert(0, str(ROOT / "tests"))
    import hostile_corpus

    if target.name.startswith("xlsx"):
        return dict(hostile_corpus.xlsx_parts(hostile_corpus.SHEET))
    return hostile_corpus.shapefile_parts(hostile_corpus.bench_frame())


def pack(parts: dict[str, bytes], member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, data if name == member else content)
    return buffer.getvalue()


class Finding(Exception):
    """A refusal by the catch-all: an exception no guard of the reader anticipated."""


class NetworkFinding(Exception):
    """Reading the input sent a request to the attacker server."""


class AttackerLog:
    """The attacker server's request log, as far as this child has read it."""

    def __init__(self) -> None:
        name = os.environ.get(ATTACKER_LOG)
        self.path = Path(name) if name else None
        self.seen = self._size()

    def _size(self) -> int:
        return self.path.stat().st_size if self.path and self.path.exists() else 0

    def check(self, outcome: str) -> None:
        """NetworkFinding when requests arrived since the last check: the input just read
        made them (the server logs a request before answering it)."""
        size = self._size()
        if size <= self.seen or self.path is None:
            return
        with self.path.open("rb") as log:
            log.seek(self.seen)
            requests = log.read(size - self.seen).decode("utf-8", "replace").splitlines()
        self.seen = size
        shown = "; ".join(requests[:3]) + (f" (+{len(requests) - 3})" if len(requests) > 3 else "")
        raise NetworkFinding(f"request to the attacker: {shown} — reader: {outcome}") from None


def run_child(target: Target, options: list[str]) -> None:
    import atheris

    # The metadata reader is mostly PyYAML (pure Python): its coverage guides the fuzzer.
    include = ["pipelines", "yaml"] if target.reader == "metadata" else ["pipelines"]
    with atheris.instrument_imports(include=include):
        import yaml  # noqa: F401 - imported here to be instrumented

        from core.problems import SubmissionRejected
        from pipelines.metadata import read_metadata_file
        from pipelines.read import xlsx
        from pipelines.read.stage import read_source
    warnings.simplefilter("ignore")
    for name, value in HARNESS_LIMITS.items():  # same code paths, cheaper inputs
        setattr(xlsx, name, value)
    parts = container(target) if target.member else {}
    path = Path(tempfile.gettempdir()) / target.filename  # the parent's folder (TMPDIR)
    reader: Callable[[Path], object] = read_source
    if target.reader == "metadata":
        reader = lambda file: read_metadata_file(file, "lyon", "jeu")  # noqa: E731
    attacker = AttackerLog()

    def one_input(data: bytes) -> None:
        path.write_bytes(pack(parts, target.member, data) if target.member else data)
        try:
            reader(path)
        except SubmissionRejected as refusal:
            problems = refusal.report.problems
            attacker.check("refused: " + ", ".join(sorted({p.rule for p in problems})))
            if any(p.rule == CATCH_ALL for p in problems):
                raise Finding(problems[0].message) from refusal.__cause__
        except BaseException as error:
            attacker.check(f"raised {type(error).__name__}")
            raise
        else:
            attacker.check("read")

    atheris.Setup([sys.argv[0], *options], one_input)
    atheris.Fuzz()


# --- the parent: the attacker server ---------------------------------------------------------


@dataclass
class Attacker:
    """The loopback server: every request is recorded with the target being fuzzed."""

    log: Path
    port: int = 0
    target: str = ""
    received: list[tuple[str, str]] = field(default_factory=list)

    def url(self, target: str) -> str:
        return f"http://127.0.0.1:{self.port}/{target}"


# What the attacker answers, by the requested path's end: enough for a reader to go on.
ANSWERS = {
    ".kml": b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
    b"<Placemark><name>x</name><Point><coordinates>4.8,45.7</coordinates></Point>"
    b"</Placemark></Document></kml>",
    ".xsd": b'<?xml version="1.0"?><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>',
}
DEFAULT_ANSWER = b"+proj=longlat +datum=WGS84 +no_defs"


@contextmanager
def attacker_server(folder: Path) -> Iterator[Attacker]:
    state = Attacker(folder / "requests.log")
    state.log.touch()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            line = f"{self.command} {self.path[:300]} (Host: {self.headers.get('Host', '')})"
            line = line.replace("\n", " ").replace("\r", " ")
            with lock, state.log.open("a", encoding="utf-8") as log:
                log.write(line + "\n")  # before answering: the child checks once read
                state.received.append((state.target, line))
            path = self.path.split("?")[0].split("#")[0]
            body = next((b for end, b in ANSWERS.items() if path.endswith(end)), DEFAULT_ANSWER)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_HEAD = do_PUT = do_OPTIONS = answer  # noqa: N815 (http.server)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- the parent: seeds -----------------------------------------------------------------------


def write_seeds(target: Target, folder: Path, url: str) -> int:
    """The hostile corpus's files of the target's kind, then the bench's own seeds (those
    naming a URL name `url`, the attacker's)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import hostile_corpus

    seeds = []
    for case in hostile_corpus.build_corpus():
        if not case.filename.endswith(target.extension) or len(case.content) > 200_000:
            continue
        content = case.content
        if target.member:
            try:
                with zipfile.ZipFile(io.BytesIO(case.content)) as archive:
                    content = archive.read(target.member)
            except (zipfile.BadZipFile, KeyError, OSError, ValueError, RuntimeError):
                continue
        seeds.append(content)
    builder = EXTRA_SEEDS.get(target.name)
    seeds += builder(url) if builder else []
    for count, content in enumerate(seeds):
        (folder / f"seed-{count:04d}").write_bytes(content)
    return len(seeds)


def metadata_seeds(url: str) -> list[bytes]:
    """Producer metadata: the samples, then YAML that a hostile or careless producer writes
    (aliases, the bomb, tags naming Python objects, merge keys, long values, other
    encodings, sources naming the attacker)."""
    samples = [p.read_text(encoding="utf-8") for p in sorted(ROOT.glob(SAMPLE_METADATA))]
    lyon = next(text for text in samples if "producteur: lyon" in text)
    body = lyon.replace("identifiant: fontaines-eau-potable\n", "")
    texts = [*samples, *(re.sub(r"(?m)^producteur: .*$", "producteur: lyon", t) for t in samples)]
    texts += [
        yaml_bomb(),
        "titre: &t Fontaines\ndescription: *t\n" + body,
        "contact: &c {nom: Eau, email: eau@mairie-lyon.fr}\nautre: *c\n" + body,
        "<<: {titre: Fontaines, description: Les fontaines}\n" + body,
        "<<: [{titre: Fontaines}, {description: Les fontaines}]\n" + body,
        "base: &base {licence: etalab-2.0}\n<<: *base\n" + body,
        "titre: !!python/object/apply:os.system ['echo fuzz']\n" + body,
        "titre: !!python/object/new:builtins.type ['X', [], {}]\n" + body,
        "titre: !!python/name:os.system\n" + body,
        "%TAG !p! tag:yaml.org,2002:python/\n---\ntitre: !p!object/apply:os.getcwd []\n",
        "titre: !!binary aGVsbG8=\nmots_cles: !!set {eau: null, fontaines: null}\n" + body,
        "mots_cles: !!omap [{eau: 1}, {fontaines: 2}]\nfrequence: !custom mensuelle\n" + body,
        "date_mise_a_jour: !!timestamp 2026-10-01T10:00:00Z\n" + body,
        "date_mise_a_jour: 01/10/2026\nfrequence: !!str 12\n" + body,
        "titre: " + "Fontaines " * 3_000 + "\n" + body,
        "description: " + "eau " * 6_000 + "\n" + body,
        "mots_cles: [" + ", ".join(f"mot{n}" for n in range(200)) + "]\n" + body,
        "x" * 2_000 + ": valeur\n" + body,
        "identifiant: " + "1" * 5_000 + "\n" + body,
        "theme: " + "[" * 60 + "ENVI" + "]" * 60 + "\n" + body,
        "? [titre, description]\n: Fontaines\n" + body,
        "---\n" + body + "---\n" + body,
        "- " + body.replace("\n", "\n  "),
        f"source: {{type: fichier, url: {url}/data.csv, format: csv}}\n" + body,
        f"source: {{type: wfs, url: {url}/wfs, couche: bancs, version: 2.0.0}}\n" + body,
        f"source: {{type: ckan, url: {url}/ckan, jeu: bancs, ressource: r1}}\n" + body,
        f"source: {{type: dcat, url: {url}/catalog.jsonld, jeu: bancs, format: csv}}\n" + body,
        "source: {type: http, url: 'http://user:pw@127.0.0.1/x?token=1'}\n" + body,
        f"schema: {{nom: etalab/schema-irve-statique, version: 2.3.1}}\ncontact: {url}\n" + body,
    ]
    encoded = [text.encode("utf-8") for text in texts]
    encoded += [
        lyon.encode("latin-1", "replace"),  # accents as single non-UTF-8 bytes
        lyon.encode("utf-16"),  # with its byte order mark: PyYAML reads UTF-16
        lyon.encode("utf-16-be"),
        b"\xef\xbb\xbf" + lyon.encode("utf-8"),
        lyon.encode("utf-8").replace(b"\n", b"\r\n"),
        b"titre: \xff\xfe\x00\x80 fontaines\n" + body.encode("utf-8"),
        b"titre: fontaines\x00\x07\x1b[31m\n" + body.encode("utf-8"),
    ]
    return encoded


SAMPLE_METADATA = "samples/inbox/*/*/metadata.yaml"


def yaml_bomb() -> str:
    """`YAML_BOMB` of tests/test_egress_and_bombs.py, read without importing the tests."""
    module = ast.parse((ROOT / "tests" / "test_egress_and_bombs.py").read_text("utf-8"))
    for node in module.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "YAML_BOMB" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError("YAML_BOMB not found in tests/test_egress_and_bombs.py")


POINT = {"type": "Point", "coordinates": [4.83, 45.76]}


def geojson_seeds(url: str) -> list[bytes]:
    """GeoJSON naming the attacker: « crs » links (at every level GeoJSON 2008 allowed
    them), « crs » names that are URLs, properties holding URLs."""

    def link(name: str, kind: str | None = "proj4") -> dict:
        properties = {"href": f"{url}/{name}"} | ({"type": kind} if kind else {})
        return {"type": "link", "properties": properties}

    def named(name: str) -> dict:
        return {"type": "name", "properties": {"name": name}}

    def feature() -> dict:
        return {"type": "Feature", "properties": {"id": 1, "nom": "banc"}, "geometry": POINT}

    def collection(*features: dict, **members: object) -> dict:
        return {"type": "FeatureCollection", **members, "features": list(features or [feature()])}

    documents = [
        collection(crs=link("crs.proj4")),
        collection(crs=link("crs.wkt", "ogcwkt")),
        collection(crs=link("crs.prj", "esriwkt")),
        collection(crs=link("crs", None)),
        collection(crs=named(f"{url}/def/crs/EPSG/0/2154")),
        collection(crs=named(f"{url}/crs.prj")),
        collection(crs=named("http://www.opengis.net/def/crs/EPSG/0/4326")),
        collection(crs=named("urn:ogc:def:crs:EPSG::4326")),
        collection({**feature(), "crs": link("feature-crs.proj4")}),
        collection({**feature(), "geometry": {**POINT, "crs": link("geometry-crs.proj4")}}),
        collection({**feature(), "properties": {"id": 1, "lien": f"{url}/page", "$ref": url}}),
        {**feature(), "crs": link("single-feature-crs.proj4")},
        {"@context": f"{url}/context.jsonld", **collection()},
    ]
    return [json.dumps(d).encode() for d in documents] + [
        json.dumps(collection(crs=link("indented.proj4")), indent=2).encode()
    ]


PLACEMARK = (
    '<Placemark><name>banc</name>{extra}<ExtendedData><Data name="id"><value>1</value>'
    "</Data></ExtendedData><Point><coordinates>4.83,45.76</coordinates></Point></Placemark>"
)


def kml_seeds(url: str) -> list[bytes]:
    """KML naming the attacker: NetworkLink, Icon and other hrefs, styleUrl, schemaUrl,
    xsi:schemaLocation, NetworkLinkControl."""

    def kml(document: str = "", placemark: str = "", root: str = "") -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"'
            f"{root}><Document>{document}{PLACEMARK.format(extra=placemark)}</Document></kml>"
        ).encode()

    xsi = ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    schema_data = (
        f'<ExtendedData><SchemaData schemaUrl="{url}/schema.kml#S">'
        '<SimpleData name="id">1</SimpleData></SchemaData></ExtendedData>'
    )
    return [
        kml(
            f"<NetworkLink><name>suite</name><Link><href>{url}/suite.kml</href></Link>"
            "</NetworkLink>"
        ),
        kml(f"<NetworkLink><Url><href>{url}/url.kml</href></Url></NetworkLink>"),
        kml(
            f"<Style id='s'><IconStyle><Icon><href>{url}/icon.png</href></Icon></IconStyle>"
            "</Style>",
            "<styleUrl>#s</styleUrl>",
        ),
        kml(placemark=f"<styleUrl>{url}/styles.kml#s</styleUrl>"),
        kml(root=f'{xsi} xsi:schemaLocation="http://www.opengis.net/kml/2.2 {url}/kml.xsd"'),
        kml().replace(
            b'<ExtendedData><Data name="id"><value>1</value></Data></ExtendedData>',
            schema_data.encode(),
        ),
        kml(
            f"<GroundOverlay><Icon><href>{url}/overlay.png</href></Icon><LatLonBox>"
            "<north>46</north><south>45</south><east>5</east><west>4</west></LatLonBox>"
            "</GroundOverlay>"
        ),
        kml(f"<Placemark><Model><Link><href>{url}/model.dae</href></Link></Model></Placemark>"),
        kml(
            f"<NetworkLinkControl><Update><targetHref>{url}/target.kml</targetHref>"
            "</Update></NetworkLinkControl>"
        ),
        kml(f'<atom:link href="{url}/atom"/>', root=' xmlns:atom="http://www.w3.org/2005/Atom"'),
        kml(f"<PhotoOverlay><Icon><href>{url}/photo.jpg</href></Icon></PhotoOverlay>"),
    ]


GML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<ogr:FeatureCollection '
    'xmlns:ogr="http://ogr.maptools.org/" xmlns:gml="http://www.opengis.net/gml" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"{root}>\n<gml:featureMember>'
    '<ogr:bancs fid="bancs.0"><ogr:geometryProperty{property}>{geometry}'
    "</ogr:geometryProperty><ogr:id>1</ogr:id></ogr:bancs></gml:featureMember>\n"
    "</ogr:FeatureCollection>"
)
GML_POINT = '<gml:Point srsName="{srs}"><gml:coordinates>4.83,45.76</gml:coordinates></gml:Point>'


def gml_seeds(url: str) -> list[bytes]:
    """GML naming the attacker: xsi:schemaLocation (a plain schema, a WFS
    DescribeFeatureType), xlink:href, srsName URLs, GML 2's remoteSchema."""

    def gml(root: str = "", prop: str = "", geometry: str | None = None) -> bytes:
        point = GML_POINT.format(srs="EPSG:4326") if geometry is None else geometry
        return GML.format(root=root, property=prop, geometry=point).encode()

    describe = (
        f"{url}/wfs?SERVICE=WFS&amp;VERSION=1.1.0&amp;REQUEST=DescribeFeatureType"
        "&amp;TYPENAME=ogr:bancs"
    )
    wfs = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<wfs:FeatureCollection '
        'xmlns:wfs="http://www.opengis.net/wfs" xmlns:ogr="http://ogr.maptools.org/" '
        'xmlns:gml="http://www.opengis.net/gml" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="http://ogr.maptools.org/ {describe}">\n<gml:featureMember>'
        "<ogr:bancs><ogr:geometryProperty>"
        + GML_POINT.format(srs="EPSG:4326")
        + "</ogr:geometryProperty><ogr:id>1</ogr:id></ogr:bancs></gml:featureMember>\n"
        "</wfs:FeatureCollection>"
    )
    return [
        gml(f' xsi:schemaLocation="http://ogr.maptools.org/ {url}/bancs.xsd"'),
        gml(f' xsi:schemaLocation="http://ogr.maptools.org/ {describe}"'),
        wfs.encode(),
        gml(prop=f' xlink:href="{url}/geometry.gml#p1"', geometry=""),
        gml(
            geometry=f'<gml:Point srsName="EPSG:4326" xlink:href="{url}/point.gml#p">'
            "<gml:coordinates>4.83,45.76</gml:coordinates></gml:Point>"
        ),
        gml(geometry=GML_POINT.format(srs=f"{url}/crs/2154")),
        gml(geometry=GML_POINT.format(srs=f"{url}/def/crs/EPSG/0/4326")),
        gml(geometry=GML_POINT.format(srs="http://www.opengis.net/def/crs/EPSG/0/4326")),
        gml().replace(
            b"<gml:featureMember>",
            f'<gml:featureMember xlink:href="{url}/member.gml#f1"/><gml:featureMember>'.encode(),
            1,
        ),
        gml().replace(
            b"<gml:featureMember>",
            f"<gml:remoteSchema>{url}/remote.xsd</gml:remoteSchema><gml:featureMember>".encode(),
            1,
        ),
    ]


EXTRA_SEEDS: dict[str, Callable[[str], list[bytes]]] = {
    "metadata": metadata_seeds,
    "geojson": geojson_seeds,
    "kml": kml_seeds,
    "gml": gml_seeds,
}


# --- the parent: children, figures -----------------------------------------------------------


@dataclass
class Figures:
    target: str
    what: str
    seconds: float = 0.0
    executions: int = 0
    findings: list[tuple[str, str]] = field(default_factory=list)  # (what, kept input)
    seeds: int = 0
    requests: list[str] = field(default_factory=list)  # received by the attacker server

    @property
    def rate(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")
DONE = re.compile(r"Done (\d+) runs in (\d+) second")
STATUS = re.compile(r"^#(\d+)\s", re.MULTILINE)
ARTIFACT = re.compile(r"Test unit written to (\S+)")
SUMMARY = re.compile(r"(ERROR: libFuzzer: .*|Uncaught Python exception: .*)")
ERROR_LINE = re.compile(r"^(\w+\.)*\w*(Error|Exception|Finding|Warning)\b.*")


def fuzz_target(
    target: Target, seconds: float, args: argparse.Namespace, attacker: Attacker
) -> Figures:
    figures = Figures(target.name, target.what)
    artifacts = Path(args.artifacts) / target.name
    artifacts.mkdir(parents=True, exist_ok=True)
    attacker.target = target.name
    with (
        tempfile.TemporaryDirectory(prefix=f"fuzz-corpus-{target.name}-") as corpus,
        tempfile.TemporaryDirectory(prefix=f"fuzz-work-{target.name}-") as work,
    ):
        figures.seeds = write_seeds(target, Path(corpus), attacker.url(target.name))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 1:
            started = time.monotonic()
            output = run_once(target, int(left), corpus, work, artifacts, args, attacker)
            figures.seconds += time.monotonic() - started
            figures.executions += executed(output)
            artifact = ARTIFACT.search(output)
            if artifact is None:
                break  # the time ran out without a finding
            figures.findings.append((describe(output), artifact.group(1)))
            drop_input(Path(corpus), Path(artifact.group(1)))
    time.sleep(0.5)  # a request still on its way is counted for this target
    figures.requests = [line for name, line in attacker.received if name == target.name]
    return figures


def drop_input(corpus: Path, artifact: Path) -> None:
    """Take a finding out of the corpus if it is there (a seed): otherwise every restarted
    child would stop on it while loading the corpus."""
    try:
        content = artifact.read_bytes()
    except OSError:
        return
    for file in corpus.iterdir():
        if file.is_file() and file.stat().st_size == len(content) and file.read_bytes() == content:
            file.unlink()


def run_once(
    target: Target,
    seconds: int,
    corpus: str,
    work: str,
    artifacts: Path,
    args: argparse.Namespace,
    attacker: Attacker,
) -> str:
    """One child fuzzing until its time is up or a finding; its output. Everything it
    writes (the input file, the readers' folders, even when killed) stays in `work`."""
    options = [
        f"-max_total_time={seconds}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_mb}",
        "-max_len=65536",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        corpus,
    ]
    command = [sys.executable, __file__, "--child", target.name, "--", *options]
    environment = {
        **os.environ,
        "PYTHONWARNINGS": "ignore",
        "TMPDIR": work,
        ATTACKER_PORT: str(attacker.port),
        ATTACKER_LOG: str(attacker.log),
    }
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        errors="replace",
        env=environment,
        check=False,
        timeout=seconds + args.timeout * 3 + 120,
    )
    return done.stdout + done.stderr


def executed(output: str) -> int:
    for pattern in (EXECUTED, DONE):
        found = pattern.findall(output)
        if found:
            value = found[-1]
            return int(value[0] if isinstance(value, tuple) else value)
    statuses = STATUS.findall(output)
    return int(statuses[-1]) if statuses else 0


def describe(output: str) -> str:
    """The exception that stopped the child (the cause of a catch-all refusal first)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    if errors:
        return errors[0][:300]
    found = SUMMARY.search(output)
    return found.group(1)[:300] if found else "arrêt sans message"


def report(results: list[Figures], seconds: float) -> str:
    total = sum(r.executions for r in results)
    elapsed = sum(r.seconds for r in results)
    lines = [
        "# Fuzzing the readers (atheris)",
        "",
        f"`bench/fuzz_readers.py --seconds {seconds:g}`: atheris "
        f"{_atheris_version()} (libFuzzer), Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores shared with other work. A finding is an exception other "
        "than `SubmissionRejected`, a refusal by the catch-all rule `fichier-illisible`, an "
        "input over the per-input time limit, memory over the limit, or a request reaching "
        "the attacker server (HTTP on loopback, started by the parent; the network-reaching "
        "seeds name it). Harness limits: "
        f"{', '.join(f'{k}={v}' for k, v in HARNESS_LIMITS.items())} (the code path of "
        "these refusals is the same, each forged input costs less). Executions per second "
        "count each child's start-up (about 4 s) in its time.",
        "",
        "| target | fuzzed input | seeds | executions | exec/s | findings | attacker requests |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.what} | {r.seeds} | {r.executions} | {r.rate:.0f} | "
            f"{len(r.findings)} | {len(r.requests)} |"
        )
    rate = total / elapsed if elapsed else 0
    lines += ["", f"Total: {total} executions in {elapsed:.0f} s ({rate:.0f} exec/s)."]
    findings = [(r.target, line) for r in results for line in grouped(r.findings)]
    lines += ["", "Findings of this run:" if findings else "No finding in this run."]
    lines += [f"- {target}: {line}" for target, line in findings]
    requests = [(r.target, line) for r in results for line in r.requests]
    if requests:
        lines += ["", "Requests received by the attacker server:"]
        lines += [f"- {target}: `{line}`" for target, line in requests[:20]]
        lines += [f"- … and {len(requests) - 20} more"] if len(requests) > 20 else []
    return "\n".join(lines) + "\n"


def grouped(findings: list[tuple[str, str]]) -> list[str]:
    """One line per distinct finding: how many inputs stopped on it, the first one kept."""
    counts = Counter(what for what, _ in findings)
    first = {}
    for what, kept in findings:
        first.setdefault(what, kept)
    return [f"{what} — {counts[what]} input(s), e.g. `{_relative(first[what])}`" for what in counts]


def _relative(name: str) -> str:
    path = Path(name).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else name


def _atheris_version() -> str:
    from importlib.metadata import version

    return version("atheris")


def main() -> None:
    if "--child" in sys.argv:
        position = sys.argv.index("--child")
        options = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
        run_child(TARGETS[sys.argv[position + 1]], options)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="per target")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--timeout", type=int, default=20, help="seconds per input")
    parser.add_argument("--rss-mb", type=int, default=3072, help="memory limit per child")
    parser.add_argument("--artifacts", default=str(ROOT / "var" / "fuzz"), help="findings")
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.name}")
    args = parser.parse_args()
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="fuzz-attacker-") as folder,
        attacker_server(Path(folder)) as attacker,
    ):
        for name in args.targets.split(","):
            figures = fuzz_target(TARGETS[name], args.seconds, args, attacker)
            print(
                f"{name}: {figures.executions} executions, {figures.rate:.0f}/s, "
                f"{len(figures.findings)} finding(s), {len(figures.requests)} request(s) "
                "to the attacker",
                flush=True,
            )
            for what, kept in figures.findings:
                print(f"  {what} — {kept}", flush=True)
            for line in figures.requests:
                print(f"  request: {line}", flush=True)
            results.append(figures)
    text = report(results, args.seconds)
    print(text)
    if args.write:
        RESULTS.write_text(text + kept_history(), encoding="utf-8")


def kept_history() -> str:
    """The hand-written history below the figures (findings fixed), kept across runs."""
    if not RESULTS.exists():
        return ""
    previous = RESULTS.read_text(encoding="utf-8")
    position = previous.find(HISTORY)
    return "" if position < 0 else "\n" + previous[position:]


if __name__ == "__main__":
    main()
