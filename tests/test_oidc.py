"""Restricted datasets behind OpenID Connect, against a real local provider (issue #9).

One deployment and one running catalog for the module, with all its services (pygeoapi,
MapServer, pycsw): a public map dataset, a restricted one (`acces: restreint`) and one
reserved to public agents (`acces: agents`). `tests/oidc_provider.py` runs the issuer the
catalog trusts, and a second one it does not know.

Every bad token (expired, forged, wrong audience, wrong issuer, `alg: none`, HS256 signed
with the public key, unknown key, garbage) gets, on every route and every OGC request,
exactly what an anonymous caller gets, which is what a dataset that does not exist gets
(`tests/test_access.py`). A valid token gets the restricted data everywhere, and the
agents' layers only with the agents claim.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from attacker import attacker_server, loopback_server
from oidc_provider import OidcProvider
from owslib.wfs import WebFeatureService
from owslib.wms import WebMapService
from PIL import Image
from test_access import CREDENTIALS_ONLY, SIGN_IN_PAGES, normalised, urls_for

from catalog import accounts, refusals, sessions
from catalog.oidc import (
    InvalidToken,
    OidcSettings,
    OidcVerifier,
    Provider,
    ProviderUnavailable,
)
from catalog.web.app import create_app

from conftest import Deployment, deployment, serving, write_submission

PUBLIC = "ecully-bancs"
RESTRICTED = "ecully-cameras"
AGENTS_ONLY = "ecully-vannes-gaz"
MISSING = "ecully-inexistant"
SECRETS = {RESTRICTED: "Zanzibar", AGENTS_ONLY: "Tombouctou"}  # words of their titles
AGENTS_GROUP = "agents-publics"
POINTS = [(4.7702, 45.7752), (4.7745, 45.7781), (4.7790, 45.7730)]  # in Écully
WMS_BOX = "45.770,4.765,45.780,4.785"  # EPSG:4326, latitude first


@dataclass
class World:
    base: str
    deployed: Deployment
    issuer: OidcProvider
    stranger: OidcProvider
    app: Any = None  # the catalog application (its refusal log)

    def get(self, path: str, token: str | None = None, **options) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        options.setdefault("allow_redirects", False)
        return requests.get(self.base + path, headers=headers, timeout=60, **options)


def map_dataset(root: Path, name: str, title: str, access: str) -> Path:
    features = [
        {
            "type": "Feature",
            "properties": {"numero": number, "etat": "bon"},
            "geometry": {"type": "Point", "coordinates": list(point)},
        }
        for number, point in enumerate(POINTS, 1)
    ]
    data = write_submission(
        root / "depots" / name,
        f"{name}.geojson",
        json.dumps({"type": "FeatureCollection", "features": features}),
        extra_metadata=f"acces: {access}\n",
    )
    metadata = data.parent / "metadata.yaml"
    text = metadata.read_text(encoding="utf-8").replace(
        "titre: Arbres d'alignement", f"titre: {title}"
    )
    metadata.write_text(text.replace("Arbres plantés", f"{title}, posés"), encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with (
        OidcProvider().serving() as issuer,
        OidcProvider().serving() as stranger,
        deployment(tmp_path_factory, "oidc") as deployed,
    ):
        patch = pytest.MonkeyPatch()
        for name, value in {
            "OPENDATA_OIDC_ISSUERS": f"proconnect={issuer.issuer}",
            "OPENDATA_OIDC_CLIENT_ID_PROCONNECT": issuer.client_id,
            "OPENDATA_OIDC_CLIENT_SECRET_PROCONNECT": issuer.client_secret,
            "OPENDATA_OIDC_AGENT_CLAIM": "groups",
            "OPENDATA_OIDC_AGENT_VALUE": AGENTS_GROUP,
            "OPENDATA_SESSION_SECRET": "secret-de-session-des-tests-0123456789abcdef",
            "OPENDATA_SESSION_SECURE": "0",  # plain http on loopback
        }.items():
            patch.setenv(name, value)
        try:
            deployed.publish(map_dataset(deployed.root, "bancs", "Bancs publics", "public"))
            title = f"Caméras {SECRETS[RESTRICTED]} de vidéoprotection"
            deployed.publish(map_dataset(deployed.root, "cameras", title, "restreint"))
            title = f"Vannes {SECRETS[AGENTS_ONLY]} du réseau de gaz"
            deployed.publish(map_dataset(deployed.root, "vannes-gaz", title, "agents"))
            app = create_app(deployed.store)
            with serving(app) as base:
                yield World(base, deployed, issuer, stranger, app)
        finally:
            patch.undo()


@pytest.fixture(scope="module")
def tokens(world: World) -> dict[str, str]:
    issuer = world.issuer
    return {
        "usager": issuer.token(),
        "usager-ps256": issuer.token("PS256"),
        "agent": issuer.token("ES256", groups=["autre-groupe", AGENTS_GROUP]),
    }


@pytest.fixture(scope="module")
def bad_tokens(world: World) -> dict[str, str]:
    issuer, stranger = world.issuer, world.stranger
    agent = {"groups": [AGENTS_GROUP]}
    return {
        "expiré": issuer.token(issued=time.time() - 3600, **agent),
        "contrefait": issuer.forged(**agent),
        "mauvaise-audience": issuer.token(aud="un-autre-service", **agent),
        "mauvais-émetteur": stranger.token(**agent),
        "alg-none": issuer.unsigned(**agent),
        "hs256-clé-publique": issuer.hmac_with_public_key(**agent),
    }


@pytest.fixture(scope="module")
def odd_tokens(world: World) -> dict[str, str]:
    issuer, stranger = world.issuer, world.stranger
    agent = {"groups": [AGENTS_GROUP]}
    return {
        "émetteur-usurpé": stranger.token(iss=issuer.issuer, **agent),
        "clé-inconnue": issuer.token(headers={"kid": "cle-inconnue"}, **agent),
        "sans-exp": issuer.token(exp=None, **agent),
        "es256-sous-la-clé-rsa": issuer.token("ES256", headers={"kid": "rsa-1"}, **agent),
        "illisible": "ceci-n-est-pas-un-jeton",
    }


def service_urls(slug: str, word: str | None = None) -> list[str]:
    """The OGC requests that name a layer or search the catalogue for it (by `word`)."""
    word = word or SECRETS.get(slug, "inexistant")
    wms = "/wms?SERVICE=WMS&VERSION=1.3.0&CRS=EPSG:4326&STYLES=&WIDTH=64&HEIGHT=64"
    wfs = "/wfs?SERVICE=WFS&VERSION=2.0.0"
    return [
        f"/ogc/collections/{slug}?f=json",
        f"/ogc/collections/{slug}/items?f=json",
        f"/ogc/collections/{slug}/items/1?f=json",
        f"/ogc/collections/{slug}/queryables?f=json",
        f"/ogc/collections/{slug}/schema?f=json",
        f"/ogc/collections/catalogue/items?q={word}&f=json",
        f"/ogc/collections/catalogue/items/{slug}?f=json",
        f"{wms}&REQUEST=GetMap&LAYERS={slug}&BBOX={WMS_BOX}&FORMAT=image/png",
        f"{wms}&REQUEST=GetFeatureInfo&LAYERS={slug}&QUERY_LAYERS={slug}&BBOX={WMS_BOX}"
        "&I=32&J=32&INFO_FORMAT=application/json;%20subtype=geojson",
        f"{wms}&REQUEST=GetLegendGraphic&LAYER={slug}&FORMAT=image/png&SLD_VERSION=1.1.0",
        f"{wfs}&REQUEST=DescribeFeatureType&TYPENAMES={slug}",
        f"{wfs}&REQUEST=GetFeature&TYPENAMES={slug}&COUNT=10&OUTPUTFORMAT=geojson",
    ]


CAPABILITIES = [
    "/ogc/collections?f=json",
    "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities",
    "/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetCapabilities",
]
CSW_ALL = (
    "/csw?service=CSW&version=2.0.2&request=GetRecords&typenames=csw:Record"
    "&resulttype=results&elementsetname=full&maxrecords=50"
)


def csw_record(slug: str) -> str:
    return f"/csw?service=CSW&version=2.0.2&request=GetRecordById&id={slug}&elementsetname=full"


def every_url(world: World) -> list[str]:
    """Each route, filled in for both hidden datasets, and the OGC requests that would
    show them (capabilities, items, maps, features, records), once; CSW apart (pycsw
    takes most of a second per request)."""
    store = world.deployed.store
    urls = urls_for(RESTRICTED, store) + urls_for(AGENTS_ONLY, store) + CAPABILITIES
    for slug in (RESTRICTED, AGENTS_ONLY):
        every = service_urls(slug)
        urls += [u for u in every if not re.search(r"GetLegend|GetFeatureInfo|Describe", u)]
    return [u for u in dict.fromkeys(urls) if not u.startswith("/csw")]


def answers_to(world: World, urls: list[str], token: str | None = None):
    """The responses to `urls`, fetched four at a time."""
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(urls, pool.map(lambda path: world.get(path, token), urls), strict=True))


def leaks(response: requests.Response) -> list[str]:
    """The secret words in the answer (but a word the request asked for, echoed back)."""
    asked = response.request.url or ""
    return [word for word in SECRETS.values() if word in response.text and word not in asked]


# --- the verifier ------------------------------------------------------------------------------


def test_the_verifier_refuses_every_bad_token_and_reads_only_names(
    world, tokens, bad_tokens, odd_tokens
):
    verifier = OidcVerifier.from_env()
    assert verifier is not None
    for name, token in {**bad_tokens, **odd_tokens}.items():
        assert verifier.principal(token) is None, name
    usager = verifier.principal(tokens["usager"])
    assert (usager.kind, usager.given_name, usager.family_name) == ("usager", "Camille", "Martin")
    assert (usager.email, usager.subject, usager.agent) == (
        "camille.martin@example.org",
        "usager-0001",
        False,
    )
    assert verifier.principal(tokens["usager-ps256"]).kind == "usager"
    assert verifier.principal(tokens["agent"]).agent is True


def with_header(token: str, header: dict[str, object]) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *token.split(".")[1:]])


def test_odd_claims_and_headers_are_refused_without_error(world):
    verifier = OidcVerifier.from_env()
    issuer = world.issuer
    good = jwt.decode(issuer.token(), options={"verify_signature": False})
    odd = [
        issuer.raw({**good, "iss": [issuer.issuer]}),
        issuer.raw({**good, "aud": {"client": issuer.client_id}}),
        issuer.raw({**good, "exp": "demain"}),
        issuer.raw({**good, "sub": ["a", "b"]}),
        issuer.raw([good]),
        issuer.token(sub=None),
        issuer.token(aud=[issuer.client_id, "autre"]),  # several audiences, no azp
        with_header(issuer.token(), {"alg": "RS256", "kid": 7}),
        with_header(issuer.token(), {"alg": ["RS256"], "kid": "rsa-1"}),
        issuer.token(headers={"crit": ["exp"]}),
        "e30.e30.",  # {} . {} . no signature
        "a" * 20_000,
    ]
    for token in odd:
        assert verifier.principal(token) is None, token[:60]
    several = issuer.token(aud=[issuer.client_id, "autre"], azp=issuer.client_id)
    assert verifier.principal(several) is not None


def test_a_small_leeway_on_expiry_and_proconnect_usual_name(world):
    verifier = OidcVerifier.from_env()
    just_expired = world.issuer.token(issued=time.time() - 310, lifetime=300)  # 10 s ago
    assert verifier.principal(just_expired) is not None
    long_expired = world.issuer.token(issued=time.time() - 400, lifetime=300)  # 100 s ago
    assert verifier.principal(long_expired) is None
    proconnect = world.issuer.token(family_name=None, usual_name="Durand")
    assert verifier.principal(proconnect).family_name == "Durand"


def test_discovery_and_keys_are_fetched_once_and_cached(world, tokens):
    assert world.get(f"/api/datasets/{RESTRICTED}", tokens["usager"]).status_code == 200
    requests_before = list(world.issuer.requests)
    for _ in range(5):
        assert world.get(f"/api/datasets/{RESTRICTED}", tokens["usager"]).status_code == 200
    fetched = world.issuer.requests[len(requests_before) :]
    assert "/jwks" not in fetched and "/.well-known/openid-configuration" not in fetched


@pytest.mark.parametrize(
    "variable, value",
    [
        ("OPENDATA_OIDC_ALGORITHMS", "RS256,HS256"),
        ("OPENDATA_OIDC_ALGORITHMS", "none"),
        ("OPENDATA_OIDC_ISSUERS", "http://fournisseur.example.org"),  # http off loopback
    ],
)
def test_configuration_refuses_symmetric_algorithms_and_plain_http(variable, value):
    environ = {"OPENDATA_OIDC_ISSUERS": "https://id.example.org", "OPENDATA_OIDC_AUDIENCE": "c"}
    with pytest.raises(ValueError):
        OidcSettings.from_env({**environ, variable: value})


@pytest.fixture
def discovery() -> Iterator[dict[str, Any]]:
    """An issuer on loopback whose discovery document the test writes (`document`)."""
    state: dict[str, Any] = {"document": {}, "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            state["requests"].append(self.path)
            body = json.dumps(state["document"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    with loopback_server(Handler) as port:
        state["issuer"] = f"http://127.0.0.1:{port}"
        yield state


def test_a_token_without_kid_is_checked_with_the_issuers_only_key(discovery):
    # OpenID Connect Core §10.1: `kid` may be left out when the JWKS holds one key (the
    # demo's provider, oidc-provider-mock, does); with several keys it is refused
    signer, stranger = OidcProvider(client_id="client"), OidcProvider(client_id="client")
    signer.issuer = stranger.issuer = discovery["issuer"]
    provider = Provider(name="local", issuer=discovery["issuer"], label="Local")

    def without_kid(issuer: OidcProvider) -> str:
        claims = jwt.decode(issuer.token(), options={"verify_signature": False})
        return jwt.encode(claims, issuer.rsa_key, algorithm="RS256")

    def verifier(keys: list[dict[str, Any]]) -> OidcVerifier:
        discovery["document"] = {  # served for both the discovery and the JWKS
            "issuer": discovery["issuer"],
            "jwks_uri": discovery["issuer"] + "/jwks",
            "keys": keys,
        }
        return OidcVerifier(OidcSettings(providers=(provider,), audiences=("client",)))

    one_key = verifier(signer.jwks()["keys"][:1])
    assert "kid" not in jwt.get_unverified_header(without_kid(signer))
    assert one_key.claims(without_kid(signer))["email"] == "camille.martin@example.org"
    with pytest.raises(jwt.InvalidSignatureError):
        one_key.claims(without_kid(stranger))  # another key: the signature does not hold
    with pytest.raises(InvalidToken):
        verifier(signer.jwks()["keys"]).claims(without_kid(signer))  # which of two keys?
    with pytest.raises(InvalidToken):
        one_key.claims(signer.token(headers={"kid": ""}))


def test_a_providers_documents_cannot_send_the_platform_inside_its_network(discovery):
    # the configured issuer (here on loopback) is the operator's choice; the addresses its
    # discovery document names are not: a host other than the issuer's must be public
    with attacker_server() as attacker:
        discovery["document"] = {
            "issuer": discovery["issuer"],
            "jwks_uri": attacker.url("/jwks", host="localhost"),
        }
        provider = Provider(name="local", issuer=discovery["issuer"], label="Local")
        verifier = OidcVerifier(OidcSettings(providers=(provider,), audiences=("client",)))
        with pytest.raises(ProviderUnavailable):
            verifier.metadata(provider).key("rsa-1")
        assert attacker.received == []
    assert discovery["requests"] == ["/.well-known/openid-configuration"]


def test_without_configuration_every_jwt_is_anonymous(world, tokens, monkeypatch):
    monkeypatch.delenv("OPENDATA_OIDC_ISSUERS")
    assert OidcVerifier.from_env() is None
    from fastapi.testclient import TestClient

    app = create_app(world.deployed.store, services=[])
    with TestClient(app) as client:
        response = client.get(
            f"/api/datasets/{RESTRICTED}", headers={"Authorization": f"Bearer {tokens['usager']}"}
        )
    assert response.status_code == 404


# --- nothing for anonymous and bad tokens ------------------------------------------------------


def test_anonymous_callers_get_what_a_missing_dataset_gets_from_the_ogc_services(world):
    for slug in (RESTRICTED, AGENTS_ONLY):
        missing_urls = service_urls(MISSING, SECRETS[slug])  # the same search words
        for path, missing in zip(service_urls(slug), missing_urls, strict=True):
            response = world.get(path)
            assert not leaks(response), path
            assert normalised(response, slug) == normalised(world.get(missing), MISSING), path
        record = world.get(csw_record(slug))
        assert record.status_code == 200 and slug not in record.text
        assert normalised(record, slug) == normalised(world.get(csw_record(MISSING)), MISSING)
    for path in CAPABILITIES + [CSW_ALL]:
        response = world.get(path)
        assert response.status_code == 200 and PUBLIC in response.text, path
        assert not leaks(response) and RESTRICTED not in response.text, path


@pytest.mark.slow
def test_every_bad_token_gets_exactly_what_an_anonymous_caller_gets(world, bad_tokens):
    urls = every_url(world) + [CSW_ALL]
    anonymous = {path: normalised(r) for path, r in answers_to(world, urls).items()}
    assert len(urls) >= 60
    for name, token in bad_tokens.items():
        for path, response in answers_to(world, urls, token).items():
            assert not leaks(response), (name, path)
            if CREDENTIALS_ONLY.search(path):  # 401 (its wording may differ), or to sign in
                signing_in = 303 if SIGN_IN_PAGES.search(path) else 401
                assert response.status_code == 401, (name, path)
                assert anonymous[path][0] == signing_in, (name, path)
            else:
                assert normalised(response) == anonymous[path], (name, path)


def test_other_bad_tokens_get_nothing_either(world, odd_tokens):
    """Beyond the six kinds above: no exp, a key the issuer does not have, another issuer
    claiming ours, garbage."""
    for name, token in odd_tokens.items():
        for path in (f"/api/datasets/{RESTRICTED}", CAPABILITIES[0], service_urls(AGENTS_ONLY)[-1]):
            assert normalised(world.get(path, token)) == normalised(world.get(path)), (name, path)


# --- the data for valid tokens -----------------------------------------------------------------


def test_a_valid_token_reads_the_restricted_dataset_through_the_api(world, tokens):
    token = tokens["usager"]
    listed = world.get("/api/datasets?taille=100", token).json()["jeux_de_donnees"]
    assert {d["slug"] for d in listed} == {PUBLIC, RESTRICTED}  # not the agents' one
    assert world.get(f"/api/datasets/{RESTRICTED}", token).json()["titre"].startswith("Caméras")
    rows = world.get(f"/api/datasets/{RESTRICTED}/rows?_total=1", token).json()
    assert rows["total"] == len(POINTS)
    download = world.get(f"/api/datasets/{RESTRICTED}/download/csv", token)
    assert download.status_code == 200 and download.text.count("\n") == len(POINTS) + 1
    assert "private" in download.headers["cache-control"]
    assert "Authorization" in download.headers["vary"]
    assert world.get(f"/api/datasets/{RESTRICTED}/v1/download/geojson", token).status_code == 200
    dcat = world.get(f"/api/datasets/{RESTRICTED}/dcat.ttl", token).text
    assert SECRETS[RESTRICTED] in dcat and "access-right/RESTRICTED" in dcat
    assert SECRETS[RESTRICTED] in world.get("/dcat/catalogue.ttl", token).text
    feed = world.get(f"/api/datasets/{RESTRICTED}/changements.atom", token)
    assert feed.status_code == 200 and SECRETS[RESTRICTED] in feed.text
    assert SECRETS[RESTRICTED] in world.get("/changements.atom", token).text
    notices = world.get(f"/api/datasets/{RESTRICTED}/avis-changement", token)
    assert notices.status_code == 200 and notices.json()["avis"] == []
    assert world.get(f"/api/datasets/{AGENTS_ONLY}", token).status_code == 404


def test_a_valid_token_sees_the_restricted_dataset_on_the_portal_and_embed(world, tokens):
    token = tokens["usager-ps256"]
    for path in ("/", "/communes/ecully", "/integration/ecully", f"/jeux-de-donnees/{RESTRICTED}"):
        page = world.get(path, token)
        assert page.status_code == 200 and SECRETS[RESTRICTED] in page.text, path
        assert SECRETS[AGENTS_ONLY] not in page.text, path
    assert world.get(f"/jeux-de-donnees/{AGENTS_ONLY}", token).status_code == 404


def test_ogc_api_serves_the_restricted_layer_to_a_valid_token(world, tokens):
    token = tokens["usager"]
    names = {c["id"] for c in world.get("/ogc/collections?f=json", token).json()["collections"]}
    assert {PUBLIC, RESTRICTED} <= names and AGENTS_ONLY not in names
    items = world.get(f"/ogc/collections/{RESTRICTED}/items?f=json", token).json()
    assert items["numberMatched"] == len(POINTS)
    assert world.get(f"/ogc/collections/{AGENTS_ONLY}/items?f=json", token).status_code == 404
    records = world.get(f"/ogc/collections/catalogue/items?q={SECRETS[RESTRICTED]}&f=json", token)
    assert [r["id"] for r in records.json()["features"]] == [RESTRICTED]


def test_wms_and_wfs_serve_the_restricted_layer_to_a_valid_token(world, tokens):
    headers = {"Authorization": f"Bearer {tokens['usager']}"}
    wms = WebMapService(f"{world.base}/wms", version="1.3.0", timeout=30, headers=headers)
    assert {PUBLIC, RESTRICTED} <= set(wms.contents) and AGENTS_ONLY not in wms.contents
    image = wms.getmap(
        layers=[RESTRICTED],
        srs="EPSG:4326",
        bbox=(4.765, 45.770, 4.785, 45.780),  # x, y: OWSLib puts it in the CRS's order
        size=(64, 64),
        format="image/png",
        transparent=True,
    )
    drawn = Image.open(io.BytesIO(image.read())).convert("RGBA")
    assert any(pixel[3] > 0 for pixel in drawn.getdata())  # the points are drawn
    wfs = WebFeatureService(f"{world.base}/wfs", version="2.0.0", timeout=30, headers=headers)
    assert f"ms:{RESTRICTED}" in wfs.contents and f"ms:{AGENTS_ONLY}" not in wfs.contents
    features = json.loads(wfs.getfeature(typename=[RESTRICTED], outputFormat="geojson").read())[
        "features"
    ]
    assert len(features) == len(POINTS)


def test_csw_returns_the_restricted_record_to_a_valid_token(world, tokens):
    record = world.get(csw_record(RESTRICTED), tokens["usager"])
    assert SECRETS[RESTRICTED] in record.text
    assert SECRETS[AGENTS_ONLY] not in world.get(csw_record(AGENTS_ONLY), tokens["usager"]).text


def test_agents_only_layers_need_the_agents_claim(world, tokens):
    token = tokens["agent"]
    assert world.get(f"/api/datasets/{AGENTS_ONLY}", token).status_code == 200
    assert world.get(f"/api/datasets/{AGENTS_ONLY}/rows", token).status_code == 200
    names = {c["id"] for c in world.get("/ogc/collections?f=json", token).json()["collections"]}
    assert {PUBLIC, RESTRICTED, AGENTS_ONLY} <= names
    capabilities = world.get(CAPABILITIES[1], token).text
    assert f"<Name>{AGENTS_ONLY}</Name>" in capabilities
    features = world.get(service_urls(AGENTS_ONLY)[-1], token).json()["features"]
    assert len(features) == len(POINTS)
    assert SECRETS[AGENTS_ONLY] in world.get(csw_record(AGENTS_ONLY), token).text


def test_a_communes_api_token_gets_its_restricted_layers_outside_the_ogc_services(world):
    """docs/comptes-et-securite.md says so: the OGC services have one audience per access
    level, not per commune; a commune's API token reads its restricted data everywhere else,
    the data team's token everywhere."""
    store = world.deployed.store
    ecully = accounts.create_token(store, "producteur", "agent@ecully.fr", "ecully").token
    team = accounts.create_token(store, "equipe-data", "sig@grandlyon.example").token
    assert world.get(f"/api/datasets/{RESTRICTED}", ecully).status_code == 200
    assert world.get(f"/api/datasets/{AGENTS_ONLY}/rows", ecully).status_code == 200
    for token, layers in ((ecully, {PUBLIC}), (team, {PUBLIC, RESTRICTED, AGENTS_ONLY})):
        listed = world.get("/ogc/collections?f=json", token).json()["collections"]
        assert {c["id"] for c in listed} & {PUBLIC, *SECRETS} == layers
        capabilities = world.get(CAPABILITIES[1], token).text
        assert {s for s in (PUBLIC, *SECRETS) if f"<Name>{s}</Name>" in capabilities} == layers
    assert world.get(f"/ogc/collections/{RESTRICTED}/items?f=json", ecully).status_code == 404


