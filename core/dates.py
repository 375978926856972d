"""A dataset's dates, one model (issue #19): the producer's date, the platform's dates, and
the ONE reference date that the next expected update, the late flag, the 3-year
depublication count, the pages, the health view, the API and DCAT all read.

A dataset has three dates:

- the producer's date of last update of the data: `date_mise_a_jour` in its metadata
  (DCAT `dct:modified`). The annex requires it in the metadata (§2.2), requires the
  Métropole to show it with the source (§3.1), and the Licence Ouverte requires reusers to
  mention it (§5);
- the platform's publication of the current content (`last_published_at`);
- the platform's last accepted deposit (`last_confirmed_at`): new content, or the same
  content deposited again.

**The reference is the date of the data's last update, not their publication.** The
partnership counts the data: the commune commits to « la mise à jour de la donnée selon la
fréquence pour laquelle la commune s'est engagée », and « dans le cas où la commune ne
mettrait pas à jour ses données conformément à ses engagements dans les Métadonnées
correspondantes, la donnée sera dépubliée […] après 3 ans d'inactivité » (annex
data.grandlyon.com, §3.2). Monthly data last updated on 1 October are late from 2 November,
whenever they were published. So:

- the reference is the producer's declared date. It is never later than the deposit
  that carried it, because a declaration cannot vouch for a day after its own deposit;
- depositing unchanged data again does not move the reference, because republishing is not
  updating. It moves only if the producer declares a new date. That is how a commune says
  its data are still exact on that day: the annex makes it answer for their exactness
  (§3.2);
- data that the platform pulls from the commune's server (a declared `source`, issue #7):
  there, the commune updates its data on its server, and new content found there is that
  update, dated the day it was found. The reference is the later of that day and the
  declared date (which is only the date the metadata file was written);
- the next expected update is the reference plus the committed frequency; the dataset is
  late after that date;
- depublication comes 3 years after the reference for a dataset committed to a periodic
  frequency: its data were « not updated as committed ». A one-off, irregular or
  never-updated dataset (an archive) has no frequency it could miss, so it is never late;
  the annex's « 3 ans d'inactivité » still applies to it, counted from its last accepted
  deposit (the producer's last activity): an archive of 2019 data published today stays 3
  years, and one nobody has touched for 3 years is depublished.

Pure: reads a plain `Dataset` record; times are the platform clock's (`core.clock`).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from core.records import Dataset, Release
from core.vocabularies import Frequency, find_frequency

STALE_YEARS = 3  # data not updated for three years are depublished (annex §3.2)
WARNING_DAYS = (90, 30)  # days before that date when the producer is warned


def depublication_date(last_update: date) -> date:
    """Three years after the last update (a 29 February falls back to the 28th)."""
    try:
        return last_update.replace(year=last_update.year + STALE_YEARS)
    except ValueError:
        return last_update.replace(year=last_update.year + STALE_YEARS, day=28)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day (31 January + 1 month: 28 or
    29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class DatasetDates:
    declared: date  # the metadata's date of last update, as the producer wrote it
    published: date  # the platform's publication of the current content
    deposited: date  # the platform's last accepted deposit (new or identical content)
    pulled: bool  # fetched by the platform from the commune's server (issue #7)
    frequency: Frequency | None  # the committed update frequency

    @property
    def data_updated(self) -> date:
        """THE reference: when the data were last updated (module docstring)."""
        vouched = min(self.declared, self.deposited)
        return max(vouched, self.published) if self.pulled else vouched

    @property
    def found_at_source(self) -> bool:
        """Whether the reference is the day new content was found at the commune's server
        (rather than the date the producer declared)."""
        return self.pulled and self.published > min(self.declared, self.deposited)

    @property
    def periodic(self) -> bool:
        return self.frequency is not None and self.frequency.days is not None

    @property
    def next_expected(self) -> date | None:
        """The day by which the next update is due; None without a periodic commitment."""
        if self.frequency is None or self.frequency.days is None:
            return None
        if self.frequency.months is not None:  # monthly … triennial: calendar months
            return add_months(self.data_updated, self.frequency.months)
        return self.data_updated + timedelta(days=max(1, round(self.frequency.days)))

    @property
    def depublication(self) -> date:
        """When the dataset is depublished if not updated: 3 years after the reference when
        committed to a periodic frequency, else 3 years after its last deposit."""
        return depublication_date(self.data_updated if self.periodic else self.deposited)

    def late(self, today: date) -> bool:
        expected = self.next_expected
        return expected is not None and today > expected

    def as_json(self, today: date) -> dict[str, Any]:
        """The dates as the APIs give them (ISO 8601, French keys)."""
        expected, deadline = self.next_expected, self.depublication
        return {
            "donnees_mises_a_jour_le": self.data_updated.isoformat(),
            "date_declaree_par_le_producteur": self.declared.isoformat(),
            "nouvelles_donnees_trouvees_a_la_source": self.found_at_source,
            "publiees_sur_la_plateforme_le": self.published.isoformat(),
            "dernier_depot_le": self.deposited.isoformat(),
            "prochaine_mise_a_jour_attendue_le": expected.isoformat() if expected else None,
            "en_retard": self.late(today),
            "depublication_sans_mise_a_jour_le": deadline.isoformat() if deadline else None,
        }


def dates_of(dataset: Dataset) -> DatasetDates:
    metadata = dataset.metadata
    return DatasetDates(
        declared=date.fromisoformat(str(metadata["modified"])[:10]),
        published=dataset.last_published_at.date(),
        deposited=dataset.last_confirmed_at.date(),
        pulled=bool(metadata.get("source")),
        frequency=find_frequency(str(metadata.get("accrual_periodicity", ""))),
    )


def release_updated(dataset: Dataset, release: Release) -> date:
    """When the data of `release` were last updated: the dataset's reference for its
    current structure (a deposit of the same content with a new date moves it), else that
    release's own (an old structure diffused in parallel, or frozen)."""
    if release.structure_version == dataset.current_version:
        return dates_of(dataset).data_updated
    published = release.published_at.date()
    return DatasetDates(
        declared=date.fromisoformat(str(release.metadata["modified"])[:10]),
        published=published,
        deposited=published,
        pulled=bool(release.metadata.get("source")),
        frequency=None,
    ).data_updated
