"""`opendata` command line: submit a dataset, process drop folders, serve the catalog, demo;
API tokens and the audit log (operator); upload to the platform over HTTP (commune agents).

The commands and options are French, for the people who type them (commune agents, the
data team); the English names of the first versions still work for one release, with a
notice on the standard error (`ANCIENS_NOMS`).

Each command imports what it runs, inside its function: `opendata --help` and the light
commands start without loading the pipeline's readers or the web service."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from core.settings import (
    PUBLIC_URL_VARIABLE,
    Settings,
    configured_public_url,
    load_settings,
)

DESCRIPTION = (
    "Plateforme de données ouvertes des communes de la Métropole de Lyon : soumettre un jeu "
    "de données, traiter les dépôts, servir le catalogue ; jetons d'API et journal d'audit "
    "(exploitation) ; dépôt par l'API (agents des communes)."
)

# Old (English) command names → their French names; kept as aliases for one release.
ANCIENS_NOMS = {
    "submit": "soumettre",
    "process-inbox": "traiter-depots",
    "datasets": "jeux",
    "backup": "sauvegarder",
    "restore": "restaurer",
    "serve": "servir",
}
ANCIENNES_OPTIONS = {
    "--producer": "--producteur",
    "--metadata": "--metadonnees",
    "--no-serve": "--sans-serveur",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opendata", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="commande")

    submit = _command(commands, "soumettre", help="soumettre un jeu de données")
    submit.add_argument("data", type=Path, help="fichier de données (CSV, XLSX, GeoJSON, …)")
    _producer_option(submit, help="commune productrice (ex. ecully)")
    submit.add_argument(
        "--metadonnees",
        "--metadata",
        dest="metadonnees",
        required=True,
        type=Path,
        help="fichier metadata.yaml",
    )
    submit.add_argument("--json", action="store_true", help="rapport en JSON")

    process = _command(commands, "traiter-depots", help="traiter les dépôts sans Airflow")
    _producer_option(process, help="commune dont les dépôts sont traités (ex. ecully)")

    _command(commands, "jeux", help="lister les jeux de données publiés")

    anonymisation = commands.add_parser(
        "anonymisation", help="rapport d'anonymisation de la version courante (équipe data)"
    )
    anonymisation.add_argument("dataset", help="identifiant du jeu (ex. lyon-signalements)")

    _add_notice_parser(commands)
    commands.add_parser(
        "gouvernance",
        help="appliquer une fois les règles de cycle de vie et envoyer les notifications",
    )

    backup = _command(
        commands,
        "sauvegarder",
        help="sauvegarder le catalogue, les fichiers publiés, les archives, les clés",
    )
    backup.add_argument(
        "destination", type=Path, help="fichier .tar à créer, ou dossier où le créer"
    )
    restore = _command(
        commands, "restaurer", help="restaurer une sauvegarde dans une instance vide"
    )
    restore.add_argument("archive", type=Path, help="fichier de sauvegarde (.tar)")
    restore.add_argument(
        "--force", action="store_true", help="remplacer le contenu d'une instance non vide"
    )

    _add_account_parsers(commands)
    _add_schemas_parser(commands)

    serve = _command(commands, "servir", help="servir le catalogue en HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=1, help="processus servant le catalogue (production)"
    )

    demo = commands.add_parser(
        "demo",
        help="Airflow (scheduler, dag-processor, interface) et le catalogue, comme en "
        "production ; les exemples publiés par les DAG ; Ctrl+C arrête tout",
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000, help="port du catalogue (8000)")
    demo.add_argument(
        "--port-airflow", type=int, default=8080, help="port de l'interface d'Airflow (8080)"
    )
    demo.add_argument(
        "--sans-exemples",
        action="store_true",
        help="ne pas déposer les jeux d'exemple (démarrage plus rapide)",
    )
    demo.add_argument(
        "--sans-serveur",
        "--no-serve",
        dest="sans_serveur",
        action="store_true",
        help="publier les exemples puis s'arrêter, sans servir le catalogue",
    )

    args = parser.parse_args(argv)
    command = ANCIENS_NOMS.get(args.command, args.command)
    if command != args.command:
        _old_name(f"opendata {args.command}", f"opendata {command}")
    typed = sys.argv[1:] if argv is None else argv
    for old in dict.fromkeys(
        a.split("=")[0] for a in typed if a.split("=")[0] in ANCIENNES_OPTIONS
    ):
        _old_name(old, ANCIENNES_OPTIONS[old])
    settings = load_settings()
    handlers = {
        "soumettre": _submit,
        "traiter-depots": _process_inbox,
        "jeux": _datasets,
        "anonymisation": _anonymisation,
        "annoncer-changement": _announce_change,
        "gouvernance": _governance,
        "sauvegarder": _backup,
        "restaurer": _restore,
        "jetons": _tokens,
        "schemas": _schemas,
        "journal": _journal,
        "deposer": _deposit,
        "servir": _serve,
        "demo": _demo,
    }
    return handlers[command](args, settings)


def _old_name(old: str, new: str) -> None:
    print(
        f"« {old} » est l'ancien nom de « {new} », qui le remplace ; l'ancien nom sera retiré "
        "à la prochaine version.",
        file=sys.stderr,
    )


def _command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A command, also answering to its old English name (`ANCIENS_NOMS`)."""
    old = [old for old, new in ANCIENS_NOMS.items() if new == name]
    parser: argparse.ArgumentParser = commands.add_parser(name, aliases=old, help=help)
    return parser