def test_gdal_reads_a_restricted_layer_with_a_bearer_token(world, tokens, tmp_path):
    command = ["ogrinfo", "-ro", "-so", "-al", f"OAPIF:{world.base}/ogc", RESTRICTED]
    environment = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {tokens['usager']}"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"Feature Count: {len(POINTS)}\b", done.stdout)
    anonymous = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert anonymous.returncode != 0 and "Feature Count" not in anonymous.stdout


# --- the portal's sign-in ----------------------------------------------------------------------


def sign_in(world: World, user: dict[str, object], back: str) -> requests.Session:
    world.issuer.next_user = user
    browser = requests.Session()
    page = browser.get(f"{world.base}/connexion?retour={back}", timeout=30)
    assert page.status_code == 200, page.text
    return browser


def test_sign_in_with_pkce_then_sign_out(world):
    back = f"/jeux-de-donnees/{RESTRICTED}"
    assert world.get(back).status_code == 404
    browser = sign_in(world, {"sub": "agent-42", "given_name": "Dominique"}, back)
    page = browser.get(world.base + back, timeout=30)
    assert SECRETS[RESTRICTED] in page.text and "Dominique Martin" in page.text
    assert "Se déconnecter" in page.text and "Se connecter<" not in page.text
    cookie = next(c for c in browser.cookies if c.name == "opendata_session")
    assert cookie.has_nonstandard_attr("httponly") and not cookie.secure  # secure off: http
    api = browser.get(f"{world.base}/api/datasets/{RESTRICTED}/rows", timeout=30)
    assert api.status_code == 200 and "private" in api.headers["cache-control"]
    assert browser.get(f"{world.base}/api/datasets/{AGENTS_ONLY}", timeout=30).status_code == 404
    out = browser.get(f"{world.base}/deconnexion", timeout=30)
    assert "/logout" in world.issuer.requests and out.url == f"{world.base}/"
    assert "Se connecter" in out.text
    assert browser.get(world.base + back, timeout=30).status_code == 404


