"""The bundled samples: every valid one publishes, the invalid one gets its 7 documented errors."""

from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

SAMPLES = PROJECT_ROOT / "samples"
VALID = sorted(p for p in (SAMPLES / "inbox").glob("*/*") if p.is_dir())


def data_file(folder: Path) -> Path:
    return next(p for p in folder.iterdir() if p.name not in {"metadata.yaml", "schema.json"})


@pytest.mark.parametrize("folder", VALID, ids=[f"{p.parent.name}/{p.name}" for p in VALID])
def test_each_valid_sample_publishes(submit, store, folder: Path) -> None:
    outcome = submit(data_file(folder), folder / "metadata.yaml", producer=folder.parent.name)
    assert outcome.status == "publiee", outcome.summary()
    assert store.current_release(outcome.dataset).row_count > 0


def test_samples_cover_every_required_dialect(store, submit) -> None:
    formats = {data_file(folder).suffix for folder in VALID}
    assert formats == {".csv", ".geojson", ".zip", ".xlsx"}
    french_excel = SAMPLES / "inbox" / "ecully" / "equipements-sportifs"
    raw = data_file(french_excel).read_bytes()
    assert b";" in raw and b"\r\n" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_invalid_sample_reports_exactly_its_documented_errors(submit, store) -> None:
    valid = SAMPLES / "inbox" / "lyon" / "fontaines-eau-potable"
    first = submit(data_file(valid), valid / "metadata.yaml", producer="lyon")
    invalid = SAMPLES / "invalid" / "lyon" / "fontaines-eau-potable"
    outcome = submit(data_file(invalid), invalid / "metadata.yaml", producer="lyon")
    assert outcome.status == "refusee"
    found = {(p.row, p.column, p.rule) for p in outcome.report.problems}
    assert found == {
        (4, "arrondissement", "type"),
        (7, "arrondissement", "maximum"),
        (10, "nom", "obligatoire"),
        (13, "id_fontaine", "cle-primaire"),
        (15, "id_fontaine", "motif"),
        (18, "modele", "enum"),
        (20, "en_service", "type"),
    }
    assert store.current_release("lyon-fontaines-eau-potable").id == first.release
