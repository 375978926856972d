"""Submissions over HTTP (issue #9): a multipart upload or a resumable one (tus) becomes a
drop folder, processed by the commune's DAG tasks exactly like a dropped one."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from catalog import accounts
from catalog.web.app import create_app
from core.inbox import UPLOAD_MARKER
from opendata.cli import main as cli
from pipelines import tasks

from conftest import METADATA_TEMPLATE, serving

METADATA = (METADATA_TEMPLATE.format(licence="etalab-2.0") + "identifiant: arbres\n").encode()
DEPOTS = "/api/communes/ecully/depots"
UPLOADS = "/api/communes/ecully/televersements"
FORMER = ("/api/communes/", "/api/producteurs/")  # the former name, kept for one release


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def trees(rows: int) -> bytes:
    lines = ["id;espece;hauteur"] + [f"{i};Platane;{i % 30}" for i in range(1, rows + 1)]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def tokens(store) -> dict[str, str]:
    return {
        "ecully": accounts.create_token(store, "producteur", "marie@ecully.fr", "ecully").token,
        "vaulx": accounts.create_token(
            store, "producteur", "paul@vaulx.fr", "vaulx-en-velin"
        ).token,
        "equipe": accounts.create_token(store, "equipe-data", "data@grandlyon.com").token,
    }


def run_commune_dag_tasks(producer: str) -> list[dict]:
    """The commune DAG's tasks, in their order, on every ready submission (no Airflow)."""
    results = []
    for submission in tasks.find_submissions(producer):
        metadata = tasks.check_metadata(submission)
        licence = tasks.check_licence(submission, metadata)
        tasks.check_structure(submission, metadata)
        anonymisation = tasks.anonymise(submission, metadata)
        results.append(
            {**tasks.publish(submission, metadata, licence, anonymisation), **submission}
        )
    return results


def test_an_upload_over_http_is_published_by_the_commune_dag_tasks(settings, store, tokens):
    content = trees(200)
    ecully = bearer(tokens["ecully"])
    with serving(create_app(store, services=[])) as base:
        files = {"fichier": ("arbres.csv", content), "metadonnees": ("metadata.yaml", METADATA)}
        sent = requests.post(base + DEPOTS, files=files, headers=ecully, timeout=30)
        assert sent.status_code == 202, sent.text
        answer = sent.json()
        folder = settings.inbox_dir / "ecully" / "arbres"
        assert sorted(p.name for p in folder.iterdir()) == [
            UPLOAD_MARKER,
            "arbres.csv",
            "metadata.yaml",
        ]
        assert (folder / "arbres.csv").read_bytes() == content
        assert not any((settings.inbox_dir / ".televersements" / "depots").iterdir())
        status = base + answer["url_statut"]
        assert sent.headers["Location"] == answer["url_statut"]
        waiting = requests.get(status, headers=ecully, timeout=10).json()
        busy = requests.post(base + DEPOTS, files=files, headers=ecully, timeout=30)
        other = requests.get(status, headers=bearer(tokens["vaulx"]), timeout=10)

        [published] = run_commune_dag_tasks("ecully")

        outcome = requests.get(status, headers=bearer(tokens["equipe"]), timeout=10).json()
        dataset = requests.get(base + "/api/datasets/ecully-arbres", timeout=10).json()
        followed = {name: requests.get(url, timeout=10) for name, url in outcome["liens"].items()}
        again = requests.post(base + DEPOTS, files=files, headers=ecully, timeout=30)
    assert answer["statut"] == "en-attente" and answer["jeu_de_donnees"] == "ecully-arbres"
    assert answer["sha256"] == hashlib.sha256(content).hexdigest()
    assert waiting["statut"] == "en-attente" and waiting["depot"] == answer["depot"]
    assert busy.status_code == 409 and "n'est pas libre" in busy.json()["detail"]
    assert other.status_code == 403
    assert published["id"] == answer["depot"] and published["channel"] == "api"
    assert published["statut"] == "publiee"
    assert outcome["statut"] == "publiee" and outcome["version"] == published["version"]
    assert waiting["liens"] is None
    links = outcome["liens"]
    assert links["page"] == f"{base}/jeux-de-donnees/ecully-arbres"
    assert links["api"] == f"{base}/api/datasets/ecully-arbres"
    assert dataset["version_courante"]["lignes"] == 200
    assert all(response.status_code == 200 for response in followed.values())
    assert followed["csv"].content.decode("utf-8-sig").count("\n") == 201  # header + 200 rows
    archive = settings.data_dir / "archive" / "ecully" / "arbres" / answer["depot"]
    assert (archive / "arbres.csv").read_bytes() == content
    # the processed folder keeps only its reports: the next upload goes into it
    assert again.status_code == 202, again.text
    assert {p.name for p in folder.iterdir()} >= {"rapport.txt", UPLOAD_MARKER, "arbres.csv"}
    log = [
        (e.action, e.actor, e.details.get("depot") or e.details.get("soumission"))
        for e in store.audit_log(commune="ecully")
    ]
    assert ("depot-recu", "producteur:marie@ecully.fr", answer["depot"]) in log
    assert ("soumission-publiee", "plateforme:pipeline", answer["depot"]) in log


