"""WMS and WFS capabilities documents, assembled from one fragment per layer and cached.

MapServer writes a capabilities document by walking every layer of its map file, and the
walk grows faster than the layers: 1 s for 1,000 layers, 88 s for 10,000 (WMS 1.3.0).
So the document is never asked of the whole map file: MapServer writes it for batches of
a few layers (one map file per batch, `BATCH` layers), each layer's element (`<Layer>`,
`<FeatureType>`) is cut out and kept, and the document is the one MapServer writes for
the first layer with every layer's element in its place. A change asks MapServer again
only for the changed layers' elements; the document is then assembled once and served
from memory until the next change.

MapServer stays the author of every byte: the cut is on the elements' own tags, and an
answer that does not split as expected (an exception report, an unknown version) is not
cached (the request then goes to the whole map file, as before).
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

LOGGER = logging.getLogger(__name__)
GZIP_LEVEL = 1  # fast: done once per change, the first time a client accepts gzip
BATCH = 100  # layers per MapServer run (its walk is quadratic: keep the batches small)
PARALLEL = 2  # MapServer runs at once while building
MAX_VARIANTS = 6  # capabilities variants (service, version…) kept per service instance
# What a cached capabilities variant may ask besides SERVICE and REQUEST (anything else
# goes to MapServer on the whole map file): a known version, a known format
VERSIONS = re.compile(r"^(1\.0\.0|1\.1\.0|1\.1\.1|1\.3\.0|2\.0\.0)(,(1\.0\.0|1\.1\.0|2\.0\.0))*$")
VARIANT_PARAMETERS = {
    "version": VERSIONS,
    "acceptversions": VERSIONS,
    "format": re.compile(r"^(text/xml|application/xml|application/vnd\.ogc\.wms_xml)$"),
}
CHILD = {"WMS": re.compile(rb"<Layer[\s>]"), "WFS": re.compile(rb"<FeatureType[\s>]")}
CLOSE = {"WMS": b"</Layer>", "WFS": b"</FeatureType>"}

Variant = tuple[str, tuple[tuple[str, str], ...]]  # service, the other parameters
# Runs MapServer's GetCapabilities for `query` on a map file holding `names` (in order),
# with the whole service's description when the last argument is True (else the layers'
# own): the HTTP status, headers and body.
Runner = Callable[[Sequence[str], str, bool], tuple[int, dict[str, str], bytes]]
# The variants built ahead, at the first change: what GIS clients ask first
DEFAULT_VARIANTS: tuple[Variant, ...] = (
    ("WMS", (("version", "1.3.0"),)),
    ("WFS", (("version", "2.0.0"),)),
)


@dataclass
class Document:
    status: int
    headers: dict[str, str]
    body: bytes
    _gzipped: bytes | None = None

    @property
    def compressed(self) -> bytes | None:
        """The compressed body when already made (None: not yet)."""
        return self._gzipped

    def gzipped(self) -> bytes:
        """The body compressed (gzip), once: 10,000 layers make a WMS document of 26 MB."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=GZIP_LEVEL, mtime=0)
        return self._gzipped


def variant_of(service: str, query: str) -> Variant | None:
    """The cached variant a GetCapabilities GET asks for (None: not a cacheable one)."""
    pairs = [(k.lower(), v) for k, v in parse_qsl(query, keep_blank_values=True)]
    params = dict(pairs)
    if params.get("request", "").lower() != "getcapabilities":
        return None
    asked = params.get("service", service).upper()
    if asked != service:
        return None
    others = tuple(sorted((k, v) for k, v in pairs if k not in ("service", "request", "map")))
    if any(
        key not in VARIANT_PARAMETERS or not VARIANT_PARAMETERS[key].match(value)
        for key, value in others
    ):
        return None
    return service, others


