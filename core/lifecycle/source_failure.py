"""A commune's declared source that keeps failing (pull delivery): recorded by the harvest,
mailed to the commune and the data team, never told to reusers (the served version stays)."""

from __future__ import annotations

from core.lifecycle.rule import Action, DatasetState, EventKind, Mail, detail_date
from core.records import Event
from core.sources import SOURCE_FAILURE_KIND
from core.wording import french_date


def mail(event: Event, title: str) -> Mail:
    since = detail_date(event, "depuis")
    return Mail(
        subject=f"Source injoignable : {title}",
        what=f"La plateforme n'arrive pas à récupérer « {title} » à sa source "
        f"({event.details.get('source', 'source déclarée')}) depuis le "
        f"{french_date(since) if since else 'dernier essai'} : {event.details.get('erreur', '')}",
        why="Les données sont récupérées sur le serveur de la commune selon la périodicité "
        "déclarée ; la version publiée reste diffusée, intacte, tant que la source échoue.",
        todo="vérifiez que l'adresse déclarée répond (ou déclarez la nouvelle adresse par un "
        "avis de changement : un changement de point de livraison suit la règle des 30 jours).",
    )


class SourceFailure:
    name = "source-en-echec"
    headings = ()
    kinds = (EventKind(SOURCE_FAILURE_KIND, "Source de la commune injoignable", False, mail),)

    def decide(self, state: DatasetState) -> list[Action]:
        return []  # the harvest records it when a check fails (pipelines.harvest.state)


RULE = SourceFailure()
