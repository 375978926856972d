"""The platform's lifecycle rules (annex data.grandlyon.com, §3.2), in the pygeoapi shape:
one module per rule (`rule.Rule`: the events it records, what it mails, and what it
decides each day), one entry in `REGISTRY`.

The daily governance job (`pipelines.governance`) applies every rule's decisions, in the
registry's order; the catalog's feeds and pages, and the pipeline's mails, read the events'
labels and wording here (`label`, `is_told`, `mail`).
"""

from __future__ import annotations

from core.access import ANONYMOUS, Principal, may_see
from core.lifecycle.rule import EventKind, Mail, Rule
from core.plugins import load
from core.records import Dataset, Event
from core.urls import dataset_page
from core.wording import dataset_title, describe_details, french_moment

# name → "module:attribute" of the rule; the governance job applies them in this order
REGISTRY = {
    "publication": "core.lifecycle.publication:RULE",
    "changement-de-structure": "core.lifecycle.structure_change:RULE",
    "retard": "core.lifecycle.lateness:RULE",
    "obsolescence": "core.lifecycle.staleness:RULE",
    "source-en-echec": "core.lifecycle.source_failure:RULE",
}


RULES: dict[str, Rule] = {name: load(entry) for name, entry in REGISTRY.items()}


def event_kind(name: str) -> EventKind | None:
    """The description of an event kind, from the rule that records it."""
    return next((k for rule in RULES.values() for k in rule.kinds if k.name == name), None)


def label(kind: str) -> str:
    """The French label of an event kind (the kind itself when unknown)."""
    known = event_kind(kind)
    return known.label if known else kind


def told_to_reusers(kind: str) -> bool:
    """Whether an event of this kind is told to reusers (pages, feeds, webhooks); an
    unknown kind is (it was recorded before its rule was retired)."""
    known = event_kind(kind)
    return known is None or known.told_to_reusers


def is_mailed(kind: str) -> bool:
    known = event_kind(kind)
    return known is not None and known.mail is not None


def mail_key(event: Event) -> str:
    """The key under which the mail telling `event` is recorded once it has left."""
    return f"{event.id}:{event.kind}"


def mail(event: Event, title: str) -> Mail | None:
    """The notice the producer gets about `event`; None for events that are not mailed."""
    known = event_kind(event.kind)
    return known.mail(event, title) if known and known.mail else None


def is_told(dataset: Dataset | None, event: Event, principal: Principal = ANONYMOUS) -> bool:
    """Whether reusers (feeds, webhooks: anonymous) learn of `event` about `dataset`."""
    if not may_see(principal, dataset) or dataset is None or not told_to_reusers(event.kind):
        return False
    if dataset.status == "publie":
        return True
    return dataset.status == "depublie" and event.kind == "depublication"


def event_text(event: Event, dataset: Dataset | None, base: str) -> str:
    """An event told in French plain text: what, about which dataset, its details, the link."""
    source = dataset.metadata.get("publisher_name", dataset.producer) if dataset else ""
    lines = [
        f"{label(event.kind)} : « {dataset_title(dataset, event.dataset)} » ({event.dataset})"
        + (f", publié par {source}." if source else "."),
        f"Date : {french_moment(event.at)}.",
        *describe_details(event.details, base),
        f"Page du jeu de données : {dataset_page(base, event.dataset)}",
    ]
    return "\n".join(lines)
