"""The inbox side of pull delivery: which folders of a commune's inbox declare a source.

A folder inbox/<producer>/<dataset>/ whose metadata declares a `source:` and that holds no
data file is pulled; a dropped data file makes it an upload (`ready_submissions`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.inbox import METADATA_NAMES, NOT_DATA
from core.input_formats import FORMAT_BY_SUFFIX
from core.safe_yaml import read_producer_yaml


def source_folders(inbox: Path, producer: str) -> list[Path]:
    """Folders inbox/<producer>/<dataset>/ whose metadata declares a source and that hold
    no data file (a dropped file is an upload: `ready_submissions` takes it)."""
    folders = []
    for folder in sorted((inbox / producer).glob("*/")):
        metadata = next((folder / n for n in METADATA_NAMES if (folder / n).is_file()), None)
        has_data = any(
            p.suffix.lower() in FORMAT_BY_SUFFIX and p.name not in NOT_DATA and p.is_file()
            for p in folder.iterdir()
        )
        if metadata is not None and not has_data and _declares_source(metadata):
            folders.append(folder)
    return folders


def _declares_source(metadata: Path) -> bool:
    try:
        document = read_producer_yaml(metadata)
    except (OSError, ValueError, yaml.YAMLError):  # UnsafeYaml and UnicodeDecodeError included
        return False  # the pipeline reports unreadable metadata when a file comes with it
    return isinstance(document, dict) and isinstance(document.get("source"), dict)
