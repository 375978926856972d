"""Each commune's DAG runs, read and triggered through Airflow's REST API (issue #19: the
data team's health page).

Airflow 3's `airflow api-server` serves its UI and its public REST API (v2) from one
address. The catalog authenticates as a configured user: `POST /auth/token` (simple auth
manager, or any auth manager answering that route) gives a JWT, sent as a bearer token.

- `GET /api/v2/dags?tags=commune`: every commune DAG, its next run and whether it is paused;
- `GET /api/v2/dags/<dag_id>/dagRuns?order_by=-run_after&limit=1`: its last run;
- `POST /api/v2/dags/<dag_id>/dagRuns`: a manual run (the health page's « Relancer »).

Configured by `OPENDATA_AIRFLOW_URL` (the UI, linked from the page), `OPENDATA_AIRFLOW_API_URL`
(where the catalog reaches the API, by default the same), `OPENDATA_AIRFLOW_USER` and
`OPENDATA_AIRFLOW_PASSWORD`. Optional: without a URL, the page says Airflow is not
configured. Every call has a short timeout; any failure is an `AirflowError` with a French
message, which the page shows instead of the runs (the rest of the page is unaffected).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

TIMEOUT = httpx.Timeout(3.0, connect=2.0)  # seconds: the page waits for Airflow no longer
TOKEN_REUSE_SECONDS = 600  # a JWT is asked again after this long (Airflow's last 24 h)
PAGE = 100  # Airflow's largest page by default ([api] maximum_page_limit)
PARALLEL_READS = 4  # last runs read at once (one request per commune DAG)
COMMUNE_TAG = "commune"  # dags/communes.py tags every commune DAG so
RUN_STATES = {
    "queued": "en file d'attente",
    "running": "en cours",
    "success": "réussie",
    "failed": "en échec",
}


class AirflowError(Exception):
    """Airflow could not answer; the message is French and says why."""


@dataclass(frozen=True)
class AirflowConfig:
    ui_url: str  # the Airflow UI, for the links to runs and their logs
    api_url: str  # where the catalog reaches the REST API (a service name in a cluster)
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AirflowConfig | None:
        """None when `OPENDATA_AIRFLOW_URL` is not set: Airflow is optional."""
        env = os.environ if environ is None else environ
        ui_url = env.get("OPENDATA_AIRFLOW_URL", "").strip().rstrip("/")
        if not ui_url:
            return None
        return cls(
            ui_url=ui_url,
            api_url=(env.get("OPENDATA_AIRFLOW_API_URL", "").strip() or ui_url).rstrip("/"),
            username=env.get("OPENDATA_AIRFLOW_USER", ""),
            password=env.get("OPENDATA_AIRFLOW_PASSWORD", ""),
        )

    def run_url(self, dag_id: str, run_id: str) -> str:
        """The run's page in the Airflow UI: its tasks and their logs."""
        return f"{self.ui_url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

    def dag_url(self, dag_id: str) -> str:
        return f"{self.ui_url}/dags/{quote(dag_id, safe='')}"


@dataclass(frozen=True)
class DagRun:
    dag_id: str
    run_id: str
    state: str
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    run_type: str
    url: str  # its page in the Airflow UI (tasks and logs)

    @property
    def state_label(self) -> str:
        return RUN_STATES.get(self.state, self.state)


@dataclass(frozen=True)
class DagState:
    dag_id: str
    known: bool  # Airflow knows the DAG (its file was parsed)
    paused: bool = False
    next_run: datetime | None = None
    last_run: DagRun | None = None


