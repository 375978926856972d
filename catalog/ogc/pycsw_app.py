"""pycsw over the catalog's records: CSW 2.0.2 for the harvesters that still use it.

This module runs in pycsw's own virtual environment (`var/pycsw-venv`), never in the
catalog's: it imports nothing but the standard library and pycsw. Three entry points:

- ``python -I pycsw_app.py build TARGET`` reads a JSON list of records on stdin (each an
  ISO 19139 ``gmd:MD_Metadata`` document, its links as [name, description, protocol, url]
  and the values of some of pycsw's columns, by pycsw's names) and writes a new pycsw
  repository (SQLite) at TARGET with pycsw's own schema and parser
  (`setup_db`, `parse_record`, `Repository.insert`);
- ``python -I pycsw_app.py upsert TARGET`` reads ``{"records": [...], "removed": [ids]}``
  on stdin and writes those records into the repository at TARGET (replacing the
  records of the same identifier) and removes the others, in one transaction: a change of
  the catalogue rewrites only its records;
- ``python -I pycsw_app.py updates`` does the same for each JSON line on stdin (with its
  ``target``), answering each with a line on stdout: the catalog keeps it running, so a
  change does not wait for pycsw to load;
- ``python -I pycsw_app.py cgi`` answers one HTTP request as a CGI program (the catalog
  runs it for each request to `/csw` when its OGC servers are not resident);
- ``application`` is a WSGI application for a WSGI server in pycsw's own container;
- ``resident()`` makes the application the catalog keeps running under gunicorn, on a
  socket only the catalog reaches (`csw.CswService`): the same, with pycsw loaded
  beforehand and the public base URL taken from the catalog's ``PUBLIC_URL_HEADER``.

The configuration file is named by ``OPENDATA_CSW_CONFIG``; its repository path is relative
to the file's folder. Links in the records start with ``BASE_PLACEHOLDER``, replaced in
every response by the public base URL (``OPENDATA_PUBLIC_URL``, else the embedded
deployment's ``DEFAULT_PUBLIC_URL``), never by the request's Host: a forged Host must not
end up in an answer a cache keeps (issue #16).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from wsgiref.handlers import BaseCGIHandler

BASE_PLACEHOLDER = "http://catalogue.invalid"
CONFIG_VARIABLE = "OPENDATA_CSW_CONFIG"
PUBLIC_URL_VARIABLE = "OPENDATA_PUBLIC_URL"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"  # core.settings's (not importable here)
TABLE = "records"
SAFE_BASE_URL = re.compile(
    r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/]*)?"
)
SERVED_TYPES = ("application/xml", "application/json", "text/xml")
PUBLIC_URL_HEADER = "X-Opendata-Public-Url"  # trusted from the catalog only (resident)
StartResponse = Callable[..., Any]
WsgiApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# pycsw 2.6 imports a name Shapely 2 deprecates; the warning would fill every log.
warnings.filterwarnings("ignore", "ReadingError is deprecated", FutureWarning)


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Answer one CSW request with pycsw, links and service URL on the public base URL."""
    from pycsw import server

    config_path = Path(environ.get(CONFIG_VARIABLE) or os.environ[CONFIG_VARIABLE])
    base = public_base_url(environ)
    env = dict(environ)
    env["local.app_root"] = str(config_path.parent)  # resolves the relative sqlite path
    # what pycsw could build a link from (SRU's host) is the public URL's, not the request's
    public = urlsplit(base)
    env["HTTP_HOST"] = env["SERVER_NAME"] = public.hostname or "localhost"
    env["SERVER_PORT"] = str(public.port or (443 if public.scheme == "https" else 80))
    env["wsgi.url_scheme"] = public.scheme
    csw = server.Csw(load_config(config_path, base), env, version="2.0.2")
    status, contents = csw.dispatch_wsgi()
    contents = contents.replace(BASE_PLACEHOLDER.encode(), base.encode())
    # pycsw echoes the caller's outputFormat as the type: only known types pass
    media_type = str(getattr(csw, "contenttype", "")).split(";")[0].strip()
    if media_type not in SERVED_TYPES:
        media_type = "application/xml"
    content_type = f"{media_type}; charset=UTF-8"
    headers = [("Content-Type", content_type), ("Content-Length", str(len(contents)))]
    start_response(status, headers)
    return [contents]


def resident() -> WsgiApplication:
    """The application of the catalog's resident pycsw: pycsw imported once, before the
    workers start (gunicorn's ``--preload``), and the public base URL the catalog gives
    in ``PUBLIC_URL_HEADER`` on every request. Never to be served where anyone but the
    catalog can connect: a production pycsw serves ``application``."""
    from pycsw import server  # noqa: F401  (loaded once, shared by the workers)

    variable = "HTTP_" + PUBLIC_URL_HEADER.upper().replace("-", "_")

    def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ = dict(environ)
        environ[PUBLIC_URL_VARIABLE] = environ.pop(variable, "")
        return application(environ, start_response)

    return answer