def session_cookie(browser: requests.Session) -> str:
    return next(c.value for c in browser.cookies if c.name == "opendata_session")


def cookie_content(cookie: str) -> dict[str, Any]:
    """What a session cookie says: itsdangerous's `payload.timestamp.signature`, the payload
    being base64 JSON (signed, not encrypted: anyone holding the cookie reads it)."""
    payload = cookie.strip('"').split(".")[0]
    return json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))


def new_minute(world: World) -> int:
    """A fresh refusal log (the module's other tests filled this minute's quota for
    127.0.0.1); the last line of the audit log so far."""
    refusals.flush(world.app)
    world.app.state.refusals = refusals.RefusalLog(world.deployed.store)
    return max((e.id for e in world.deployed.store.audit_log(limit=1)), default=0)


def audit_since(world: World, start: int, action: str, reason: str | None = None) -> list:
    refusals.flush(world.app)
    lines = world.deployed.store.audit_log(action=action, limit=200)
    return [e for e in lines if e.id > start and reason in (None, e.details.get("motif"))]


def test_the_session_cookie_names_a_server_side_session_that_sign_out_ends(world):
    start = new_minute(world)
    email = "claude.durand@ecully.fr"
    person = {"sub": "agent-rejoue", "given_name": "Claude", "email": email}
    browser = sign_in(world, person, "/")
    cookie = session_cookie(browser)
    content = cookie_content(cookie)
    assert list(content) == [sessions.SESSION_ID] and len(content["sid"]) == 43
    for secret in ("Claude", "Martin", email, "@", "agent-rejoue", world.issuer.issuer):
        assert secret not in json.dumps(content), secret
    kept = world.deployed.store.portal_session(sessions.digest(content["sid"]))
    assert kept.person["email"] == email and kept.subject == "agent-rejoue"
    assert kept.id_token and kept.id_token.count(".") == 2  # the ID token: server-side only
    restricted = f"{world.base}/api/datasets/{RESTRICTED}"
    assert browser.get(restricted, timeout=30).status_code == 200

    browser.get(f"{world.base}/deconnexion", timeout=30)
    assert world.deployed.store.portal_session(sessions.digest(content["sid"])) is None
    replayed = requests.Session()
    replayed.cookies.set("opendata_session", cookie)
    answer = replayed.get(restricted, timeout=30)
    assert answer.status_code == 404  # as for anyone anonymous
    assert "opendata_session=null" in answer.headers["set-cookie"]  # dropped
    [line] = audit_since(world, start, "authentification-refusee", "session-inconnue")
    assert line.details["chemin"] == f"/api/datasets/{RESTRICTED}"
    assert line.details["client"] == "127.0.0.1" and line.actor == "anonyme"

    forged = requests.Session()
    forged.cookies.set("opendata_session", cookie[:-3] + "AAA")  # the signature broken
    assert forged.get(restricted, timeout=30).status_code == 404
    assert len(audit_since(world, start, "authentification-refusee", "session-illisible")) == 1


