"""A deterministic corpus of hostile and broken uploads (issue #9), families × variants.

Every case is a file a commune could drop, and what the platform must answer: refused
with one of `rules` (a French `SubmissionRejected`), or read (`rules` empty) with the
documented normalisation `note` says. `build_corpus()` makes the bytes in memory; no
case needs the network, and none is large (bombs declare sizes they do not hold, or
compress zeros).
"""

from __future__ import annotations

import io
import json
import random
import sqlite3
import stat
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import openpyxl
from shapely.geometry import LineString, Point, Polygon

# Points on the metropolis (Écully, Lyon, Vaulx-en-Velin), in WGS 84.
LYON_POINTS = [(4.777, 45.776), (4.835, 45.764), (4.921, 45.768), (4.790, 45.781)]
# The same points in Lambert-93 and in CC46 (metres).
LAMBERT93 = [
    (836931.0, 6519567.0),
    (841400.3, 6518079.4),
    (848107.9, 6518660.3),
    (837920.9, 6520130.9),
]  # noqa: E501
CC46 = [
    (1836807.0, 5175426.0),
    (1841267.7, 5174005.6),
    (1847966.6, 5174503.0),
    (1837787.3, 5175985.7),
]  # noqa: E501


@dataclass(frozen=True)
class Case:
    family: str
    variant: str
    filename: str
    content: bytes
    rules: frozenset[str] = frozenset()  # empty: the file must be read
    note: str = ""  # for accepted files, the documented normalisation
    declared_crs: int | None = None
    # constants of pipelines.read.text, pipelines.read.xlsx, pipelines.safety
    limits: dict[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.family}/{self.variant}"

    @property
    def refused(self) -> bool:
        return bool(self.rules)


def refused(family: str, variant: str, filename: str, content: bytes, *rules: str, **kw) -> Case:
    return Case(family, variant, filename, content, frozenset(rules), **kw)


def accepted(family: str, variant: str, filename: str, content: bytes, note: str, **kw) -> Case:
    return Case(family, variant, filename, content, frozenset(), note=note, **kw)


# --- CSV -------------------------------------------------------------------------------------

GOOD_ROWS = "id;espece;hauteur\r\n1;Érable;12,5\r\n2;Tilleul;8\r\n3;Platane;20\r\n"


def csv_empty() -> Iterator[Case]:
    yield refused("csv-vide", "zero-octet", "a.csv", b"", "fichier-vide")
    for i, blank in enumerate([b" ", b"\r\n", b"\n\n\n", b" \t \r\n  ", b"\xef\xbb\xbf"]):
        yield refused("csv-vide", f"blanc-{i}", "a.csv", blank, "entete-absent", "aucune-ligne")
    for delimiter in ";,\t|":
        header = delimiter.join(["id", "nom", "valeur"]).encode()
        for number, ending in enumerate((b"", b"\r\n", b"\n\n")):
            rules = ("aucune-ligne", "ligne-vide")
            variant = f"entete-seul-{ord(delimiter)}-{number}"
            yield refused("csv-vide", variant, "a.csv", header + ending, *rules)


SIGNATURES = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    "xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00",
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF",
    "gif": b"GIF89a\x01\x00\x01\x00",
    "sqlite": b"SQLite format 3\x00\x10\x00",
    "gzip": b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
    "7z": b"7z\xbc\xaf\x27\x1c\x00\x04",
    "rar": b"Rar!\x1a\x07\x01\x00",
    "shp": b"\x00\x00\x27\x0a\x00\x00\x00\x00",
    "rtf": b"{\\rtf1\\ansi\\deff0 id;nom",
}


def csv_binary() -> Iterator[Case]:
    for name, head in SIGNATURES.items():
        yield refused(
            "csv-binaire", name, "donnees.csv", head + b"id;nom\r\n1;a\r\n" * 3, "fichier-binaire"
        )
    for seed in range(12):
        rng = random.Random(seed)
        junk = bytes(rng.randrange(256) for _ in range(2000 + 300 * seed))
        yield refused(
            "csv-binaire",
            f"aleatoire-{seed}",
            "donnees.csv",
            junk,
            "fichier-binaire",
            "encodage-non-pris-en-charge",
        )
    for seed in range(6):
        rng = random.Random(100 + seed)
        junk = bytes(rng.randrange(1, 32) for _ in range(3000))  # control characters, no NUL
        yield refused(
            "csv-binaire",
            f"controles-{seed}",
            "donnees.csv",
            junk,
            "fichier-binaire",
            "encodage-non-pris-en-charge",
        )


def csv_encodings() -> Iterator[Case]:
    text = "id;commune\r\n1;Écully\r\n2;Vénissieux\r\n3;Saint-Genis-Laval\r\n"
    for codec in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        yield refused(
            "csv-encodage", codec, "a.csv", text.encode(codec), "encodage-non-pris-en-charge"
        )
    utf8 = "id;commune\r\n1;Écully\r\n2;Vénissieux\r\n".encode()
    for line in range(3):
        rows = [f"{3 + i};Bron" for i in range(line)] + ["9;Fontaines-sur-Saône"]
        cp = ("\r\n".join(rows) + "\r\n").encode("cp1252")
        yield refused("csv-encodage", f"mixte-{line}", "a.csv", utf8 + cp, "encodage-mixte")
    for codec in ("cp1252", "latin-1", "utf-8-sig", "utf-8"):
        yield accepted(
            "csv-encodage", f"lu-{codec}", "a.csv", text.encode(codec), f"lu en {codec} (détecté)"
        )


MARKUP = {
    "html": b"<!DOCTYPE html><html><body><p>Erreur 404</p></body></html>",
    "html-minuscule": b"  <html lang='fr'><head></head><body>id;nom</body></html>",
    "xml": b'<?xml version="1.0"?><donnees><ligne id="1"/></donnees>',
    "svg": b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
    "kml": b"<kml xmlns='http://www.opengis.net/kml/2.2'><Document/></kml>",
    "json-objet": b'{"type": "FeatureCollection", "features": []}',
    "json-liste": b'[{"id": 1, "nom": "a"}, {"id": 2, "nom": "b"}]',
    "json-bom": b'\xef\xbb\xbf\n  {"id": 1}',
}


