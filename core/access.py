"""Access decisions: who a caller is (`Principal`) and whether they may see a dataset.

The web side identifies callers (catalog.principal, catalog.visibility); the pipeline's
notifications tell reusers only what an anonymous caller may see. Both decide here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from core.records import Dataset

Kind = Literal["anonyme", "usager", "producteur", "equipe-data"]


@dataclass(frozen=True)
class Principal:
    kind: Kind = "anonyme"
    subject: str = ""  # OIDC `sub` or API token id: who, for the audit log
    family_name: str = ""
    given_name: str = ""
    email: str = ""
    commune: str | None = None  # producers: their commune's slug
    agent: bool = False  # OIDC users in the agents group (layers reserved to agents)
    # a person signed in on the portal (OIDC session), whatever their role: a commune's
    # agent or the data team reads, besides, what every signed-in user reads
    signed_in: bool = False

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonyme"

    @property
    def label(self) -> str:
        """How the audit log and the portal name this caller."""
        if self.kind == "anonyme":
            return "anonyme"
        person = " ".join(p for p in (self.given_name, self.family_name) if p) or self.email
        return f"{self.kind}:{person or self.subject}"

    def acts_for(self, commune: str) -> bool:
        """May act (submit, announce, read statistics) on `commune`'s datasets."""
        return self.kind == "equipe-data" or (self.kind == "producteur" and self.commune == commune)

    def may_read(self, access: str, producer: str) -> bool:
        """May read a dataset with this `access` level published by `producer`."""
        if access == "public" or self.acts_for(producer):
            return True
        person = self.kind == "usager" or self.signed_in
        if access == "restreint":
            return person
        if access == "agents":
            return person and self.agent
        return False


ANONYMOUS = Principal()


def dataset_access(metadata: dict[str, Any]) -> str:
    """A dataset's access level from its normalised metadata: public | restreint | agents."""
    return str(metadata.get("access", "public"))


def may_see(principal: Principal, dataset: Dataset | None) -> bool:
    """May this caller know `dataset` exists (and read it when published)?"""
    return dataset is not None and principal.may_read(
        dataset_access(dataset.metadata), dataset.producer
    )