def test_a_name_with_control_characters_is_shown_escaped(world):
    browser = sign_in(world, {"sub": "agent-piege", "given_name": "\x1b[31mEve\u202e"}, "/")
    page = browser.get(f"{world.base}/", timeout=30).text
    assert "\\x1b[31mEve\\u202e Martin" in page and "\x1b" not in page


def test_a_session_ends_at_its_time_by_the_platforms_clock(world, monkeypatch):
    start = new_minute(world)
    browser = sign_in(world, {"sub": "agent-tardif"}, "/")
    restricted = f"{world.base}/api/datasets/{RESTRICTED}"
    assert browser.get(restricted, timeout=30).status_code == 200
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 8 * 3600 + 60))
    monkeypatch.setenv("OPENDATA_NOW", later)  # OPENDATA_SESSION_HOURS: 8 by default
    assert browser.get(restricted, timeout=30).status_code == 404
    assert len(audit_since(world, start, "authentification-refusee", "session-expiree")) == 1


def test_bad_bearer_tokens_are_in_the_audit_log(world, bad_tokens):
    start = new_minute(world)
    for token in bad_tokens.values():
        assert world.get(f"/api/datasets/{RESTRICTED}", token).status_code == 404
    refused = audit_since(world, start, "authentification-refusee")
    assert [e.details["motif"] for e in refused] == ["jeton-oidc-invalide"] * len(bad_tokens)
    reads = audit_since(world, start, "lecture-refusee")
    assert [(e.target, e.actor) for e in reads] == [(RESTRICTED, "anonyme")] * len(bad_tokens)