def csv_markup() -> Iterator[Case]:
    for name, content in MARKUP.items():
        yield refused("csv-pas-un-csv", name, "export.csv", content, "pas-un-csv")


def csv_lines() -> Iterator[Case]:
    limit = {"text.MAX_LINE_BYTES": 64 * 1024}
    for position in (0, 1, 5):
        rows = ["id;texte"] + [f"{i};court" for i in range(position)]
        rows.append("99;" + "x" * 100_000)
        content = ("\n".join(rows) + "\n1;fin\n").encode()
        yield refused(
            "csv-lignes",
            f"ligne-geante-{position}",
            "a.csv",
            content,
            "ligne-trop-longue",
            limits=limit,
        )
    yield refused(
        "csv-lignes",
        "sans-fin-de-ligne",
        "a.csv",
        b"id;" + b"y" * 200_000,
        "ligne-trop-longue",
        limits=limit,
    )
    yield refused(
        "csv-lignes",
        "retour-chariot-seul-geant",
        "a.csv",
        b"id;x\r" + b"1;" + b"z" * 100_000 + b"\r",
        "ligne-trop-longue",
        limits=limit,
    )
    yield accepted(
        "csv-lignes",
        "champ-de-200-ko",
        "a.csv",
        b"id;texte\n1;" + b"t" * 200_000 + b"\n2;b\n",
        "valeur longue lue entière",
    )
    yield accepted(
        "csv-lignes",
        "retour-chariot-seul",
        "a.csv",
        b"id;nom\r1;a\r2;b\r",
        "fins de ligne Mac (\\r) lues",
    )
    yield accepted("csv-lignes", "cellule-d-espaces", "a.csv", b"id;nom\n1;   \n2; b \n",
                   "cellule d'espaces lue vide, espaces autour d'une valeur ôtés")  # fmt: skip
    small = {"safety.MAX_FILE_BYTES": {"csv": 1000}}
    yield refused("csv-lignes", "fichier-trop-volumineux", "a.csv", GOOD_ROWS.encode() * 40,
                  "fichier-trop-volumineux", limits=small)  # fmt: skip
    wide = ";".join(f"c{i}" for i in range(1200)) + "\n" + ";".join("1" * 1200) + "\n"
    yield refused("csv-lignes", "1200-colonnes", "a.csv", wide.encode(), "trop-de-colonnes")
    yield refused(
        "csv-lignes",
        "entete-geant",
        "a.csv",
        b"id;" + b"n" * 140_000 + b"\n1;2\n",
        "entete-trop-long",
    )


def csv_quotes() -> Iterator[Case]:
    for position in range(1, 6):
        rows = ["id;nom"] + [f"{i};ok" for i in range(1, 8)]
        rows[position] = f'{position};"jamais fermé'
        content = ("\r\n".join(rows) + "\r\n").encode()
        yield refused(
            "csv-guillemets",
            f"non-ferme-ligne-{position + 1}",
            "a.csv",
            content,
            "guillemet-non-ferme",
            "cellules-manquantes",
        )
    yield refused(
        "csv-guillemets",
        "entete-non-ferme",
        "a.csv",
        b'id;"nom\n' + b"1;" + b"a" * 140_000 + b"\n",
        "entete-trop-long",
    )
    yield refused(
        "csv-guillemets",
        "entete-non-ferme-court",
        "a.csv",
        b'id;"nom\n1;2\n3;4\n',
        "entete-caractere-interdit",
    )
    yield accepted(
        "csv-guillemets",
        "multiligne-ferme",
        "a.csv",
        'id;lieu\n1;"Parc de la Tête d\'Or, entrée nord\nprès du lac"\n2;"square ""Carnot"""\n'.encode(),  # noqa: E501
        "valeur entre guillemets sur deux lignes lue entière",
    )
    yield accepted(
        "csv-guillemets",
        "pouce-isole",
        "a.csv",
        b'id;taille\n1;12" pouces\n2;3\n',
        "guillemet isolé dans une valeur non citée gardé tel quel",
    )


def csv_ragged() -> Iterator[Case]:
    reference = ["a,b,c"] + [f"{i},{i + 1},{i + 2}" for i in range(20)]
    yield accepted("csv-bancal", "reference", "a.csv", ("\n".join(reference) + "\n").encode(), "lu")
    for seed in range(10):
        rng = random.Random(seed)
        rows = ["a,b,c"] + [f"{i},{i + 1},{i + 2}" for i in range(20)]
        line = rng.randrange(1, 21)
        short = rng.random() < 0.5
        rows[line] = f"{line},{line}" if short else f"{line},{line},{line},{line}"
        rule = "cellules-manquantes" if short else "cellules-en-trop"
        yield refused(
            "csv-bancal", f"graine-{seed}", "a.csv", ("\n".join(rows) + "\n").encode(), rule
        )
    yield refused(
        "csv-bancal", "toutes-les-lignes", "a.csv", b"a;b;c\n1\n2\n3\n", "cellules-manquantes"
    )
    yield refused("csv-bancal", "ligne-vide-au-milieu", "a.csv", b"a;b\n1;2\n\n3;4\n", "ligne-vide")


