"""Publications: recorded by the publication stage, told to reusers, never mailed."""

from __future__ import annotations

from core.lifecycle.rule import Action, DatasetState, EventKind


class Publication:
    name = "publication"
    headings = ()
    kinds = (EventKind("publication", "Nouvelle version publiée"),)

    def decide(self, state: DatasetState) -> list[Action]:
        return []


RULE = Publication()