def test_an_agent_signed_in_reads_the_agents_layers(world):
    browser = sign_in(world, {"groups": [AGENTS_GROUP]}, "/")
    assert browser.get(f"{world.base}/api/datasets/{AGENTS_ONLY}", timeout=30).status_code == 200
    wfs = browser.get(world.base + service_urls(AGENTS_ONLY)[-1], timeout=30)
    assert len(wfs.json()["features"]) == len(POINTS)


def test_names_missing_from_the_id_token_come_from_the_signed_userinfo(world):
    world.issuer.names_in_userinfo = True
    try:
        browser = sign_in(world, {"sub": "agent-77", "given_name": "Sacha"}, "/")
    finally:
        world.issuer.names_in_userinfo = False
    assert "/userinfo" in world.issuer.requests
    assert "Sacha Martin" in browser.get(world.base + "/", timeout=30).text  # usual_name


def test_a_tampered_or_replayed_callback_signs_nobody_in(world):
    world.issuer.next_user = {}
    browser = requests.Session()
    start = browser.get(f"{world.base}/connexion/proconnect", timeout=30, allow_redirects=False)
    authorize = requests.get(start.headers["location"], timeout=30, allow_redirects=False)
    callback = authorize.headers["location"]
    tampered = browser.get(re.sub(r"state=[^&]+", "state=autre", callback), timeout=30)
    assert tampered.status_code == 400 and "La connexion a échoué" in tampered.text
    assert browser.get(callback, timeout=30).status_code == 400  # the login was dropped
    other = requests.Session()  # a new login, then its code sent twice
    other.get(f"{world.base}/connexion/proconnect", timeout=30)
    assert other.get(f"{world.base}/api/datasets/{RESTRICTED}", timeout=30).status_code == 200
    replay = requests.Session()
    start = replay.get(f"{world.base}/connexion/proconnect", timeout=30, allow_redirects=False)
    state = re.search(r"state=([^&]+)", start.headers["location"]).group(1)
    used = re.sub(r"state=[^&]+", f"state={state}", callback)  # an old, spent code
    assert replay.get(used, timeout=30).status_code == 400  # another login's code: PKCE
    assert replay.get(f"{world.base}/api/datasets/{RESTRICTED}", timeout=30).status_code == 404