def test_uploads_are_refused_clearly(settings, store, tokens, monkeypatch):
    monkeypatch.setenv("OPENDATA_UPLOAD_MAX_BYTES", "4000")
    files = {"fichier": ("arbres.csv", trees(5)), "metadonnees": ("metadata.yaml", METADATA)}
    ecully = bearer(tokens["ecully"])

    def post(headers: dict[str, str], path: str = DEPOTS, **parts) -> tuple[int, str]:
        response = http.post(path, files=parts or files, headers=headers)
        return response.status_code, response.json()["detail"]

    with TestClient(create_app(store, services=[])) as http:
        anonymous = post({})
        other = post(bearer(tokens["vaulx"]))
        unknown = post(bearer(tokens["equipe"]), "/api/communes/lyon2/depots")
        large = post(ecully, fichier=("arbres.csv", trees(400)), metadonnees=files["metadonnees"])
        pdf = post(ecully, fichier=("arbres.pdf", b"%PDF"), metadonnees=files["metadonnees"])
        no_id = post(
            ecully,
            fichier=files["fichier"],
            metadonnees=("metadata.yaml", METADATA.replace(b"identifiant: arbres\n", b"")),
        )
        no_metadata = post(ecully, fichier=files["fichier"])
        bad_yaml = post(ecully, fichier=files["fichier"], metadonnees=("m.yaml", b"titre: [a"))
    assert anonymous[0] == 401 and other[0] == 403 and unknown[0] == 404
    assert (
        large[0] == 413 and "par morceaux" in large[1] and "OPENDATA_UPLOAD_MAX_BYTES" in large[1]
    )
    assert pdf[0] == 415 and ".csv" in pdf[1]
    # what the files say is checked at once: 422 and the French report (test_upload_checks)
    assert no_id[0] == 422 and "Dépôt refusé" in no_id[1]
    assert no_metadata[0] == 400 and "metadonnees" in no_metadata[1]
    assert bad_yaml[0] == 422 and "Dépôt refusé" in bad_yaml[1]
    assert not (settings.inbox_dir / "ecully").exists()


def test_the_former_paths_answer_the_same_and_say_they_are_deprecated(settings, store, tokens):
    """`/api/producteurs/<commune>/…` is served for one release as `/api/communes/<commune>/…`
    (what `opendata deposer` of the previous release calls), marked deprecated."""
    ecully = bearer(tokens["ecully"])
    content = trees(5)
    files = {"fichier": ("arbres.csv", content), "metadonnees": ("metadata.yaml", METADATA)}
    create = {
        **ecully,
        "Upload-Metadata": tus_metadata("arbres.csv", content),
        "Upload-Length": str(len(content)),
    }
    with TestClient(create_app(store, services=[])) as http:
        deposited = http.post(DEPOTS.replace(*FORMER), files=files, headers=ecully)
        status_url = deposited.json()["url_statut"]
        by_new_name = http.get(status_url, headers=ecully)
        by_former_name = http.get(status_url.replace(*FORMER), headers=ecully)
        anonymous = http.get(status_url.replace(*FORMER))
        created = http.post(UPLOADS.replace(*FORMER), headers=create)
        former_upload = created.headers["Location"].replace(*FORMER)
        sent = http.patch(
            former_upload, content=content, headers=chunk_headers(tokens["ecully"], 0)
        )
        offset = http.head(former_upload, headers=ecully)
        abandoned = http.delete(former_upload, headers=ecully)
        gone = http.head(created.headers["Location"], headers=ecully)
        openapi = http.get("/openapi.json").json()["paths"]
    assert deposited.status_code == 202, deposited.text
    assert (settings.inbox_dir / "ecully" / "arbres" / "arbres.csv").read_bytes() == content
    assert status_url.startswith("/api/communes/ecully/depots/")  # links give the new name
    assert by_former_name.status_code == by_new_name.status_code == 200
    assert by_former_name.json() == by_new_name.json()
    assert by_former_name.json()["statut"] == "en-attente"
    assert anonymous.status_code == 401  # the same protection under the former name
    for former in (deposited, by_former_name, created, sent, offset, abandoned):
        assert former.headers["Deprecation"].startswith("@"), former.request.url
        successor = former.request.url.path.replace(FORMER[1], FORMER[0])
        assert former.headers["Link"].endswith(f'{successor}>; rel="successor-version"')
    assert "Deprecation" not in by_new_name.headers
    assert created.status_code == 201 and created.headers["Location"].startswith(UPLOADS)
    assert sent.status_code == 204 and offset.headers["Upload-Offset"] == str(len(content))
    assert abandoned.status_code == 204 and gone.status_code == 404
    for path, method in (
        ("{commune}/depots", "post"),
        ("{commune}/depots/{depot}", "get"),
        ("{commune}/televersements", "post"),
        ("{commune}/televersements/{upload}", "patch"),
        ("{commune}/televersements/{upload}", "delete"),
    ):
        assert openapi[f"/api/producteurs/{path}"][method]["deprecated"] is True
        assert not openapi[f"/api/communes/{path}"][method].get("deprecated")


