"""The zipped Shapefile reader: the archive checked (`pipelines.safety`), exactly one `.shp`
whose parts are extracted under names we choose into our own folder, its DBF field names
mended where GDAL would cut a UTF-8 letter in two."""

from __future__ import annotations

import contextlib
from pathlib import Path

from core.problems import reject
from pipelines import safety
from pipelines.read import STAGE
from pipelines.read.geographic import GeographicReader

SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
SHP_MAGIC = b"\x00\x00\x27\x0a"


def _extract_shapefile(path: Path, work: Path) -> Path:
    """Extract the Shapefile's parts, under names we choose, into our own folder."""
    with contextlib.closing(safety.open_zip(path)) as archive:
        infos = safety.check_archive(archive, path.name, "shapefile")
        files = [i for i in infos if not i.is_dir() and not _is_resource_fork(i.filename)]
        shapefiles = [i for i in files if i.filename.lower().endswith(".shp")]
        if len(shapefiles) != 1:
            raise reject(
                STAGE,
                "shapefile-introuvable",
                f"L'archive {path.name} doit contenir "
                f"exactement un fichier .shp (trouvé : {len(shapefiles)}).",
            )
        stem = shapefiles[0].filename[:-4].lower()
        budget = safety.MAX_UNCOMPRESSED_BYTES["shapefile"]
        for info in files:
            suffix = info.filename[-4:].lower()
            if info.filename[:-4].lower() == stem and suffix in SHAPEFILE_PARTS:
                budget -= safety.extract_member(
                    archive, info, work / f"couche{suffix}", budget, path.name
                )
    target = work / "couche.shp"
    _mend_field_names(work / "couche.dbf")
    with target.open("rb") as handle:
        if handle.read(4) != SHP_MAGIC:
            raise reject(
                STAGE,
                "shapefile-invalide",
                f"Le fichier {shapefiles[0].filename} de l'archive {path.name} n'est pas un "
                "fichier .shp valide.",
            )
    return target


DBF_HEADER = 32  # bytes before the field descriptors, and the size of each descriptor
DBF_NAME = 11  # a field name's bytes, NUL-padded


def _mend_field_names(dbf: Path) -> None:
    """A DBF stores field names in 10 bytes: GDAL cuts a UTF-8 name there, sometimes inside
    an accented letter ("Intitul\xc3_1"), which no UTF-8 reader then accepts. The broken
    bytes are dropped, in our own copy, so the name reads "Intitul_1"."""
    cpg = dbf.with_suffix(".cpg")
    declared = cpg.read_bytes()[:64].decode("ascii", "ignore") if cpg.is_file() else ""
    if not dbf.is_file() or "utf" not in declared.lower():
        return  # names in another encoding are GDAL's to decode, as they are
    with dbf.open("r+b") as handle:
        header = handle.read(DBF_HEADER)
        if len(header) < DBF_HEADER:
            return
        header_size = int.from_bytes(header[8:10], "little")
        for offset in range(DBF_HEADER, header_size - 1, DBF_HEADER):
            handle.seek(offset)
            raw = handle.read(DBF_NAME)
            if not raw or raw[0] == 0x0D:  # the descriptors' terminator
                break
            name = raw.split(b"\0", 1)[0]
            mended = name.decode("utf-8", errors="ignore").encode("utf-8")
            if mended != name:
                handle.seek(offset)
                handle.write(mended.ljust(DBF_NAME, b"\0"))


def _is_resource_fork(name: str) -> bool:
    """macOS adds __MACOSX/._x.shp copies that are not Shapefiles."""
    normalised = name.replace("\\", "/")
    return normalised.startswith("__MACOSX/") or normalised.rsplit("/", 1)[-1].startswith("._")


class ShapefileReader(GeographicReader):
    """Zipped Shapefiles (`.zip`)."""

    name = "shapefile"

    def prepare(self, path: Path, work: Path) -> tuple[str, dict[str, str]]:
        return str(_extract_shapefile(path, work)), {}