def test_a_forged_session_cookie_is_anonymous(world):
    forged = requests.Session()
    forged.cookies.set("opendata_session", "eyJ1dGlsaXNhdGV1ciI6IHt9fQ==.forge.signature")
    assert forged.get(f"{world.base}/api/datasets/{RESTRICTED}", timeout=30).status_code == 404
    assert world.get("/connexion?retour=https://pirate.example.org/").status_code == 303
    assert "pirate" not in world.get("/connexion?retour=//pirate.example.org/").headers["location"]


def test_odd_callbacks_and_return_paths_fail_cleanly(world):
    browser = requests.Session()
    browser.get(
        f"{world.base}/connexion/proconnect?retour=/x%0A", timeout=30, allow_redirects=False
    )
    odd = browser.get(f"{world.base}/connexion/retour?state=%C3%A9&code=x", timeout=30)
    assert odd.status_code == 400 and "La connexion a échoué" in odd.text  # not a 500
    world.issuer.next_user = {}
    signed_in = requests.Session()
    start = signed_in.get(
        f"{world.base}/connexion/proconnect?retour=/x%0A", timeout=30, allow_redirects=False
    )
    authorize = requests.get(start.headers["location"], timeout=30, allow_redirects=False)
    back = signed_in.get(authorize.headers["location"], timeout=30, allow_redirects=False)
    assert back.status_code == 303 and back.headers["location"].endswith("/")  # not "/x\n"
    assert signed_in.get(f"{world.base}/api/datasets/{RESTRICTED}", timeout=30).status_code == 200


