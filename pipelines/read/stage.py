"""The read stage: a commune's data file to a `SourceTable`, or a French refusal.

The format comes from the file's extension (`core.input_formats`), its reader from the
registry (`pipelines.read.registry`); whatever escapes a reader becomes a French rejection,
never a crash; text a wrong encoding mangled is repaired (`pipelines.mojibake`); a file
without any row is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.csv_head import refuse_empty
from core.input_formats import FORMAT_BY_SUFFIX, INPUT_FORMATS, accepted_files
from core.problems import SubmissionRejected, reject
from pipelines import safety
from pipelines.mojibake import repair_mojibake
from pipelines.read import STAGE
from pipelines.read.registry import reader_for
from pipelines.read.table import SourceTable
from pipelines.safety import UnsafeInput

LOGGER = logging.getLogger(__name__)


def detect_format(path: Path) -> str:
    """The input format named by the file's extension; refused when there is none."""
    fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise reject(
            STAGE,
            "format-non-accepte",
            f"Format de fichier « {path.suffix or path.name} » non accepté. Formats acceptés : "
            f"{accepted_files()}.",
        )
    return fmt


def read_source(path: Path, declared_crs: int | None = None) -> SourceTable:
    """Read a data file; raise SubmissionRejected when it cannot be read at all."""
    if not path.is_file():
        raise reject(STAGE, "fichier-absent", f"Fichier de données introuvable : {path.name}")
    refuse_empty(path.stat().st_size, path.name)
    fmt = detect_format(path)
    source = _read_guarded(path, fmt, declared_crs)
    source.table = repair_mojibake(source.table, source.problems, source.row_number)
    if source.table.num_rows == 0:
        if not source.problems.valid:
            raise SubmissionRejected(source.problems)  # every row was refused: say why
        raise reject(
            STAGE, "aucune-ligne", f"Le fichier {path.name} ne contient aucune ligne de données."
        )
    return source


def _read_guarded(path: Path, fmt: str, declared_crs: int | None) -> SourceTable:
    """The format's reader; whatever escapes it becomes a French rejection, never a crash."""
    try:
        safety.check_file_size(path, fmt)
        return reader_for(fmt).read(path, declared_crs)
    except UnsafeInput as error:
        raise reject(STAGE, error.rule, error.message) from error
    except SubmissionRejected:
        raise
    except Exception as error:  # the last line of defence: logged, and refused in French
        LOGGER.exception("Unexpected error while reading %s", path)
        raise reject(
            STAGE,
            "fichier-illisible",
            f"Le fichier {path.name} n'a pas pu être lu comme un fichier "
            f"{INPUT_FORMATS[fmt].label} ({type(error).__name__}) : vérifiez qu'il n'est pas "
            "corrompu et qu'il est bien dans ce format.",
        ) from error