def _producer_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--producteur", "--producer", dest="producteur", required=True, help=help)


def _submit(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.submission import Submission, open_settings_store, run_submission

    submission = Submission.new(args.producteur, args.data, args.metadonnees, "ligne-de-commande")
    outcome = run_submission(submission, settings, open_settings_store(settings))
    if args.json:
        print(
            json.dumps(
                {
                    "statut": outcome.status,
                    "jeu_de_donnees": outcome.dataset,
                    "version": outcome.release,
                    "rapport": outcome.report.to_dict(),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print(outcome.summary())
    return 1 if outcome.status == "refusee" else 0


def _process_inbox(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.submission import (
        archive_submission,
        open_settings_store,
        ready_submissions,
        run_submission,
    )

    store = open_settings_store(settings)
    failures = 0
    ready = ready_submissions(settings.inbox_dir, args.producteur)
    if not ready:
        print(
            f"Aucun dépôt à traiter dans {settings.inbox_dir / args.producteur} (un dossier "
            "doit contenir un fichier de données et son metadata.yaml ; les sources déclarées "
            "sont moissonnées par le DAG de la commune)."
        )
    for submission in ready:
        outcome = run_submission(submission, settings, store)
        archive_submission(submission, outcome, settings, store)
        print(f"{Path(submission.data_path).name} : {outcome.summary()}")
        failures += outcome.status == "refusee"
    return 1 if failures else 0


def _datasets(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.submission import open_settings_store

    for dataset in open_settings_store(settings).list_datasets():
        print(f"{dataset.slug:45} v{dataset.current_version}  {dataset.metadata['title']}")
    return 0


def _anonymisation(args: argparse.Namespace, settings: Settings) -> int:
    """The full report, counts and kinds only: for the data team and the producer."""
    from pipelines.submission import open_settings_store

    release = open_settings_store(settings).current_release(args.dataset)
    if release is None:
        print(f"Jeu de données « {args.dataset} » introuvable.", file=sys.stderr)
        return 1
    report = release.anonymisation or {"colonnes": [], "k_anonymat": None}
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


def _add_notice_parser(commands: Any) -> None:
    notice = commands.add_parser(
        "annoncer-changement",
        help="annoncer un changement de structure cassant (au moins 30 jours avant)",
    )
    notice.add_argument("--producteur", required=True, help="commune productrice (ex. ecully)")
    notice.add_argument("--jeu", required=True, help="identifiant du jeu (ex. bancs-publics)")
    notice.add_argument(
        "--schema", required=True, type=Path, help="nouvelle structure (Table Schema JSON/YAML)"
    )
    notice.add_argument("--date", required=True, help="date d'effet, AAAA-MM-JJ")
    notice.add_argument("--description", required=True, help="le changement, en français")
    notice.add_argument(
        "--correspondance",
        type=Path,
        help="YAML : comment obtenir chaque colonne de l'ancienne structure",
    )
    notice.add_argument("--type-geometrie", help="nouveau type de géométrie (ex. Point)")
    notice.add_argument("--crs", type=int, help="nouveau système de coordonnées (code EPSG)")
    notice.add_argument("--format", help="nouveau format de fichier (ex. xlsx)")


def _announce_change(args: argparse.Namespace, settings: Settings) -> int:
    from catalog.store.notices import announce_change
    from core.problems import SubmissionRejected
    from pipelines.schema import load_schema_file
    from pipelines.submission import dataset_slug, open_settings_store

    store = open_settings_store(settings)
    slug = dataset_slug(args.producteur, args.jeu)
    try:
        _check_producer(store, slug, args.producteur)
        notice = announce_change(
            store,
            slug,
            load_schema_file(args.schema),
            _effective_date(args.date),
            args.description,
            _load_mapping(args.correspondance),
            geometry_type=args.type_geometrie,
            crs=args.crs,
            source_format=args.format,
        )
    except SubmissionRejected as error:
        print("Avis de changement refusé : " + _messages(error), file=sys.stderr)
        return 1
    details = {"avis": notice.id, "date_effet": notice.effective_date.isoformat()}
    _audit(settings, "avis-annonce", commune=args.producteur, target=slug, details=details)
    print(
        f"Avis de changement enregistré pour « {slug} » : la structure v{notice.to_version} "
        f"s'appliquera à partir du {notice.effective_date:%d/%m/%Y}. D'ici là, soumettez les "
        f"données dans la structure actuelle (v{notice.from_version}) ; à partir de cette date, "
        "soumettez-les dans la nouvelle structure."
    )
    return 0


def _audit(settings: Settings, action: str, **entry: Any) -> None:
    """Write an action of the operator (the person running this command) to the audit log."""
    from catalog.accounts import audit, operator
    from pipelines.submission import open_settings_store

    audit(open_settings_store(settings), operator(), action, **entry)


def _end_portal_sessions(settings: Settings) -> None:
    """After a restore: the portal's sessions of the backup may have been signed out since,
    none is kept (everyone signs in again)."""
    from pipelines.submission import open_settings_store

    open_settings_store(settings).purge_sessions(datetime.max)


def _check_producer(store: Any, slug: str, producer: str) -> None:
    from core.problems import reject

    dataset = store.get_dataset(slug)
    if dataset is not None and dataset.producer != producer:
        raise reject(
            "avis", "jeu-d-un-autre-producteur", f"« {slug} » appartient à une autre commune."
        )


def _effective_date(text: str) -> date:
    from core.problems import reject

    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise reject(
            "avis", "date-invalide", f"Date d'effet « {text} » illisible : attendu AAAA-MM-JJ."
        ) from error


def _load_mapping(path: Path | None) -> dict[str, Any] | None:
    import yaml

    from core.problems import reject

    if path is None:
        return None
    try:
        mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise reject(
            "avis", "correspondance-illisible", f"Correspondance {path.name} illisible : {error}"
        ) from error
    if mapping is not None and not isinstance(mapping, dict):
        raise reject(
            "avis",
            "correspondance-invalide",
            "La correspondance associe à chaque colonne de l'ancienne structure une règle "
            "(colonne, formule ou valeur).",
        )
    return mapping or None


def _messages(error: Any) -> str:
    return " ".join(problem.message for problem in error.report.problems)


def _governance(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import tasks

    print(tasks.apply_lifecycle_rules())
    sent = tasks.notify()
    webhooks = sent.get("webhooks", {})
    print(
        f"Courriels envoyés : {sent.get('mails_sent', 0)} (en attente : "
        f"{sent.get('mails_pending', 0)}) ; webhooks livrés : {webhooks.get('delivered', 0)}, "
        f"à réessayer : {webhooks.get('retry_scheduled', 0)}, abandonnés : "
        f"{webhooks.get('failed', 0)}"
    )
    return 0


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.backup import BackupError, backup

    started = time.monotonic()
    try:
        result = backup(settings, args.destination)
    except BackupError as error:
        print(f"Sauvegarde impossible : {error}", file=sys.stderr)
        return 1
    _audit(settings, "sauvegarde", target=result.path.name, details={"fichiers": result.files})
    print(
        f"Sauvegarde écrite : {result.path} ({result.files} fichiers, "
        f"{result.size / 1e6:.1f} Mo, catalogue {result.backend}, "
        f"{time.monotonic() - started:.1f} s). Elle contient les clés de pseudonymisation : "
        "conservez-la en lieu sûr."
    )
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.backup import BackupError, restore

    started = time.monotonic()
    try:
        result = restore(settings, args.archive, force=args.force)
    except BackupError as error:
        print(str(error), file=sys.stderr)
        return 1
    _end_portal_sessions(settings)
    _audit(
        settings,
        "restauration",
        target=args.archive.name,
        details={"sauvegarde_du": result.created_at, "fichiers": result.files},
    )
    print(
        f"Sauvegarde du {result.created_at} restaurée dans {settings.data_dir} "
        f"({result.files} fichiers, catalogue {result.backend}, "
        f"{time.monotonic() - started:.1f} s). Les formats dérivés et les services OGC "
        "seront reconstruits à la demande."
    )
    return 0


# --- accounts, audit log, uploads (issue #9) ---------------------------------------------------


def _add_account_parsers(commands: Any) -> None:
    tokens = commands.add_parser(
        "jetons",
        help="jetons d'API des agents des communes et de l'équipe data (créer, lister, révoquer)",
    )
    actions = tokens.add_subparsers(dest="action", required=True)
    create = actions.add_parser("creer", help="créer un jeton (affiché une seule fois)")
    owner = create.add_mutually_exclusive_group(required=True)
    owner.add_argument("--producteur", help="commune de l'agent (ex. ecully)")
    owner.add_argument("--equipe-data", action="store_true", help="jeton de l'équipe data")
    create.add_argument("--agent", required=True, help="adresse électronique de l'agent")
    create.add_argument(
        "--expire-dans", type=int, default=90, metavar="JOURS", help="validité (défaut : 90)"
    )
    listing = actions.add_parser("lister", help="lister les jetons (jamais leur secret)")
    listing.add_argument("--producteur", help="jetons d'une commune seulement")
    listing.add_argument("--json", action="store_true", help="liste en JSON")
    revoke = actions.add_parser("revoquer", help="révoquer un jeton : il cesse aussitôt de servir")
    revoke.add_argument("id", help="identifiant du jeton (12 caractères, voir « lister »)")

    journal = commands.add_parser("journal", help="journal d'audit : qui a fait quoi, quand")
    journal.add_argument("--commune", help="actions concernant une commune")
    journal.add_argument("--action", help="une action (ex. depot-recu, jeton-cree)")
    journal.add_argument("--depuis", help="date de début, AAAA-MM-JJ")
    journal.add_argument("--limite", type=int, default=100, help="nombre d'entrées (défaut 100)")
    journal.add_argument("--json", action="store_true", help="entrées en JSON")

    upload = commands.add_parser(
        "deposer", help="déposer un jeu de données sur la plateforme par l'API (reprise auto.)"
    )
    upload.add_argument("fichier", type=Path, help="fichier de données (CSV, XLSX, GeoJSON, …)")
    upload.add_argument("--metadonnees", required=True, type=Path, help="fichier metadata.yaml")
    upload.add_argument("--schema", type=Path, help="Table Schema déclaré dans metadata.yaml")
    upload.add_argument("--jeu", help="identifiant du jeu, si metadata.yaml n'en donne pas")
    upload.add_argument("--url", required=True, help="adresse de la plateforme (http://…)")
    upload.add_argument(
        "--jeton", help="jeton d'API (sinon la variable OPENDATA_JETON, préférable)"
    )
    upload.add_argument(
        "--producteur", help="commune (par défaut celle du jeton ; requis pour l'équipe data)"
    )
    upload.add_argument(
        "--taille-morceau",
        type=int,
        default=8 * 2**20,
        metavar="OCTETS",
        help="au-delà, envoi par morceaux avec reprise (défaut : 8 Mio)",
    )
    upload.add_argument(
        "--essais", type=int, default=5, help="essais par morceau avant d'abandonner (défaut 5)"
    )


def _add_schemas_parser(commands: Any) -> None:
    schemas = commands.add_parser(
        "schemas",
        help="registre local des schémas nationaux de schema.data.gouv.fr (rafraîchir, lister)",
    )
    actions = schemas.add_subparsers(dest="action", required=True)
    refresh = actions.add_parser(
        "rafraichir",
        help="télécharger le catalogue et ses Table Schemas (le registre reste intact en cas "
        "d'échec)",
    )
    refresh.add_argument(
        "--catalogue",
        metavar="URL",
        help="catalogue à lire (défaut : OPENDATA_NATIONAL_SCHEMAS_CATALOGUE, sinon "
        "https://schema.data.gouv.fr/schemas.json) ; seul son hôte est contacté",
    )
    listing = actions.add_parser(
        "lister", aliases=["liste"], help="schémas du registre, leurs versions"
    )
    listing.add_argument("--json", action="store_true", help="liste en JSON")


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import national_schemas

    registry = settings.national_schemas_dir
    if args.action in ("lister", "liste"):
        return _list_schemas(national_schemas.listing(registry), args.json)
    catalogue = args.catalogue or settings.national_schemas_catalogue
    try:
        refreshed = national_schemas.refresh(catalogue, registry)
    except national_schemas.RefreshError as error:
        print(f"Registre inchangé : {error}", file=sys.stderr)
        return 1
    for warning in refreshed.warnings:
        print(f"Attention : {warning}", file=sys.stderr)
    print(
        f"Registre des schémas nationaux rafraîchi depuis {catalogue} : "
        f"{refreshed.schemas} schémas, {refreshed.versions} versions ({registry})."
    )
    return 0


def _list_schemas(schemas: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(schemas, ensure_ascii=False, indent=2))
        return 0
    if not schemas:
        print("Registre vide : remplissez-le avec « opendata schemas rafraichir ».")
    for schema in schemas:
        print(
            f"{schema['nom']}  {schema['titre']}  versions : {', '.join(schema['versions'])} "
            f"(plus récente : {schema['derniere']})"
        )
    return 0


def _tokens(args: argparse.Namespace, settings: Settings) -> int:
    from catalog import accounts
    from pipelines.submission import open_settings_store

    store = open_settings_store(settings)
    actions = {"creer": _create_token, "lister": _list_tokens, "revoquer": _revoke_token}
    try:
        return actions[args.action](store, args)
    except accounts.AccountError as error:
        print(str(error), file=sys.stderr)
        return 1


def _list_tokens(store: Any, args: argparse.Namespace) -> int:
    from catalog import accounts

    records = [accounts.token_json(t) for t in store.tokens(args.producteur)]
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=2))
        return 0
    if not records:
        print("Aucun jeton.")
    for t in records:
        used = _day(t["dernier_usage"]) if t["dernier_usage"] else "jamais"
        print(
            f"{t['id']}  {t['etat_libelle']:8}  {t['commune'] or 'équipe data':16}  "
            f"{t['agent']:32}  créé le {_day(t['cree_le'])}, expire le {_day(t['expire_le'])}"
            f", dernier usage : {used}"
        )
    return 0


def _revoke_token(store: Any, args: argparse.Namespace) -> int:
    from catalog import accounts

    record = accounts.revoke_token(store, args.id)
    print(f"Jeton {record.id} ({record.agent}) révoqué : il ne permet plus rien.")
    return 0


def _create_token(store: Any, args: argparse.Namespace) -> int:
    from catalog import accounts

    kind = "equipe-data" if args.equipe_data else "producteur"
    issued = accounts.create_token(store, kind, args.agent, args.producteur, args.expire_dans)
    record = issued.record
    who = f"de la commune « {record.commune} »" if record.commune else "de l'équipe data"
    print(
        f"Jeton {record.id} créé pour {record.agent}, agent {who}, valable jusqu'au "
        f"{record.expires_at:%d/%m/%Y}.\n\n{issued.token}\n\nIl n'est affiché qu'une fois : "
        "remettez-le à l'agent par un canal sûr. La plateforme n'en garde qu'une empreinte."
    )
    return 0


def _day(iso: str) -> str:
    return f"{datetime.fromisoformat(iso):%d/%m/%Y}"


def _journal(args: argparse.Namespace, settings: Settings) -> int:
    from catalog import accounts
    from pipelines.submission import open_settings_store

    if args.action is not None and args.action not in accounts.AUDIT_ACTIONS:
        print(
            f"Action « {args.action} » inconnue : {', '.join(accounts.AUDIT_ACTIONS)}.",
            file=sys.stderr,
        )
        return 1
    try:
        since = date.fromisoformat(args.depuis) if args.depuis else None
    except ValueError:
        print(f"Date « {args.depuis} » illisible : attendu AAAA-MM-JJ.", file=sys.stderr)
        return 1
    store = open_settings_store(settings)
    entries = store.audit_log(
        args.commune, accounts.start_of(since), args.action, max(1, args.limite)
    )
    if args.json:
        print(json.dumps([accounts.audit_json(e) for e in entries], ensure_ascii=False, indent=2))
        return 0
    if not entries:
        print("Aucune entrée.")
    for entry in entries:
        # names and paths come from callers and identity providers: escaped, never obeyed
        shown = accounts.audit_json(entry)
        about = " ".join(x for x in (shown["commune"], shown["objet"]) if x)
        refusal = " ".join(
            f"{key}={shown['details'][key]}"
            for key in ("motif", "client", "chemin", "refus")
            if key in shown["details"]
        )
        line = f"{entry.at:%d/%m/%Y %H:%M:%S}  {shown['qui']:40}  {shown['action']:24}  {about}"
        print(f"{line}  {refusal}".rstrip() if refusal else line)
    return 0


def _deposit(args: argparse.Namespace, settings: Settings) -> int:
    import requests

    from pipelines import upload_client as client

    token = args.jeton or os.environ.get("OPENDATA_JETON")
    if not token:
        print("Jeton requis : --jeton, ou la variable OPENDATA_JETON.", file=sys.stderr)
        return 2
    base = args.url.rstrip("/")
    for path in (args.fichier, args.metadonnees, args.schema):
        if path is not None and not path.is_file():
            print(f"Fichier introuvable : {path}", file=sys.stderr)
            return 2
    try:
        commune = args.producteur or client.whose_token(base, token).get("commune")
        if not commune:
            print("Jeton de l'équipe data : précisez la commune (--producteur).", file=sys.stderr)
            return 2
        upload = client.Upload(
            base_url=base,
            token=token,
            commune=commune,
            data=args.fichier,
            metadata=args.metadonnees,
            schema=args.schema,
            identifier=args.jeu,
            chunk_size=max(1024, args.taille_morceau),
            attempts=max(1, args.essais),
        )
        answer = client.deposit(upload, lambda line: print(line, flush=True))
    except client.UploadError as error:
        print(str(error), file=sys.stderr)
        return 1
    except requests.RequestException as error:
        print(f"Plateforme injoignable ({base}) : {error}", file=sys.stderr)
        return 1
    print(
        f"Dépôt {answer['depot']} reçu pour « {answer['jeu_de_donnees']} » "
        f"({answer['taille']} octets, SHA-256 {answer['sha256']}). Il sera traité par la "
        f"chaîne de publication ; état : {base}{answer['url_statut']}"
    )
    expected = answer.get("traitement_prevu") or {}
    if expected.get("libelle"):
        print(expected["libelle"])
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from catalog.web.app import create_app_from_env

    public_url = _default_public_url(args.host, args.port)
    print(f"Catalogue servi sur {public_url}/  (Ctrl+C pour arrêter)", flush=True)
    uvicorn_options = serve_options(args.host, args.port)
    workers = getattr(args, "workers", 1)
    if workers > 1:  # each worker process builds the app from the same environment
        uvicorn.run(
            "catalog.web.app:create_app_from_env", factory=True, workers=workers, **uvicorn_options
        )
        return 0
    uvicorn.run(create_app_from_env(), **uvicorn_options)
    return 0


def _default_public_url(host: str, port: int) -> str:
    """The catalog's public URL: OPENDATA_PUBLIC_URL, else (set so that every worker
    inherits it) the address served. Links never follow the requests' Host (issue #16)."""
    if os.environ.get(PUBLIC_URL_VARIABLE, "").strip():
        return configured_public_url()
    if host in {"", "0.0.0.0", "::"}:  # every interface: links on the loopback one
        print(
            f"{PUBLIC_URL_VARIABLE} non définie : les liens absolus du catalogue partiront de "
            f"http://127.0.0.1:{port} ; définissez l'adresse publique du catalogue.",
            file=sys.stderr,
        )
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address in brackets
    os.environ[PUBLIC_URL_VARIABLE] = f"http://{shown}:{port}"
    return configured_public_url()


def serve_options(host: str, port: int) -> dict[str, Any]:
    """uvicorn's options. The client address the rate limiter keys on comes from
    X-Forwarded-For (and the scheme from X-Forwarded-Proto) only for connections from
    OPENDATA_TRUSTED_PROXIES, the same proxies catalog.security believes: none by default,
    not even loopback (uvicorn's own default), or any local process could pose as any
    number of clients."""
    trusted = os.environ.get("OPENDATA_TRUSTED_PROXIES", "").strip()
    return {
        "host": host,
        "port": port,
        "log_level": "warning",
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or [],
    }


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from opendata import demo

    return demo.run(
        settings,
        host=args.host,
        port=args.port,
        airflow_port=args.port_airflow,
        samples=None if args.sans_exemples else demo.SAMPLES_INBOX,
        serve=not args.sans_serveur,
    )


if __name__ == "__main__":
    sys.exit(main())
