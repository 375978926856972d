"""Guards for untrusted files, applied before any parser or GDAL driver sees them.

A commune's upload (or a pulled source) may be broken or hostile: a zip bomb, an archive
whose members climb out of the folder they are extracted to, symbolic links, an XML
document declaring entities (billion laughs, external entities), a file far larger than
anything the platform serves. Each guard raises `UnsafeInput` with a stable rule code
and a French message; the read stage turns it into a `SubmissionRejected`, the pull of a
source into a `SourceError`.

Limits are module constants, read at call time (tests lower them).
"""

from __future__ import annotations

import io
import lzma
import re
import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from xml.parsers import expat

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from core.input_formats import DESCRIPTIONS

MIB = 1024 * 1024
GIB = 1024 * MIB

# Largest file accepted per format (bytes): each input format's description says, and why.
MAX_FILE_BYTES = {d.name: d.max_bytes for d in DESCRIPTIONS}

# Archives (zipped Shapefiles, XLSX workbooks).
MAX_ARCHIVE_MEMBERS = 1000
MAX_UNCOMPRESSED_BYTES = {"shapefile": 4 * GIB, "xlsx": 512 * MIB}  # openpyxl holds shared strings
MAX_COMPRESSION_RATIO = 200  # deflate tops out near 1032:1; data rarely exceeds 50:1
RATIO_FLOOR_BYTES = 32 * MIB  # small members may compress as well as they like
NESTED_ARCHIVE_SUFFIXES = (
    ".zip",
    ".kmz",
    ".gz",
    ".tgz",
    ".tar",
    ".7z",
    ".rar",
    ".bz2",
    ".xz",
    ".zst",
    ".jar",
)
COPY_CHUNK = MIB
# What reading a damaged archive raises (bad offsets end in OSError from seek, odd sizes in
# ValueError or struct.error, damaged compressed data in zlib or lzma errors).
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OSError,
    ValueError,
    OverflowError,
    struct.error,
)

# XML: the prolog (before the root element) is where a DTD, hence any entity, must be.
MAX_XML_PROLOG_BYTES = 1 * MIB
XML_CHUNK = 64 * 1024
UTF8_BOM = b"\xef\xbb\xbf"