def public_base_url(environ: dict[str, Any]) -> str:
    """The base URL of the catalog as its users reach it, without a trailing slash: the
    configured one (the catalog passes its own in the CGI environment), never the request's."""
    configured = environ.get(PUBLIC_URL_VARIABLE) or os.environ.get(PUBLIC_URL_VARIABLE)
    candidate = (configured or DEFAULT_PUBLIC_URL).strip().rstrip("/")
    return candidate if SAFE_BASE_URL.fullmatch(candidate) else DEFAULT_PUBLIC_URL


def load_config(path: Path, base: str) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    with path.open(encoding="utf-8") as stream:
        config.read_file(stream)
    config.set("server", "url", f"{base}/csw")
    config.set("metadata:main", "provider_url", f"{base}/")
    config.set("metadata:main", "contact_url", f"{base}/")
    return config


def build(target: Path, documents: list[dict[str, Any]]) -> int:
    """A new repository at `target` holding these records; their number."""
    from pycsw.core import admin

    if target.exists():
        target.unlink()
    database = f"sqlite:///{target}"
    admin.setup_db(database, TABLE, str(Path(admin.__file__).parent))
    return upsert(target, documents, [])


def upsert(target: Path, documents: list[dict[str, Any]], removed: list[str]) -> int:
    """Write these records into the repository at `target` (a record of the same
    identifier replaced), and remove the records of the `removed` identifiers; the number
    of records written. One transaction: the repository is the old one or the new one."""
    from pycsw.core import config, metadata, repository
    from pycsw.core.etree import etree

    context = config.StaticContext()
    repo = repository.Repository(f"sqlite:///{target}", context, table=TABLE)
    mappings = context.md_core_model["mappings"]
    identifier = getattr(repo.dataset, mappings["pycsw:Identifier"])
    written = 0
    session = repo.session
    session.begin()  # pycsw's session is in autocommit mode: one explicit transaction
    try:
        if removed:
            session.query(repo.dataset).filter(identifier.in_(removed)).delete(
                synchronize_session=False
            )
        for document in documents:
            parsed = etree.fromstring(document["xml"].encode("utf-8"), context.parser)
            for record in metadata.parse_record(context, parsed, repo):
                # pycsw's own values where it derives them less well (a bbox rounded to 0.01°)
                for column, value in document.get("columns", {}).items():
                    setattr(record, mappings[column], value)
                setattr(record, mappings["pycsw:Links"], links_column(document["links"]))
                if isinstance(record.xml, bytes):
                    record.xml = record.xml.decode()
                session.merge(record)
                written += 1
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
        repo.engine.dispose()
    return written


def links_column(links: list[list[str]]) -> str:
    """pycsw's links column: name,description,protocol,url joined by ^ (so neither inside)."""
    return "^".join(",".join(re.sub(r"[,^]", " ", value) for value in link) for link in links)


def serve_updates() -> None:
    """Upserts, one JSON line each on stdin (``{"target", "records", "removed"}``), each
    answered by one JSON line on stdout (``{"records": n}`` or ``{"error": text}``): the
    catalog keeps this process to write each change without starting pycsw again."""
    import traceback

    from owslib import iso  # noqa: F401  (pycsw's record parser, loaded once before any change)
    from pycsw.core import metadata, repository  # noqa: F401

    warnings.filterwarnings("ignore", category=FutureWarning)  # OWSLib's, on every record

    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt an answer
    for line in sys.stdin.buffer:
        try:
            change = json.loads(line)
            answer: dict[str, Any] = {
                "records": upsert(Path(change["target"]), change["records"], change["removed"])
            }
        except Exception:  # reported to the catalog, which fails closed
            answer = {"error": traceback.format_exc()[-4000:]}
        answers.write(json.dumps(answer).encode("utf-8") + b"\n")
        answers.flush()


def run_cgi() -> None:
    """One request, CGI style: environment and body in, status, headers and body out."""
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the response
    handler = BaseCGIHandler(
        sys.stdin.buffer, stdout, sys.stderr, dict(os.environ), multithread=False
    )
    handler.run(application)


def main(arguments: list[str]) -> int:
    if arguments[:1] == ["build"] and len(arguments) == 2:
        documents = json.load(sys.stdin)
        print(json.dumps({"records": build(Path(arguments[1]), documents)}))
        return 0
    if arguments[:1] == ["upsert"] and len(arguments) == 2:
        change = json.load(sys.stdin)
        written = upsert(Path(arguments[1]), change["records"], change["removed"])
        print(json.dumps({"records": written}))
        return 0
    if arguments == ["updates"]:
        serve_updates()
        return 0
    if arguments == ["cgi"]:
        run_cgi()
        return 0
    print(
        "usage: pycsw_app.py build TARGET < records.json | "
        "pycsw_app.py upsert TARGET < change.json | pycsw_app.py cgi",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