def tus_metadata(name: str, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in (("filename", name), ("sha256", digest))
    )


def chunk_headers(token: str, offset: int, chunk: bytes | None = None) -> dict[str, str]:
    headers = {
        **bearer(token),
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    if chunk is not None:
        headers["Upload-Checksum"] = (
            f"sha256 {base64.b64encode(hashlib.sha256(chunk).digest()).decode()}"
        )
    return headers


def test_a_resumable_upload_checks_offsets_and_checksums(settings, store, tokens, monkeypatch):
    monkeypatch.setenv("OPENDATA_UPLOAD_MAX_FILE_BYTES", "100000")
    content = trees(4000)[:60000]
    token = tokens["ecully"]
    create = {**bearer(token), "Upload-Metadata": tus_metadata("arbres.csv", content)}
    with TestClient(create_app(store, services=[])) as http:
        too_big = http.post(UPLOADS, headers={**create, "Upload-Length": "100001"})
        created = http.post(UPLOADS, headers={**create, "Upload-Length": str(len(content))})
        url = created.headers["Location"]
        first = content[:25000]
        wrong_offset = http.patch(url, content=first, headers=chunk_headers(token, 10))
        altered = http.patch(url, content=first[:-1] + b"X", headers=chunk_headers(token, 0, first))
        sent = http.patch(url, content=first, headers=chunk_headers(token, 0, first))
        offset = http.head(url, headers=bearer(token)).headers["Upload-Offset"]
        early = http.post(
            DEPOTS,
            headers=bearer(token),
            data={"televersement": created.json()["televersement"]},
            files={"metadonnees": ("metadata.yaml", METADATA)},
        )
        rest = content[25000:]
        done = http.patch(url, content=rest, headers=chunk_headers(token, 25000, rest))
        elsewhere = http.head(
            url.replace("ecully", "vaulx-en-velin"), headers=bearer(tokens["vaulx"])
        )
        deposited = http.post(
            DEPOTS,
            headers=bearer(token),
            data={"televersement": created.json()["televersement"]},
            files={"metadonnees": ("metadata.yaml", METADATA)},
        )
        # a file that is not the announced one (another SHA-256) is refused as a whole
        liar = http.post(UPLOADS, headers={**create, "Upload-Length": "10"})
        lie = http.patch(
            liar.headers["Location"], content=b"0123456789", headers=chunk_headers(token, 0)
        )
        gone = http.head(liar.headers["Location"], headers=bearer(token))
    assert too_big.status_code == 413 and "au plus" in too_big.json()["detail"]
    assert created.status_code == 201 and created.headers["Upload-Offset"] == "0"
    assert wrong_offset.status_code == 409 and wrong_offset.headers["Upload-Offset"] == "0"
    assert altered.status_code == 460 and "renvoyez-le" in altered.json()["detail"]
    assert sent.status_code == 204 and sent.headers["Upload-Offset"] == "25000"
    assert offset == "25000"
    assert early.status_code == 409 and "25000 octets reçus sur 60000" in early.json()["detail"]
    assert done.status_code == 204 and done.headers["Upload-Offset"] == str(len(content))
    assert elsewhere.status_code == 404
    assert deposited.status_code == 202, deposited.text
    assert deposited.json()["sha256"] == hashlib.sha256(content).hexdigest()
    placed = settings.inbox_dir / "ecully" / "arbres" / "arbres.csv"
    assert placed.read_bytes() == content
    assert lie.status_code == 460 and "recommencez" in lie.json()["detail"]
    assert gone.status_code == 404
    assert not any((settings.inbox_dir / ".televersements" / "morceaux").iterdir())


class CuttingProxy:
    """A TCP relay to the catalog that cuts the connection once, in the middle of what the
    client sends, when `cut_after` bytes went up: a network failure."""

    def __init__(self, port: int, cut_after: int) -> None:
        self.port, self.cut_after = port, cut_after
        self.sent = 0
        self.cut = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.port))
                for source, target, upwards in (
                    (client, upstream, True),
                    (upstream, client, False),
                ):
                    threading.Thread(
                        target=self._pump, args=(source, target, upwards), daemon=True
                    ).start()

    def _pump(self, source: socket.socket, target: socket.socket, upwards: bool) -> None:
        with suppress(OSError):
            while data := source.recv(16384):
                if upwards and not self.cut and self.sent + len(data) > self.cut_after:
                    self.cut = True
                    target.sendall(data[: len(data) // 2])
                    break
                self.sent += len(data) if upwards else 0
                target.sendall(data)
        for end in (source, target):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def resumed_at(output: str) -> int:
    """The offset the client said it resumed at."""
    return int(re.search(r"Reprise du téléversement à l'octet (\d+) sur", output).group(1))


@contextmanager
def proxy(base: str, cut_after: int) -> Iterator[CuttingProxy]:
    relay = CuttingProxy(int(base.rsplit(":", 1)[1]), cut_after)
    try:
        yield relay
    finally:
        relay.listener.close()


def test_the_client_resumes_after_an_interruption(
    settings, store, tokens, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENDATA_JETON", tokens["ecully"])
    content = trees(12000)  # ~200 kB: 4 chunks of 64 kB
    data = tmp_path / "arbres.csv"
    data.write_bytes(content)
    metadata = tmp_path / "metadata.yaml"
    metadata.write_bytes(METADATA)
    upload = ["deposer", str(data), "--metadonnees", str(metadata), "--taille-morceau", "65536"]
    with serving(create_app(store, services=[])) as base:
        # the network drops in the middle of a chunk, then comes back: resumed in the same run
        with proxy(base, cut_after=100_000) as relay:
            assert cli([*upload, "--url", relay.url, "--essais", "3"]) == 0
        first = capsys.readouterr()
        [submission] = tasks.find_submissions("ecully")
        assert Path(submission["data_path"]).read_bytes() == content
        run_commune_dag_tasks("ecully")

        # the command gives up at the first failure; run again, it resumes
        other = tmp_path / "arbres-2.csv"
        other.write_bytes(trees(13000))
        second_upload = [*upload[:1], str(other), *upload[2:]]
        with proxy(base, cut_after=150_000) as relay:
            assert cli([*second_upload, "--url", relay.url, "--essais", "1"]) == 1
        stopped = capsys.readouterr()
        assert cli([*second_upload, "--url", base]) == 0
        resumed = capsys.readouterr()
        [submission] = tasks.find_submissions("ecully")
        assert Path(submission["data_path"]).read_bytes() == other.read_bytes()
        run_commune_dag_tasks("ecully")
        # a small file goes in one request
        small = tmp_path / "petit.csv"
        small_upload = ["deposer", str(small), "--metadonnees", str(metadata), "--url", base]
        assert cli(small_upload) == 2  # not written yet
        small.write_bytes(trees(3))
        assert cli(small_upload) == 0
        single = capsys.readouterr()
    assert resumed_at(first.out) >= 65536, first  # the first chunk was not sent again
    assert "Dépôt" in first.out and "reçu pour « ecully-arbres »" in first.out
    assert "Relancez la même commande" in stopped.err
    assert resumed_at(resumed.out) >= 131072, resumed.out  # two chunks went before the cut
    assert "Reprise" not in single.out and f"({len(trees(3))} octets" in single.out, single
    assert "Fichier introuvable" in single.err
    assert not any((tmp_path / "cache" / "opendata" / "televersements").iterdir())
    modes = [e.details["mode"] for e in store.audit_log(action="depot-recu")]
    assert modes == ["direct", "morceaux", "morceaux"]
