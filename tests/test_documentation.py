"""The README and docs/ hold together for a reader of the repository alone: every relative
link (and image) leads to a file of the repository, every anchor to a heading of its page,
and nothing points outside the repository; the README opens with its two commands."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(document: Path) -> str:
    """The document without its code blocks (a `[x](y)` in code is not a link)."""
    return FENCE.sub("", document.read_text(encoding="utf-8"))


def links(document: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", prose(document))
    return INLINE.findall(text) + REFERENCE.findall(text)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, without punctuation, spaces
    as hyphens (accented letters kept)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFC", text.strip().lower())
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    return {anchor(h) for h in HEADING.findall(prose(document))}


def heading_of(document: Path, fragment: str) -> bool:
    return unquote(fragment) in anchors(document)


def local(target: str) -> bool:
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_to_a_file_or_heading_of_the_repository(document):
    broken = []
    for target in links(document):
        parts = urlsplit(target)
        if parts.scheme in {"http", "https", "mailto"}:
            continue
        if not local(target):
            broken.append(f"{target} : ni une adresse web, ni un fichier du dépôt")
            continue
        path = unquote(parts.path)
        if path.startswith("/"):
            broken.append(f"{target} : chemin absolu, hors du dépôt")
            continue
        file = (document.parent / path).resolve() if path else document
        if not file.is_relative_to(ROOT):
            broken.append(f"{target} : hors du dépôt")
        elif not file.exists():
            broken.append(f"{target} : fichier absent")
        elif file.suffix == ".md" and parts.fragment and not heading_of(file, parts.fragment):
            broken.append(f"{target} : pas de titre « {parts.fragment} » dans {file.name}")
    assert broken == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_document_sends_the_reader_outside_the_repository(document):
    text = document.read_text(encoding="utf-8")
    assert "../shared" not in text and "/work/" not in text


def test_the_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.split("\n## ")[1]
    assert start.startswith("Démarrer")
    first_block = FENCE.search(start)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(0).splitlines()[1:-1]]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_anchor_of_a_heading_is_github_s():
    assert anchor("Agent d'une commune") == "agent-dune-commune"
    assert anchor("Positions : des cartes") == "positions--des-cartes"
    assert anchor("L'API de dépôt") == "lapi-de-dépôt"
    assert anchor("`metadata.yaml`") == "metadatayaml"