class UnsafeInput(Exception):
    """A file the platform refuses to parse further: `rule` (code) and French `message`."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def human_size(size: int) -> str:
    """Bytes as the French say them (Mo, Go)."""
    if size >= GIB:
        return f"{size / GIB:.1f} Go".replace(".", ",")
    if size >= MIB:
        return f"{size / MIB:.1f} Mo".replace(".", ",")
    return f"{size} octets"


def check_file_size(path: Path, fmt: str) -> None:
    limit = MAX_FILE_BYTES.get(fmt)
    size = path.stat().st_size
    if limit is not None and size > limit:
        raise UnsafeInput(
            "fichier-trop-volumineux",
            f"Le fichier {path.name} fait {human_size(size)}, au-delà de la limite de "
            f"{human_size(limit)} pour ce format. Découpez-le ou contactez l'équipe data.",
        )


# --- archives --------------------------------------------------------------------------------


def check_archive(archive: zipfile.ZipFile, name: str, kind: str) -> list[zipfile.ZipInfo]:
    """Refuse a zip bomb, climbing or absolute member names, links, encrypted members and,
    for a zipped Shapefile, archives inside the archive; the members, checked."""
    infos = archive.infolist()
    if len(infos) > MAX_ARCHIVE_MEMBERS:
        raise UnsafeInput(
            "zip-trop-de-fichiers",
            f"L'archive {name} contient {len(infos)} fichiers (maximum {MAX_ARCHIVE_MEMBERS}).",
        )
    seen: set[str] = set()
    for info in infos:
        _check_member(info, name, nested_allowed=kind == "xlsx")
        key = info.filename.replace("\\", "/").lower()
        if key in seen:
            raise UnsafeInput(
                "zip-fichier-en-double",
                f"L'archive {name} contient deux fois le fichier « {_printable(info.filename)} ».",
            )
        seen.add(key)
    _check_sizes(infos, name, MAX_UNCOMPRESSED_BYTES[kind])
    return infos


def _check_member(info: zipfile.ZipInfo, name: str, nested_allowed: bool) -> None:
    member = info.filename
    if not is_safe_member_name(member):
        raise UnsafeInput(
            "zip-chemin-interdit",
            f"L'archive {name} contient un chemin interdit : « {_printable(member)} » "
            "(chemin absolu ou remontant hors du dossier avec « .. »).",
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeInput(
            "zip-lien-symbolique",
            f"L'archive {name} contient un lien symbolique (« {_printable(member)} ») : "
            "les liens ne sont pas acceptés, mettez-y les fichiers eux-mêmes.",
        )
    if info.flag_bits & 0x1:
        raise UnsafeInput(
            "zip-chiffre",
            f"L'archive {name} est protégée par un mot de passe (« {_printable(member)} ») : "
            "déposez une archive non chiffrée.",
        )
    if not nested_allowed and member.lower().endswith(NESTED_ARCHIVE_SUFFIXES):
        raise UnsafeInput(
            "zip-imbrique",
            f"L'archive {name} contient une autre archive (« {_printable(member)} ») : "
            "déposez une seule archive, sans archive à l'intérieur.",
        )


def is_safe_member_name(member: str) -> bool:
    """A relative path that stays inside the folder it is extracted to."""
    if not member or "\x00" in member:
        return False
    normalised = member.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return False
    return ".." not in PurePosixPath(normalised).parts


def _check_sizes(infos: list[zipfile.ZipInfo], name: str, limit: int) -> None:
    total = sum(info.file_size for info in infos)
    if total > limit:
        raise UnsafeInput(
            "zip-trop-volumineux",
            f"L'archive {name} se décompresse en {human_size(total)}, au-delà de la limite "
            f"de {human_size(limit)}.",
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise UnsafeInput(
                "zip-bombe",
                f"Le fichier « {_printable(info.filename)} » de l'archive {name} se "
                f"décompresse {ratio:.0f} fois (maximum {MAX_COMPRESSION_RATIO}) : "
                "archive refusée (bombe de décompression).",
            )


def extract_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, name: str
) -> int:
    """Copy one member to `target` (a path we chose, inside our own folder), never more
    bytes than it declares nor than `budget`; the bytes written."""
    allowed = min(info.file_size, budget)
    written = 0
    try:
        with archive.open(info) as source, target.open("wb") as out:
            while chunk := source.read(COPY_CHUNK):
                written += len(chunk)
                if written > allowed:
                    raise UnsafeInput(
                        "zip-bombe",
                        f"Le fichier « {_printable(info.filename)} » de l'archive {name} "
                        "se décompresse au-delà de la taille qu'il annonce ou de la limite : "
                        "archive refusée (bombe de décompression).",
                    )
                out.write(chunk)
    except ZIP_ERRORS as error:
        raise UnsafeInput(
            "zip-illisible",
            f"Le fichier « {_printable(info.filename)} » de l'archive {name} est illisible "
            f"({zip_error_reason(error)}).",
        ) from error
    return written


ZIP_LOCAL_HEADER = b"PK\x03\x04"


def open_zip(path: Path) -> zipfile.ZipFile:
    with path.open("rb") as handle:
        starts_as_zip = handle.read(4) == ZIP_LOCAL_HEADER
    if not starts_as_zip and zipfile.is_zipfile(path):
        # A zip reader finds the archive from its end: bytes before it (another format, a
        # "polyglot" read one way here and another way elsewhere) are refused.
        raise UnsafeInput(
            "zip-polyglotte",
            f"L'archive {path.name} ne commence pas par un en-tête zip : des données d'un "
            "autre format la précèdent. Déposez l'archive seule.",
        )
    try:
        return zipfile.ZipFile(path)
    except ZIP_ERRORS as error:
        raise UnsafeInput(
            "zip-illisible",
            f"L'archive {path.name} n'est pas un zip valide ({zip_error_reason(error)}).",
        ) from error


def zip_error_reason(error: Exception) -> str:
    text = str(error)
    if "CRC" in text:
        return "données corrompues : somme de contrôle incorrecte"
    if "not a zip file" in text or "Truncated" in text or isinstance(error, EOFError):
        return "ce n'est pas une archive zip, ou elle est tronquée"
    if isinstance(error, NotImplementedError):
        return "méthode de compression non prise en charge"
    if "encrypted" in text:
        return "fichier chiffré"
    return "archive corrompue"


def _printable(text: str, limit: int = 120) -> str:
    shown = "".join(ch if ch.isprintable() else "�" for ch in text)
    return shown if len(shown) <= limit else shown[:limit] + "…"


# --- XML -------------------------------------------------------------------------------------


class _RootReached(Exception):
    """Raised by the parser's target at the root element: the prolog is over."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


class _StopAtRoot:
    """An ElementTree target that stops parsing at the root element."""

    def start(self, tag: str, _attributes: dict[str, str]) -> None:
        raise _RootReached(tag)

    def close(self) -> None:
        return None


def check_xml_stream(stream: BinaryIO, name: str, *, allow_doctype: bool) -> str:
    """Parse an XML document's prolog with defusedxml, refusing any entity declaration or
    external reference (and, unless `allow_doctype`, any DTD at all); the root element's
    tag, `{namespace}local` as ElementTree writes it.

    Entities can only be declared in the DTD, which must come before the root element: once
    the root starts, no later entity can be expanded, so the rest is left to the reader."""
    parser = DefusedXMLParser(
        target=_StopAtRoot(),
        forbid_dtd=not allow_doctype,
        forbid_entities=True,
        forbid_external=True,
    )
    head, fed = b"", 0
    try:
        while chunk := stream.read(XML_CHUNK):
            head, fed = head or chunk, fed + len(chunk)
            parser.feed(chunk)
            if fed > MAX_XML_PROLOG_BYTES:
                raise UnsafeInput(
                    "xml-prologue-trop-long",
                    f"Le document XML {name} n'a pas d'élément racine dans son premier "
                    f"{human_size(MAX_XML_PROLOG_BYTES)}.",
                )
        parser.close()
    except _RootReached as reached:
        return reached.tag
    except UnsafeInput:
        raise
    except Exception as error:  # defusedxml's refusals, syntax and encoding errors
        raise _xml_refusal(error, name, head) from error
    raise UnsafeInput("xml-illisible", f"Le document XML {name} n'a pas d'élément racine.")