class AirflowApi:
    """A client of Airflow's REST API, shared by the requests of one catalog process."""

    def __init__(self, config: AirflowConfig, transport: httpx.BaseTransport | None = None):
        self.config = config
        self._client = httpx.Client(
            base_url=config.api_url, timeout=TIMEOUT, transport=transport, follow_redirects=False
        )
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (JWT, when it was obtained)

    def close(self) -> None:
        self._client.close()

    # --- reading ---------------------------------------------------------------------------------

    def dag_states(self, dag_ids: Iterable[str]) -> dict[str, DagState]:
        """Each DAG's next run and last run; AirflowError when Airflow cannot answer."""
        wanted = list(dag_ids)
        dags = self._commune_dags()
        with ThreadPoolExecutor(PARALLEL_READS) as pool:
            known = [d for d in wanted if d in dags]
            last_runs = dict(zip(known, pool.map(self.last_run, known), strict=True))
        return {
            dag_id: DagState(
                dag_id,
                known=True,
                paused=bool(dags[dag_id].get("is_paused")),
                next_run=_instant(dags[dag_id].get("next_dagrun_run_after")),
                last_run=last_runs[dag_id],
            )
            if dag_id in dags
            else DagState(dag_id, known=False)
            for dag_id in wanted
        }

    def last_run(self, dag_id: str) -> DagRun | None:
        answer = self._call(
            "GET",
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
            params={"order_by": "-run_after", "limit": 1},
        )
        runs = answer.get("dag_runs") or []
        return self._run(runs[0]) if runs else None

    def _commune_dags(self) -> dict[str, dict[str, Any]]:
        dags: dict[str, dict[str, Any]] = {}
        while True:
            answer = self._call(
                "GET",
                "/api/v2/dags",
                params={"tags": COMMUNE_TAG, "limit": PAGE, "offset": len(dags)},
            )
            page = answer.get("dags") or []
            dags.update({d["dag_id"]: d for d in page})
            if not page or len(dags) >= int(answer.get("total_entries") or 0):
                return dags

    # --- acting ----------------------------------------------------------------------------------

    def trigger(self, dag_id: str, note: str) -> DagRun:
        """A manual run of `dag_id`, now; AirflowError when Airflow refuses or is down."""
        answer = self._call(
            "POST",
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
            json={"logical_date": None, "note": note},
        )
        return self._run(answer)

    # --- HTTP ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        response = self._send(method, path, self._bearer(), **options)
        if response.status_code == 401:  # the token expired (or Airflow's secret changed)
            response = self._send(method, path, self._bearer(renew=True), **options)
        if response.status_code >= 400:
            raise AirflowError(
                f"Airflow a répondu {response.status_code} à {method} {path} : {_detail(response)}"
            )
        try:
            answer = response.json()
        except ValueError as error:
            raise AirflowError(f"Réponse d'Airflow illisible à {method} {path}.") from error
        if not isinstance(answer, dict):
            raise AirflowError(f"Réponse d'Airflow inattendue à {method} {path}.")
        return answer

    def _send(
        self, method: str, path: str, headers: dict[str, str], **options: Any
    ) -> httpx.Response:
        try:
            return self._client.request(method, path, headers=headers, **options)
        except httpx.HTTPError as error:
            raise AirflowError(
                f"Airflow injoignable à {self.config.api_url} ({type(error).__name__})."
            ) from error

    def _bearer(self, *, renew: bool = False) -> dict[str, str]:
        """`Authorization` with a JWT from `/auth/token`; none without a configured user
        (an Airflow whose simple auth manager makes everyone an administrator)."""
        if not self.config.username:
            return {}
        with self._lock:
            fresh = self._token and time.monotonic() - self._token[1] < TOKEN_REUSE_SECONDS
            if renew or not fresh:
                self._token = (self._new_token(), time.monotonic())
            assert self._token is not None
            return {"Authorization": f"Bearer {self._token[0]}"}

    def _new_token(self) -> str:
        body = {"username": self.config.username, "password": self.config.password}
        response = self._send("POST", "/auth/token", {}, json=body)
        if response.status_code in (401, 403):
            raise AirflowError(
                f"Airflow refuse l'identifiant « {self.config.username} » "
                "(OPENDATA_AIRFLOW_USER, OPENDATA_AIRFLOW_PASSWORD)."
            )
        try:
            token = response.json().get("access_token") if response.status_code < 400 else None
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str):
            raise AirflowError(
                f"Airflow n'a pas donné de jeton (POST /auth/token : {response.status_code})."
            )
        return token

    def _run(self, run: dict[str, Any]) -> DagRun:
        dag_id, run_id = str(run["dag_id"]), str(run["dag_run_id"])
        return DagRun(
            dag_id=dag_id,
            run_id=run_id,
            state=str(run.get("state") or ""),
            run_after=_instant(run.get("run_after")),
            start_date=_instant(run.get("start_date")),
            end_date=_instant(run.get("end_date")),
            run_type=str(run.get("run_type") or ""),
            url=self.config.run_url(dag_id, run_id),
        )


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail or response.reason_phrase)[:300]