def csv_separators() -> Iterator[Case]:
    pairs = [(";", ","), (",", ";"), ("\t", ";"), ("|", ","), (";", "\t")]
    for head, rows in pairs:
        header = head.join(["id", "nom", "valeur"])
        lines = [header] + [rows.join([str(i), f"n{i}", str(i * 2)]) for i in range(6)]
        yield refused(
            "csv-separateurs",
            f"entete-{ord(head)}-lignes-{ord(rows)}",
            "a.csv",
            ("\n".join(lines) + "\n").encode(),
            "separateurs-melanges",
        )
    for index in (1, 3, 6):
        lines = ["id;nom;valeur"] + [f"{i};n{i};{i}" for i in range(8)]
        lines[index] = f"{index},n,{index}"
        yield refused(
            "csv-separateurs",
            f"une-ligne-{index + 1}",
            "a.csv",
            ("\n".join(lines) + "\n").encode(),
            "separateur-different",
        )


def csv_headers() -> Iterator[Case]:
    headers = {
        "double": ("id;nom;nom", "entete-duplique"),
        "casse": ("id;Nom;nom", "entete-duplique"),
        "vide": ("id;;nom", "entete-vide"),
        "controle": ('id;"no\x01m";x', "entete-caractere-interdit"),
        "retour-ligne": ('id;"nom\nprenom";x', "entete-caractere-interdit"),
        "trop-long": ("id;" + "n" * 300, "entete-trop-long"),
        "espaces-seuls": ("id;   ;x", "entete-vide"),
    }
    for name, (header, rule) in headers.items():
        content = f"{header}\n1;2;3\n".encode()
        yield refused(
            "csv-entete", name, "a.csv", content, rule, "cellules-en-trop", "cellules-manquantes"
        )


# --- archives --------------------------------------------------------------------------------