@pytest.mark.browser
def test_sign_in_and_out_in_chromium(world):
    """The whole flow in Debian's Chromium: the header's link, the provider, the page of the
    restricted dataset with its map data, then signing out."""
    browser_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    world.issuer.next_user = {"sub": "usager-chromium", "given_name": "Alix"}
    with browser_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_context(locale="fr-FR").new_page()
            page.goto(f"{world.base}/communes/ecully")
            assert SECRETS[RESTRICTED] not in page.content()
            page.get_by_role("link", name="Se connecter").click()
            page.wait_for_url(f"{world.base}/communes/ecully")
            assert "Alix Martin" in page.content()
            page.get_by_role("link", name=re.compile("Caméras")).click()
            heading = page.get_by_role("heading", name=re.compile(SECRETS[RESTRICTED]))
            browser_api.expect(heading).to_be_visible()  # waits for the page, unlike is_visible
            rows = page.evaluate(f"fetch('/api/datasets/{RESTRICTED}/rows').then(r => r.status)")
            assert rows == 200  # the page's own API calls carry the session
            page.get_by_role("link", name="Se déconnecter").click()
            page.wait_for_url(f"{world.base}/")
            assert page.goto(f"{world.base}/jeux-de-donnees/{RESTRICTED}").status == 404
        finally:
            browser.close()