def _xml_refusal(error: Exception, name: str, head: bytes) -> UnsafeInput:
    if isinstance(error, DTDForbidden):
        return UnsafeInput(
            "xml-dtd-interdite",
            f"Le document XML {name} déclare une DTD (<!DOCTYPE …>) : refusé, une DTD "
            "peut définir des entités dangereuses (XXE, « billion laughs »).",
        )
    if isinstance(error, EntitiesForbidden):
        return UnsafeInput(
            "xml-entites-interdites",
            f"Le document XML {name} déclare des entités (<!ENTITY …>) : refusé "
            "(expansion d'entités, « billion laughs », entités externes).",
        )
    if isinstance(error, ExternalReferenceForbidden):
        return UnsafeInput(
            "xml-reference-externe",
            f"Le document XML {name} fait référence à une ressource externe : refusé.",
        )
    code = getattr(error, "code", None)
    if isinstance(error, ParseError | expat.ExpatError) and code not in UNREADABLE_ENCODINGS:
        line, column = getattr(error, "position", None) or (error.lineno, error.offset)
        return UnsafeInput(
            "xml-illisible",
            f"Le document XML {name} est mal formé (ligne {line}, colonne {column}) : "
            f"{_expat_reason(getattr(error, 'code', None))}.",
        )
    if isinstance(error, LookupError | ValueError | UnicodeError | ParseError | expat.ExpatError):
        declared = re.search(rb"""encoding\s*=\s*["']([^"']{0,40})""", head[:200])
        encoding = declared.group(1).decode("ascii", "replace") if declared else "?"
        return UnsafeInput(
            "xml-encodage-non-pris-en-charge",
            f"Le document XML {name} déclare l'encodage « {_printable(encoding)} », inconnu "
            "ou non pris en charge : enregistrez-le en UTF-8.",
        )
    raise error


def check_xml_well_formed(stream: BinaryIO, name: str) -> None:
    """The whole document parses (C expat, no handler but ones refusing any declaration)."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(*_args: object) -> None:
        raise UnsafeInput(
            "xml-dtd-interdite", f"Le document XML {name} déclare une DTD (<!DOCTYPE …>)."
        )

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    head = b""
    try:
        while chunk := stream.read(XML_CHUNK):
            head = head or chunk
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except UnsafeInput:
        raise
    except Exception as error:  # syntax and encoding errors
        raise _xml_refusal(error, name, head) from error


EXPAT_REASONS = {
    "syntax error": "erreur de syntaxe",
    "no element found": "document vide ou coupé avant sa fin",
    "not well-formed (invalid token)": "caractère ou balise invalide",
    "unclosed token": "balise non refermée (document coupé ?)",
    "mismatched tag": "balise fermante qui ne correspond pas à la balise ouverte",
    "junk after document element": "contenu après l'élément racine",
    "undefined entity": "entité non définie",
    "unclosed CDATA section": "section CDATA non refermée",
    "XML declaration not well-formed": "déclaration XML mal formée",
    "encoding specified in XML declaration is incorrect": "encodage déclaré incorrect",
    "unknown encoding": "encodage inconnu",
}


UNREADABLE_ENCODINGS = {
    expat.errors.codes[expat.errors.XML_ERROR_UNKNOWN_ENCODING],
    expat.errors.codes[expat.errors.XML_ERROR_INCORRECT_ENCODING],
}


def _expat_reason(code: int | None) -> str:
    reason = expat.ErrorString(code) if code else "erreur de syntaxe"
    return EXPAT_REASONS.get(reason, reason)


def check_xml_bytes(content: bytes, name: str = "reçu", *, allow_doctype: bool = True) -> str:
    return check_xml_stream(io.BytesIO(content), name, allow_doctype=allow_doctype)


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def check_archive_xml(
    archive: zipfile.ZipFile, infos: Iterable[zipfile.ZipInfo], name: str
) -> None:
    """Every XML part of an archive (an XLSX workbook) without DTD nor entity."""
    for info in infos:
        if not info.filename.lower().endswith((".xml", ".rels", ".vml")):
            continue
        member = f"{name} (partie « {_printable(info.filename)} »)"
        try:
            with archive.open(info) as stream:
                check_xml_stream(stream, member, allow_doctype=False)
        except UnsafeInput as error:
            if error.rule != "xml-illisible" or info.file_size:
                raise
        except ZIP_ERRORS as e:
            raise UnsafeInput(
                "zip-illisible",
                f"La partie « {_printable(info.filename)} » de {name} est illisible "
                f"({zip_error_reason(e)}).",
            ) from e


def copy_bounded(source: Path, target: Path) -> None:
    """Copy a file we already size-checked into our own working folder."""
    with source.open("rb") as reader, target.open("wb") as writer:
        shutil.copyfileobj(reader, writer, COPY_CHUNK)