def zip_bytes(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are made on purpose
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for info, data in members:
                archive.writestr(info, data)
    return buffer.getvalue()


def patch_central(
    data: bytes,
    index: int,
    *,
    size: int | None = None,
    compressed: int | None = None,
    flags: int | None = None,
    offset: int | None = None,
) -> bytes:
    """Rewrite the sizes, flags or header offset the central directory gives member
    `index` (what a reader believes before decompressing)."""
    out = bytearray(data)
    position = -1
    for _ in range(index + 1):
        position = out.index(b"PK\x01\x02", position + 1)
    if flags is not None:
        struct.pack_into("<H", out, position + 8, flags)
    if compressed is not None:
        struct.pack_into("<I", out, position + 20, compressed)
    if size is not None:
        struct.pack_into("<I", out, position + 24, size)
    if offset is not None:
        struct.pack_into("<I", out, position + 42, offset)
    return bytes(out)


def shift_directory(data: bytes, shift: int) -> bytes:
    """Move where the end record says the central directory starts."""
    out = bytearray(data)
    position = out.rindex(b"PK\x05\x06")
    start = struct.unpack_from("<I", out, position + 16)[0]
    struct.pack_into("<I", out, position + 16, start + shift)
    return bytes(out)


def shapefile_parts(frame: gpd.GeoDataFrame) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        frame.to_file(Path(folder) / "bancs.shp")
        return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def bench_frame(points: list[tuple[float, float]] = LYON_POINTS, crs: int = 4326):
    return gpd.GeoDataFrame(
        {"id_banc": list(range(1, len(points) + 1)), "materiau": ["bois", "métal"] * 2},
        geometry=[Point(p) for p in points],
        crs=f"EPSG:{crs}",
    )


def symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def zip_cases(parts: dict[str, bytes]) -> Iterator[Case]:
    good = list(parts.items())
    family = "zip"
    yield accepted(family, "valide", "bancs.zip", zip_bytes(good), "Shapefile lu")
    yield accepted(
        family,
        "dossier-et-macosx",
        "bancs.zip",
        zip_bytes(
            [(f"bancs/{n}", d) for n, d in good]
            + [(f"__MACOSX/bancs/._{n}", b"\x00\x05\x16\x07") for n, _ in good]
        ),
        "copies __MACOSX ignorées",
    )
    for name in (
        "../bancs.shp",
        "../../tmp/bancs.shp",
        "/etc/bancs.shp",
        "C:\\bancs.shp",
        "a/../../bancs.shp",
        "..\\..\\bancs.shp",
    ):
        members = [(name if n.endswith(".shp") else n, d) for n, d in good]
        yield refused(
            family, f"chemin-{name}", "bancs.zip", zip_bytes(members), "zip-chemin-interdit"
        )
    for target in ("/etc/passwd", "../../secret.shp"):
        members = good + [(symlink("lien.dbf"), target.encode())]
        yield refused(
            family, f"lien-{target}", "bancs.zip", zip_bytes(members), "zip-lien-symbolique"
        )
    yield refused(
        family,
        "lien-a-la-place-du-shp",
        "bancs.zip",
        zip_bytes([(symlink("bancs.shp"), b"/etc/passwd")] + good[1:]),
        "zip-lien-symbolique",
        "zip-fichier-en-double",
    )
    for inner in ("interne.zip", "donnees.ZIP", "b.tar.gz", "c.7z", "d.kmz"):
        yield refused(
            family,
            f"imbrique-{inner}",
            "bancs.zip",
            zip_bytes(good + [(inner, zip_bytes(good))]),
            "zip-imbrique",
        )
    many = good + [(f"f/{i}.txt", b"") for i in range(1001)]
    yield refused(family, "1001-fichiers", "bancs.zip", zip_bytes(many), "zip-trop-de-fichiers")
    yield refused(
        family,
        "sans-shp",
        "bancs.zip",
        zip_bytes([("lisezmoi.txt", b"rien")]),
        "shapefile-introuvable",
    )
    yield refused(
        family,
        "deux-shp",
        "bancs.zip",
        zip_bytes(good + [("autre/" + n, d) for n, d in good]),
        "shapefile-introuvable",
    )
    yield refused(
        family,
        "vrt-deguise",
        "bancs.zip",
        zip_bytes(
            [
                (
                    "bancs.shp",
                    b"<OGRVRTDataSource><OGRVRTLayer name='x'>"
                    b"<SrcDataSource>/etc/passwd</SrcDataSource></OGRVRTLayer>"
                    b"</OGRVRTDataSource>",
                )
            ]
        ),
        "shapefile-invalide",
    )
    yield refused(
        family,
        "shp-tronque",
        "bancs.zip",
        zip_bytes([(n, d[:60] if n.endswith(".shp") else d) for n, d in good]),
        "geo-illisible",
    )
    whole = zip_bytes(good)
    for cut in (10, len(whole) // 2, len(whole) - 10):
        yield refused(family, f"zip-tronque-{cut}", "bancs.zip", whole[:cut], "zip-illisible")
    yield refused(family, "pas-un-zip", "bancs.zip", b"id;nom\n1;a\n", "zip-illisible")
    shp_index = [n for n, _ in good].index("bancs.shp")
    yield refused(
        family, "chiffre", "bancs.zip", patch_central(whole, shp_index, flags=1), "zip-chiffre"
    )
    yield refused(
        family,
        "taille-annoncee-6-go",
        "bancs.zip",
        patch_central(patch_central(whole, 0, size=3_000_000_000), 1, size=3_000_000_000),
        "zip-trop-volumineux",
    )
    yield refused(
        family,
        "taux-annonce",
        "bancs.zip",
        patch_central(whole, shp_index, size=100_000_000, compressed=100),
        "zip-bombe",
    )
    zeros = zip_bytes(
        [("bancs.shp", parts["bancs.shp"][:100] + b"\x00" * 5_000_000)]
        + [(n, d) for n, d in good if not n.endswith(".shp")]
    )
    yield refused(
        family,
        "taille-mensongere",
        "bancs.zip",
        patch_central(zeros, 0, size=1000),
        "zip-bombe",
        "zip-illisible",
    )
    yield refused(
        family,
        "bombe-reelle",
        "bancs.zip",
        zeros,
        "zip-bombe",
        limits={"safety.RATIO_FLOOR_BYTES": 1024 * 1024},
    )
    yield refused(
        family,
        "budget-depasse",
        "bancs.zip",
        zeros,
        "zip-trop-volumineux",
        "zip-bombe",
        limits={"safety.MAX_UNCOMPRESSED_BYTES": {"shapefile": 1_000_000, "xlsx": 1_000_000}},
    )
    # Found by hypothesis: a central directory placed « before » the file start gives
    # negative offsets, and zipfile's seek fails (OSError on a file).
    yield refused(family, "decalage-negatif", "bancs.zip", shift_directory(whole, 5000),
                  "zip-illisible")  # fmt: skip
    doubled = zip_bytes(good + [("bancs.dbf", parts["bancs.dbf"])])
    yield refused(family, "nom-en-double", "bancs.zip", doubled, "zip-fichier-en-double")


# --- XLSX ------------------------------------------------------------------------------------

XLSX_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
    'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
    '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)


def xlsx_parts(sheet_data: str, prolog: str = "") -> list[tuple[str, bytes]]:
    head = '<?xml version="1.0" encoding="UTF-8"?>' + prolog
    return [
        ("[Content_Types].xml", CONTENT_TYPES.encode()),
        (
            "_rels/.rels",
            (
                f'<?xml version="1.0"?><Relationships xmlns="{REL_NS}"><Relationship '
                f'Id="rId1" Type="{OFFICE_REL}/officeDocument" Target="xl/workbook.xml"/>'
                "</Relationships>"
            ).encode(),
        ),
        (
            "xl/workbook.xml",
            (
                f'<?xml version="1.0"?><workbook xmlns="{XLSX_NS}" xmlns:r='
                f'"{OFFICE_REL}"><sheets><sheet name="donnees" sheetId="1" '
                'r:id="rId1"/></sheets></workbook>'
            ).encode(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            (
                f'<?xml version="1.0"?><Relationships xmlns="{REL_NS}">'
                f'<Relationship Id="rId1" Type="{OFFICE_REL}/worksheet" '
                'Target="worksheets/sheet1.xml"/></Relationships>'
            ).encode(),
        ),
        (
            "xl/worksheets/sheet1.xml",
            (
                f'{head}<worksheet xmlns="{XLSX_NS}"><sheetData>'
                f"{sheet_data}</sheetData></worksheet>"
            ).encode(),
        ),
    ]


def cell(ref: str, value: object) -> str:
    if isinstance(value, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'
    return f'<c r="{ref}"><v>{value}</v></c>'


def row(number: int, cells: list[tuple[str, object]]) -> str:
    return f'<row r="{number}">' + "".join(cell(f"{c}{number}", v) for c, v in cells) + "</row>"


SHEET = row(1, [("A", "id"), ("B", "nom")]) + row(2, [("A", 1), ("B", "Bron")])
LAUGHS = (
    '<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
)
XXE = '<!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def openpyxl_book(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    for values in rows:
        book.active.append(values)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xlsx_cases() -> Iterator[Case]:
    family = "xlsx"
    yield accepted(family, "minimal", "a.xlsx", zip_bytes(xlsx_parts(SHEET)), "classeur lu")
    yield accepted(
        family,
        "lignes-vides-en-tete",
        "a.xlsx",
        zip_bytes(xlsx_parts(row(3, [("A", "id")]) + row(7, [("A", 5)]))),
        "lignes vides sautées, numéros de ligne gardés",
    )
    yield accepted(
        family, "openpyxl", "a.xlsx", openpyxl_book([["id", "nom"], [1, "a"]]), "classeur lu"
    )
    for name, prolog in (
        ("milliard-de-rires", LAUGHS),
        ("xxe", XXE),
        ("dtd-externe", '<!DOCTYPE worksheet SYSTEM "http://exemple.fr/x.dtd">'),
    ):
        data = SHEET.replace("Bron", "&d;" if name != "xxe" else "&x;")
        if name == "dtd-externe":
            data = SHEET
        yield refused(
            family, name, "a.xlsx", zip_bytes(xlsx_parts(data, prolog)), "xml-dtd-interdite"
        )
    yield refused(
        family,
        "ligne-10-milliards",
        "a.xlsx",
        zip_bytes(xlsx_parts(SHEET + row(10_000_000_000, [("A", 3)]))),
        "trop-de-lignes",
    )
    wide = "".join(row(n, [("A", n), ("XFD", n)]) for n in range(2, 400))
    yield refused(
        family,
        "cellules-lointaines",
        "a.xlsx",
        zip_bytes(xlsx_parts(row(1, [("A", "id")]) + wide)),
        "trop-de-cellules",
        limits={"xlsx.MAX_XLSX_CELLS": 1_000_000},
    )
    yield refused(
        family,
        "cellule-hors-entete",
        "a.xlsx",
        zip_bytes(xlsx_parts(SHEET + row(3, [("A", 2), ("B", "x"), ("E", "note")]))),
        "cellules-en-trop",
    )
    yield refused(
        family,
        "en-tete-1200-colonnes",
        "a.xlsx",
        openpyxl_book([[f"c{i}" for i in range(1200)]]),
        "trop-de-colonnes",
    )
    yield refused(family, "vide", "a.xlsx", openpyxl_book([]), "fichier-vide")
    yield refused(family, "entete-seul", "a.xlsx", openpyxl_book([["id", "nom"]]), "aucune-ligne")
    yield refused(
        family, "xls-renomme", "a.xlsx", SIGNATURES["xls"] + b"\x00" * 500, "xlsx-illisible"
    )
    # Found by the fuzzer: a part whose local header names another file.
    ods = zip_bytes(
        [
            ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            ("content.xml", b"<document/>"),
        ]
    )
    yield refused(family, "entete-local-incoherent", "a.xlsx",
                  ods.replace(b"mimetype", b"mimetypX", 1), "xlsx-illisible")  # fmt: skip
    yield refused(
        family,
        "ods-renomme",
        "a.xlsx",
        zip_bytes(
            [
                ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
                ("content.xml", b"<office:document-content/>"),
            ]
        ),
        "xlsx-illisible",
    )
    yield refused(
        family, "csv-renomme", "a.xlsx", GOOD_ROWS.encode(), "xlsx-illisible", "zip-illisible"
    )
    yield refused(
        family, "zip-sans-classeur", "a.xlsx", zip_bytes([("a.txt", b"x")]), "xlsx-illisible"
    )
    good = zip_bytes(xlsx_parts(SHEET))
    yield refused(
        family, "tronque", "a.xlsx", good[: len(good) // 2], "xlsx-illisible", "zip-illisible"
    )
    yield refused(
        family,
        "feuille-mal-formee",
        "a.xlsx",
        zip_bytes(xlsx_parts(SHEET + "<row r='3'><c r='A3'><v>1</v></row>")),
        "xlsx-illisible",
    )
    yield refused(
        family,
        "chaine-partagee-absente",
        "a.xlsx",
        zip_bytes(xlsx_parts(SHEET + '<row r="3"><c r="A3" t="s"><v>999</v></c></row>')),
        "xlsx-illisible",
    )
    yield refused(
        family,
        "taille-annoncee",
        "a.xlsx",
        patch_central(good, 4, size=900_000_000),
        "zip-trop-volumineux",
        "zip-bombe",
    )
    yield refused(
        family,
        "chemin-interdit",
        "a.xlsx",
        zip_bytes(xlsx_parts(SHEET) + [("../../evil.xml", b"<a/>")]),
        "zip-chemin-interdit",
    )
    yield refused(
        family,
        "lien-symbolique",
        "a.xlsx",
        zip_bytes(xlsx_parts(SHEET) + [(symlink("xl/media/x.png"), b"/etc/passwd")]),
        "zip-lien-symbolique",
    )


# --- GeoJSON ---------------------------------------------------------------------------------


def feature(geometry: dict | None, properties: dict | None = None) -> dict:
    props = {"id": 1, "nom": "banc"} if properties is None else properties
    return {"type": "Feature", "properties": props, "geometry": geometry}


def collection(features: list[dict], **extra: object) -> bytes:
    return json.dumps({"type": "FeatureCollection", **extra, "features": features}).encode()


def points(coords: list[tuple[float, float]]) -> list[dict]:
    return [
        feature({"type": "Point", "coordinates": list(c)}, {"id": i, "nom": f"b{i}"})
        for i, c in enumerate(coords, start=1)
    ]


BOWTIE = [[4.80, 45.70], [4.90, 45.80], [4.90, 45.70], [4.80, 45.80], [4.80, 45.70]]
NAMED_CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::{}"}}


def named(code: int) -> dict:
    return json.loads(json.dumps(NAMED_CRS).replace("{}", str(code)))


def geojson_cases() -> Iterator[Case]:
    family = "geojson"
    yield accepted(family, "valide", "a.geojson", collection(points(LYON_POINTS)), "lu")
    yield accepted(
        family,
        "geometrie-nulle",
        "a.geojson",
        collection(points(LYON_POINTS) + [feature(None, {"id": 9, "nom": "x"})]),
        "objet sans géométrie gardé",
    )
    yield accepted(
        family,
        "ailleurs-en-france",
        "a.geojson",
        collection(points([(2.35, 48.85), (5.37, 43.30)])),
        "données hors de la métropole acceptées",
    )
    yield accepted(
        family,
        "liste-en-attribut",
        "a.geojson",
        collection(
            [feature({"type": "Point", "coordinates": [4.8, 45.76]}, {"id": 1, "tags": ["a", "b"]})]
        ),
        "liste écrite en JSON",
    )
    yield accepted(
        family,
        "altitudes",
        "a.geojson",
        collection([feature({"type": "Point", "coordinates": [4.8, 45.76, 170.5]})]),
        "coordonnées avec altitude : EPSG:4979 (WGS 84 3D) lu comme EPSG:4326",
    )
    line = feature({"type": "LineString", "coordinates": [[4.8, 45.76], [4.81, 45.77]]})
    yield accepted(
        family,
        "types-melanges",
        "a.geojson",
        collection(points(LYON_POINTS[:1]) + [line]),
        "points et lignes dans la même couche",
    )
    for name, content in {
        "liste": b"[1, 2, 3]",
        "texte": b"id;nom\n1;a\n",
        "vrt": b"<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>/etc/passwd"
        b"</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>",
        "csv-dans-json": b'WKT,id\n"POINT (4.8 45.7)",1\n',
    }.items():
        yield refused(family, f"pas-un-objet-{name}", "a.geojson", content, "format-incoherent")
    good = collection(points(LYON_POINTS))
    for cut in (1, 20, len(good) // 2, len(good) - 2):
        yield refused(
            family, f"tronque-{cut}", "a.geojson", good[:cut], "geo-illisible", "format-incoherent"
        )
    yield refused(
        family,
        "imbrication-profonde",
        "a.geojson",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "geo-illisible",
    )
    yield refused(
        family,
        "nan",
        "a.geojson",
        b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":1},'
        b'"geometry":{"type":"Point","coordinates":[NaN,1e999]}}]}',
        "geo-illisible",
    )
    yield refused(family, "collection-vide", "a.geojson", collection([]), "aucune-ligne")
    yield refused(
        family,
        "sans-attribut",
        "a.geojson",
        collection([feature({"type": "Point", "coordinates": [4.8, 45.7]}, {})]),
        "geo-sans-attribut",
    )
    yield refused(
        family,
        "sans-geometrie",
        "a.geojson",
        collection([feature(None), feature(None, {"id": 2, "nom": "x"})]),
        "geo-sans-geometrie",
    )
    for name, props, rule in (
        ("attribut-fid", {"fid": "a", "nom": "b"}, "colonne-nom-reserve"),
        ("attribut-fid-en-double", {"FID": 1, "nom": "b"}, "colonne-nom-reserve"),
        ("attribut-geom", {"geom": "a", "nom": "b"}, "colonne-nom-reserve"),
        ("attribut-geometry", {"id": 1, "Geometry": "POINT (0 0)"}, "colonne-nom-reserve"),
        ("attribut-casse", {"Nom": "a", "nom": "b"}, "entete-duplique"),
        ("attribut-vide", {"": "a", "id": 1}, "entete-vide"),
        ("attribut-controle", {"a\nb": 1}, "entete-caractere-interdit"),
    ):
        yield refused(
            family,
            name,
            "a.geojson",
            collection([feature({"type": "Point", "coordinates": [4.8, 45.7]}, props)]),
            rule,
        )
    geometry_cases = {
        "ligne-un-point": (
            {"type": "LineString", "coordinates": [[4.8, 45.7]]},
            "geometrie-illisible",
        ),
        "anneau-ouvert": (
            {"type": "Polygon", "coordinates": [[[4.8, 45.7], [4.9, 45.8], [4.9, 45.7]]]},
            "geometrie-illisible",
        ),
        "papillon": ({"type": "Polygon", "coordinates": [BOWTIE]}, "geometrie-invalide"),
        "trou-dehors": (
            {
                "type": "Polygon",
                "coordinates": [
                    [[4.8, 45.7], [4.9, 45.7], [4.9, 45.8], [4.8, 45.8], [4.8, 45.7]],
                    [[5.0, 45.9], [5.01, 45.9], [5.01, 45.91], [5.0, 45.9]],
                ],
            },
            "geometrie-invalide",
        ),
        "multi-chevauchant": (
            {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[4.8, 45.7], [4.9, 45.7], [4.9, 45.8], [4.8, 45.7]]],
                    [[[4.85, 45.7], [4.95, 45.7], [4.95, 45.8], [4.85, 45.7]]],
                ],
            },
            "geometrie-invalide",
        ),
    }
    for name, (geometry, rule) in geometry_cases.items():
        features = points(LYON_POINTS[:2]) + [feature(geometry, {"id": 3, "nom": name})]
        yield refused(family, name, "a.geojson", collection(features), rule)
    swapped = [(y, x) for x, y in LYON_POINTS]
    yield refused(
        family,
        "lat-lon-inverses",
        "a.geojson",
        collection(points(swapped)),
        "coordonnees-inversees",
    )
    yield refused(
        family,
        "un-point-inverse",
        "a.geojson",
        collection(points(LYON_POINTS + [(45.77, 4.85)])),
        "coordonnees-inversees",
    )
    yield refused(
        family,
        "lambert93-declare-4326",
        "a.geojson",
        collection(points(LAMBERT93)),
        "crs-metres-declares-en-degres",
    )
    yield refused(
        family,
        "cc46-declare-4326",
        "a.geojson",
        collection(points(CC46)),
        "crs-metres-declares-en-degres",
    )
    yield refused(
        family,
        "cc46-declare-lambert93",
        "a.geojson",
        collection(points(CC46), crs=named(2154)),
        "crs-incoherent-coordonnees",
    )
    yield refused(
        family,
        "degres-declares-lambert93",
        "a.geojson",
        collection(points(LYON_POINTS), crs=named(2154)),
        "crs-degres-declares-en-metres",
    )
    yield refused(
        family,
        "un-point-en-degres-en-lambert93",
        "a.geojson",
        collection(points(LAMBERT93 + [(4.85, 45.76)]), crs=named(2154)),
        "coordonnees-en-degres",
    )
    yield refused(
        family,
        "hors-domaine",
        "a.geojson",
        collection(points(LYON_POINTS + [(400.0, 45.0)])),
        "coordonnees-hors-domaine",
    )
    yield refused(
        family,
        "crs-non-accepte",
        "a.geojson",
        collection(points(LYON_POINTS), crs=named(27572)),
        "crs-non-accepte",
    )
    yield refused(
        family,
        "crs-contredit",
        "a.geojson",
        collection(points(LYON_POINTS)),
        "crs-incoherent",
        declared_crs=2154,
    )


# --- KML and GML -----------------------------------------------------------------------------


def kml(placemarks: str, prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<kml xmlns="http://www.opengis.net/'
        f'kml/2.2"><Document>{placemarks}</Document></kml>'
    ).encode()


def placemark(name: str, coordinates: str, kind: str = "Point") -> str:
    if kind == "Polygon":
        shape = (
            f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{coordinates}</coordinates>"
            "</LinearRing></outerBoundaryIs></Polygon>"
        )
    else:
        shape = f"<{kind}><coordinates>{coordinates}</coordinates></{kind}>"
    return f"<Placemark><name>{name}</name>{shape}</Placemark>"


KML_POINTS = "".join(placemark(f"banc {i}", f"{x},{y}") for i, (x, y) in enumerate(LYON_POINTS))


def kml_cases() -> Iterator[Case]:
    family = "kml"
    yield accepted(family, "valide", "a.kml", kml(KML_POINTS), "KML lu (EPSG:4326)")
    folders = (
        f"<Folder><name>a</name>{KML_POINTS}</Folder><Folder><name>b</name>{KML_POINTS}</Folder>"
    )
    yield accepted(family, "dossiers", "a.kml", kml(folders), "dossiers réunis en une couche")
    for name, prolog, body in (
        ("milliard-de-rires", LAUGHS.replace("worksheet", "kml"), placemark("&d;", "4.8,45.7")),
        ("xxe", XXE.replace("worksheet", "kml"), placemark("&x;", "4.8,45.7")),
        ("dtd-seule", "<!DOCTYPE kml>", KML_POINTS),
        (
            "entite-parametre",
            '<!DOCTYPE kml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x">%p;]>',
            KML_POINTS,
        ),
    ):
        yield refused(family, name, "a.kml", kml(body, prolog), "xml-dtd-interdite")
    yield refused(
        family,
        "racine-vrt",
        "a.kml",
        b"<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>/etc/passwd"
        b"</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>",
        "format-incoherent",
    )
    yield refused(family, "mal-forme", "a.kml", kml(KML_POINTS)[:-30], "xml-illisible")
    yield refused(family, "pas-du-xml", "a.kml", b"id;nom\n1;a\n", "xml-illisible")
    yield refused(
        family,
        "prologue-geant",
        "a.kml",
        b"<!--" + b"x" * 2_000_000 + b"-->" + kml(KML_POINTS),
        "xml-prologue-trop-long",
        "xml-illisible",
    )
    for encoding in ("UTN-8", "Shift_JIS", "UTF-7", "cp037", "x-inconnu"):
        declared = kml(KML_POINTS).replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode())
        yield refused(family, f"encodage-{encoding}", "a.kml", declared,
                      "xml-encodage-non-pris-en-charge")  # fmt: skip
    latin = kml(placemark("Fontaine Bénite", "4.8,45.76")).decode().replace("UTF-8", "ISO-8859-1")
    yield accepted(family, "iso-8859-1", "a.kml", latin.encode("latin-1"),
                   "encodage déclaré ISO-8859-1 lu")  # fmt: skip
    swapped = "".join(placemark(f"b{i}", f"{y},{x}") for i, (x, y) in enumerate(LYON_POINTS))
    yield refused(family, "lat-lon-inverses", "a.kml", kml(swapped), "coordonnees-inversees")
    ring = " ".join(f"{x},{y}" for x, y in BOWTIE)
    yield refused(
        family,
        "papillon",
        "a.kml",
        kml(KML_POINTS + placemark("p", ring, "Polygon")),
        "geometrie-invalide",
    )
    yield refused(family, "vide", "a.kml", kml(""), "aucune-ligne", "geo-sans-geometrie")


def gml(
    members: str, prolog: str = "", srs: int = 4326, root: str = "ogr:FeatureCollection"
) -> bytes:  # noqa: E501
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<{root} xmlns:ogr='
        '"http://ogr.maptools.org/" xmlns:gml="http://www.opengis.net/gml">'
        f"{members.replace('SRS', f'EPSG:{srs}')}</{root}>"
    ).encode()


def gml_member(fid: int, x: float, y: float) -> str:
    return (
        f'<gml:featureMember><ogr:bancs fid="b{fid}"><ogr:geometryProperty><gml:Point '
        f'srsName="SRS"><gml:coordinates>{x},{y}</gml:coordinates></gml:Point>'
        f"</ogr:geometryProperty><ogr:id>{fid}</ogr:id><ogr:nom>banc {fid}</ogr:nom>"
        "</ogr:bancs></gml:featureMember>"
    )


def gml_cases() -> Iterator[Case]:
    family = "gml"
    l93 = "".join(gml_member(i, x, y) for i, (x, y) in enumerate(LAMBERT93, start=1))
    yield accepted(family, "lambert93", "a.gml", gml(l93, srs=2154), "GML lu")
    for name, prolog in (
        ("milliard-de-rires", LAUGHS.replace("worksheet", "x")),
        ("xxe", XXE.replace("worksheet", "x")),
        ("dtd", '<!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd">'),
    ):
        yield refused(family, name, "a.gml", gml(l93, prolog, srs=2154), "xml-dtd-interdite")
    yield refused(
        family,
        "racine-vrt",
        "a.gml",
        b"<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>/etc/passwd"
        b"</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>",
        "format-incoherent",
    )
    yield refused(
        family,
        "racine-gpx",
        "a.gml",
        b"<gpx version='1.1'><wpt lat='45' lon='4'/></gpx>",
        "format-incoherent",
    )
    for encoding in ("UTF-4", "Ucsv8", "EUC-JP"):
        declared = gml(l93, srs=2154).replace(
            b'encoding="UTF-8"', f'encoding="{encoding}"'.encode()
        )
        yield refused(family, f"encodage-{encoding}", "a.gml", declared,
                      "xml-encodage-non-pris-en-charge")  # fmt: skip
    degrees = "".join(gml_member(i, x, y) for i, (x, y) in enumerate(LYON_POINTS, start=1))
    yield refused(
        family,
        "degres-declares-lambert93",
        "a.gml",
        gml(degrees, srs=2154),
        "crs-degres-declares-en-metres",
    )
    yield refused(family, "mal-forme", "a.gml", gml(l93, srs=2154)[:-40], "xml-illisible")
    yield refused(family, "coupe-au-milieu", "a.gml", gml(l93, srs=2154)[:700], "xml-illisible")
    yield refused(
        family,
        "vide",
        "a.gml",
        gml("", srs=2154),
        "aucune-ligne",
        "geo-sans-geometrie",
        "geo-illisible",
    )


# --- GeoPackage ------------------------------------------------------------------------------


def geopackage(
    frames: dict[str, gpd.GeoDataFrame], edit: Callable[[sqlite3.Connection], None] | None = None
) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.gpkg"
        for layer, frame in frames.items():
            frame.to_file(path, driver="GPKG", layer=layer)
        if edit is not None:
            with sqlite3.connect(path) as connection:
                edit(connection)
            connection.close()
        return path.read_bytes()


def add_view(connection: sqlite3.Connection) -> None:
    connection.executescript(
        "CREATE VIEW sans_fin AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
        "SELECT x AS fid, geom, id_banc FROM n, bancs;"
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
        "VALUES ('sans_fin', 'features', 'sans_fin', 4326);"
        "INSERT INTO gpkg_geometry_columns VALUES ('sans_fin', 'geom', 'POINT', 4326, 0, 0);"
    )


def add_styles(connection: sqlite3.Connection) -> None:
    """What QGIS adds when it saves a layer's style in the GeoPackage."""
    connection.executescript(
        "CREATE TABLE layer_styles (id INTEGER PRIMARY KEY, f_table_name TEXT, styleQML TEXT);"
        "INSERT INTO layer_styles VALUES (1, 'bancs', '<qgis/>');"
        "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
        "VALUES ('layer_styles', 'attributes', 'layer_styles');"
    )


def drop_application_id(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA application_id = 0")


def gpkg_cases() -> Iterator[Case]:
    family = "gpkg"
    frame = bench_frame()
    good = geopackage({"bancs": frame})
    yield accepted(family, "valide", "a.gpkg", good, "GeoPackage lu")
    yield accepted(
        family,
        "lambert93",
        "a.gpkg",
        geopackage({"bancs": bench_frame().to_crs(2154)}),
        "GeoPackage lu dans son CRS",
    )
    yield accepted(
        family,
        "table-de-styles",
        "a.gpkg",
        geopackage({"bancs": frame}, add_styles),
        "table sans géométrie (styles QGIS) laissée de côté",
    )
    yield refused(
        family,
        "vue-recursive",
        "a.gpkg",
        geopackage({"bancs": frame}, add_view),
        "gpkg-vue-refusee",
    )
    yield refused(
        family, "deux-couches", "a.gpkg", geopackage({"a": frame, "b": frame}), "plusieurs-couches"
    )
    yield refused(
        family,
        "sqlite-sans-identifiant",
        "a.gpkg",
        geopackage({"bancs": frame}, drop_application_id),
        "format-incoherent",
    )
    yield refused(family, "pas-sqlite", "a.gpkg", b"id;nom\n1;a\n", "format-incoherent")
    for cut in (100, 4096, len(good) // 2):
        yield refused(
            family,
            f"tronque-{cut}",
            "a.gpkg",
            good[:cut],
            "gpkg-illisible",
            "geo-illisible",
            "format-incoherent",
        )
    polygons = gpd.GeoDataFrame(
        {"id": [1, 2]},
        geometry=[Polygon(BOWTIE), Polygon([(4.8, 45.7), (4.81, 45.7), (4.81, 45.71)])],
        crs="EPSG:4326",
    )
    yield refused(family, "papillon", "a.gpkg", geopackage({"p": polygons}), "geometrie-invalide")
    lines = gpd.GeoDataFrame(
        {"id": [1]}, geometry=[LineString([(45.76, 4.8), (45.77, 4.81)])], crs="EPSG:4326"
    )
    yield refused(
        family, "ligne-inversee", "a.gpkg", geopackage({"l": lines}), "coordonnees-inversees"
    )
    metres = gpd.GeoDataFrame({"id": [1, 2, 3, 4]}, geometry=[Point(p) for p in LAMBERT93])
    metres = metres.set_crs(4326)
    yield refused(
        family,
        "metres-declares-4326",
        "a.gpkg",
        geopackage({"m": metres}),
        "crs-metres-declares-en-degres",
    )
    other = bench_frame().to_crs(27572)
    yield refused(
        family, "crs-non-accepte", "a.gpkg", geopackage({"bancs": other}), "crs-non-accepte"
    )


# --- formats ---------------------------------------------------------------------------------


def format_cases() -> Iterator[Case]:
    for filename in ("a.ods", "a.xls", "a.exe", "a", "a.csv.exe", "a.shp", "a.kmz", "a.sqlite"):
        yield refused("format", filename, filename, b"id;nom\n1;a\n", "format-non-accepte")


def build_corpus() -> list[Case]:
    parts = shapefile_parts(bench_frame())
    families = [
        csv_empty(),
        csv_binary(),
        csv_encodings(),
        csv_markup(),
        csv_lines(),
        csv_quotes(),
        csv_ragged(),
        csv_separators(),
        csv_headers(),
        zip_cases(parts),
        xlsx_cases(),
        geojson_cases(),
        kml_cases(),
        gml_cases(),
        gpkg_cases(),
        format_cases(),
    ]
    cases = [case for family in families for case in family]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
