"""Screenshots of the portal for the documentation, taken by the browser tests.

With OPENDATA_CAPTURES=<folder> (`scripts/captures.sh` sets docs/captures), `capture(page,
"name")` saves what the page shows as <folder>/name.png: the viewport only (give the
browser context `viewport=VIEWPORT`), reduced to a 256-colour palette so that the images
committed with the README stay small. Without the variable it does nothing, and the tests
that call it check the same pages without saving anything.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from core.settings import PROJECT_ROOT

VARIABLE = "OPENDATA_CAPTURES"
VIEWPORT = {"width": 1200, "height": 800}


def folder() -> Path | None:
    """Where screenshots go (relative to the project), or None when none is asked for."""
    value = os.environ.get(VARIABLE, "").strip()
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


def capture(page, name: str) -> Path | None:
    """Save the page's viewport as `name`.png in the captures folder, if there is one."""
    target = folder()
    if target is None:
        return None
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.png"
    page.screenshot(path=str(path))
    with Image.open(path) as shot:
        # a palette keeps text and flat map colours legible at a fraction of the size
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return path
