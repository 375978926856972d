"""Each commune's deposits as the data team follows them (issue #19, health page): what
was received, published and refused over the last 30 days, the last refusal, and an alert
when refusals repeat.

The source of truth is the store's submissions (`Releases.submissions`): every deposit the
pipeline processed, whatever its channel (drop folder, upload API, command line, pulled
source), with its outcome (`publiee`, `confirmee`: same content as served, `refusee`) and its
report. A deposit still waiting in the drop folder is not counted until it is processed.

Repeated refusals, the alert chosen: the commune's last `REPEATED` processed deposits were
all refused (« refus de suite », however old), or `REPEATED` or more of its deposits were
refused within the last `WINDOW_DAYS` days (« refus en 30 jours »). Either says the commune
is stuck: the data team should call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from core.records import SubmissionRecord

WINDOW_DAYS = 30
REPEATED = 3  # refusals in a row, or within the window, that raise the alert
OUTCOMES = ("publiee", "confirmee", "refusee")


def report_path(submission_id: str) -> str:
    """The health page's view of a deposit's report, in French."""
    return f"/equipe-data/sante/depots/{submission_id}"


def commune_deposits(submissions: Iterable[SubmissionRecord], now: datetime) -> dict[str, Any]:
    """One commune's deposits (`submissions` oldest first) as the health page shows them."""
    processed = [s for s in submissions if s.status in OUTCOMES]
    since = now - timedelta(days=WINDOW_DAYS)
    recent = [s for s in processed if s.received_at >= since]
    counts = {status: sum(s.status == status for s in recent) for status in OUTCOMES}
    refusals = [s for s in processed if s.status == "refusee"]
    in_a_row = _refused_in_a_row(processed)
    alert = None
    if in_a_row >= REPEATED:
        alert = f"{in_a_row} refus de suite"
    elif counts["refusee"] >= REPEATED:
        alert = f"{counts['refusee']} refus en {WINDOW_DAYS} jours"
    return {
        "recus_30_jours": len(recent),
        "publies_30_jours": counts["publiee"],
        "confirmes_30_jours": counts["confirmee"],
        "refuses_30_jours": counts["refusee"],
        "refus_de_suite": in_a_row,
        "dernier_depot": processed[-1].received_at.isoformat() if processed else None,
        "dernier_refus": _refusal(refusals[-1]) if refusals else None,
        "alerte_refus": alert,
    }


def _refused_in_a_row(processed: list[SubmissionRecord]) -> int:
    count = 0
    for submission in reversed(processed):
        if submission.status != "refusee":
            break
        count += 1
    return count


def _refusal(submission: SubmissionRecord) -> dict[str, Any]:
    report = submission.report or {}
    return {
        "depot": submission.id,
        "jeu_de_donnees": submission.dataset,
        "recu_le": submission.received_at.isoformat(),
        "canal": submission.channel,
        "problemes": report.get("nombre_problemes"),
        "rapport": report_path(submission.id),
    }


def by_commune(
    submissions: Iterable[SubmissionRecord], communes: Iterable[str], now: datetime
) -> dict[str, dict[str, Any]]:
    """Every commune's deposits, from the store's submissions (read once)."""
    grouped: dict[str, list[SubmissionRecord]] = {commune: [] for commune in communes}
    for submission in sorted(submissions, key=lambda s: s.received_at):
        grouped.setdefault(submission.producer, []).append(submission)
    return {commune: commune_deposits(items, now) for commune, items in grouped.items()}