def split(service: str, body: bytes, expected: int) -> tuple[bytes, list[bytes], bytes] | None:
    """The document before the layers' elements, each element, the document after them;
    None when it does not hold exactly `expected` of them."""
    starts = [match.start() for match in CHILD[service].finditer(body)]
    if service == "WMS":
        starts = starts[1:]  # the first is the root layer, which holds the others
    if len(starts) != expected or not starts:
        return None
    elements = []
    end = 0
    for start in starts:
        close = body.find(CLOSE[service], start)
        if close < 0:
            return None
        end = close + len(CLOSE[service])
        elements.append(body[start:end])
    return body[: starts[0]], elements, body[end:]


class CapabilitiesCache:
    """The capabilities documents of one MapServer instance, per variant."""

    def __init__(self, run: Runner) -> None:
        self.run = run
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._elements: dict[Variant, dict[str, bytes]] = {}
        self._documents: dict[Variant, Document] = {}

    def layers_changed(self, names: list[str], changed: set[str]) -> None:
        """The served layers are now `names` (in order); those in `changed` are new or
        different: their elements are asked again, every cached document assembled again."""
        with self._lock:
            self._names = list(names)
            for variant in DEFAULT_VARIANTS:
                self._elements.setdefault(variant, {})
            variants = list(self._elements)
            with ThreadPoolExecutor(PARALLEL) as pool:
                done = list(pool.map(lambda v: self._refreshed(v, changed), variants))
            for variant, succeeded in zip(variants, done, strict=True):
                if not succeeded:  # built again on demand
                    self._elements.pop(variant, None)
                    self._documents.pop(variant, None)

    def _refreshed(self, variant: Variant, changed: set[str]) -> bool:
        try:
            self._refresh(variant, changed)
        except Exception:
            LOGGER.exception("Capacités %s non assemblées", variant)
            return False
        return True

    def document(self, variant: Variant) -> Document | None:
        """The document of `variant`, built once per change (None: MapServer's answer is
        not a document to cache)."""
        with self._lock:
            found = self._documents.get(variant)
            if found is not None:
                return found
            if not self._names:
                return None
            while len(self._elements) >= MAX_VARIANTS:
                oldest = next(iter(self._elements))
                self._elements.pop(oldest)
                self._documents.pop(oldest, None)
            try:
                self._refresh(variant, set(self._names))
            except ValueError:
                self._elements.pop(variant, None)
                return None
            return self._documents.get(variant)

    def _refresh(self, variant: Variant, changed: set[str]) -> None:
        """The variant's document again: MapServer's for the changed layers (or the first
        one) with the whole service's description, every other layer's element kept, put
        in place of theirs. Many changed layers (the first build) are asked in batches."""
        elements = self._elements.setdefault(variant, {})
        live = set(self._names)
        for name in [name for name in elements if name not in live]:
            del elements[name]
        wanted = [name for name in self._names if name in changed or name not in elements]
        asked = wanted if len(wanted) <= BATCH else []
        status, headers, body = self.run(asked or self._names[:1], query_of(variant), True)
        parts = split(variant[0], body, len(asked or self._names[:1])) if status == 200 else None
        if parts is None:
            raise ValueError("capabilities not cacheable")
        before, found, after = parts
        elements.update(zip(asked, found, strict=False))
        if not asked:
            batches = [wanted[i : i + BATCH] for i in range(0, len(wanted), BATCH)]
            with ThreadPoolExecutor(PARALLEL) as pool:
                results = pool.map(lambda batch: self._elements_of(variant, batch), batches)
                for batch, batch_elements in zip(batches, results, strict=True):
                    elements.update(zip(batch, batch_elements, strict=True))
        separator = before[before.rfind(b"\n") :]  # the line break and indent before one
        whole = before + separator.join(elements[name] for name in self._names) + after
        self._documents[variant] = Document(status, headers, whole)

    def _elements_of(self, variant: Variant, names: list[str]) -> list[bytes]:
        status, _, body = self.run(names, query_of(variant), False)
        parts = split(variant[0], body, len(names)) if status == 200 else None
        if parts is None:
            raise ValueError("capabilities not cacheable")
        return parts[1]


def query_of(variant: Variant) -> str:
    service, others = variant
    return urlencode([("SERVICE", service), ("REQUEST", "GetCapabilities"), *others])
