"""Every `OPENDATA_*` environment variable the platform reads, in one table: its default and
what it does, in French. `docs/variables.md` is generated from it
(`python -m core.variables > docs/variables.md`); tests/test_variables.py checks that the
table, the code and docker-compose.yml agree. A name ending in `<NOM>` is a family: one
variable per commune or per identity provider."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as documented; "" when unset means off or absent
    role: str  # French, one sentence
    read_by: str  # catalogue, pipeline, Airflow, ligne de commande, tous


VARIABLES = (
    # where things live (core.settings)
    Variable("OPENDATA_DATA_DIR", "var/data", "Données de la plateforme : catalogue SQLite, fichiers publiés, archives, services.", "tous"),
    Variable("OPENDATA_INBOX_DIR", "var/inbox", "Dossiers de dépôt des communes (un sous-dossier par commune).", "tous"),
    Variable("OPENDATA_STORE_URL", "sqlite:///<OPENDATA_DATA_DIR>/catalog.db", "Base du catalogue : SQLite (embarqué) ou postgresql+psycopg://… (PostGIS, production).", "tous"),
    Variable("OPENDATA_LICENSES_DIR", "licenses", "Dossier des licences acceptées (un fichier par licence, avec ses obligations).", "tous"),
    Variable("OPENDATA_PRODUCERS_FILE", "config/producers.yaml", "Communes productrices : identifiant, nom, adresse de notification.", "tous"),
    Variable("OPENDATA_SECRETS_FILE", "var/secrets/pseudonymes.yaml", "Clés de pseudonymisation, jamais à côté des données (mode 0600).", "pipeline"),
    Variable("OPENDATA_PSEUDONYM_KEY_<NOM>", "", "Clé de pseudonymisation d'une commune, à la place du fichier de secrets.", "pipeline"),
    Variable("OPENDATA_RETENTION_DONNEES_BRUTES_JOURS", "30", "Jours de conservation des dépôts bruts contenant des données personnelles.", "pipeline"),
    Variable("OPENDATA_NATIONAL_SCHEMAS_DIR", "<OPENDATA_DATA_DIR>/schemas-nationaux", "Registre local des schémas nationaux (lu hors ligne).", "tous"),
    Variable("OPENDATA_NATIONAL_SCHEMAS_CATALOGUE", "https://schema.data.gouv.fr/schemas.json", "Catalogue lu par « opendata schemas rafraichir » (seul son hôte est contacté).", "ligne de commande"),
    Variable("OPENDATA_PUBLIC_URL", "http://127.0.0.1:8000", "Adresse publique du catalogue, origine de tous les liens absolus (jamais l'en-tête Host).", "tous"),
    Variable("OPENDATA_NOW", "", "Date ou instant ISO 8601 imposé à l'horloge de la plateforme (essais, rejeu).", "tous"),
    # the pipeline and Airflow
    Variable("OPENDATA_POOL_SLOTS", "2", "Places de chaque pool Airflow de commune (dépôts traités en même temps).", "Airflow"),
    Variable("OPENDATA_TASK_RETRIES", "2", "Nouveaux essais d'une tâche Airflow en échec.", "Airflow"),
    Variable("OPENDATA_DAGRUN_DEADLINE_MINUTES", "120", "Durée au-delà de laquelle un traitement de commune est signalé en retard.", "Airflow"),
    Variable("OPENDATA_AIRFLOW_URL", "", "Adresse de l'interface Airflow, donnée dans les alertes de retard et liée depuis la vue santé (sans elle, la vue santé n'affiche pas les exécutions).", "Airflow, catalogue"),
    Variable("OPENDATA_AIRFLOW_API_URL", "<OPENDATA_AIRFLOW_URL>", "Adresse où le catalogue joint l'API REST d'Airflow (vue santé : exécutions, relance).", "catalogue"),
    Variable("OPENDATA_AIRFLOW_USER", "", "Utilisateur Airflow du catalogue (jeton JWT obtenu par /auth/token) ; vide : Airflow sans authentification.", "catalogue"),
    Variable("OPENDATA_AIRFLOW_PASSWORD", "", "Mot de passe de cet utilisateur Airflow.", "catalogue"),
    Variable("OPENDATA_PLANIFICATION", "", "Remplace la planification de toutes les communes (cron, ou secondes : « 20s ») ; « opendata demo » la met à 20s.", "Airflow"),
    Variable("OPENDATA_DEMO_RUN", "", "Marque posée par « opendata demo » dans l'environnement de ses processus, pour tous les arrêter ; à ne pas définir.", "démonstration"),
    Variable("OPENDATA_SOURCES_ALLOW", "", "Hôtes, adresses ou réseaux internes que le moissonnage des sources peut joindre.", "pipeline"),
    Variable("OPENDATA_SOURCES_RETRY_DELAY", "", "Délai de base (secondes) entre deux essais d'une source en échec.", "pipeline"),
    Variable("OPENDATA_WEBHOOKS_INTERNAL", "", "« 1 » : les webhooks peuvent viser des adresses internes.", "pipeline"),
    Variable("OPENDATA_SMTP_HOST", "localhost", "Relais SMTP des courriels aux communes et à l'équipe data.", "pipeline"),
    Variable("OPENDATA_SMTP_PORT", "25", "Port du relais SMTP.", "pipeline"),
    Variable("OPENDATA_SMTP_FROM", "donnees-ouvertes@example.org", "Expéditeur des courriels.", "pipeline"),
    Variable("OPENDATA_DATA_TEAM_EMAIL", "equipe-data@example.org", "Équipe data : en copie de chaque avis, destinataire des réponses.", "pipeline"),
    # the catalog service
    Variable("OPENDATA_UPLOAD_MAX_BYTES", "104857600", "Taille maximale d'une requête de dépôt (au-delà : envoi par morceaux).", "catalogue"),
    Variable("OPENDATA_UPLOAD_MAX_FILE_BYTES", "21474836480", "Taille maximale d'un fichier déposé.", "catalogue"),
    Variable("OPENDATA_SEARCH_CACHE", "256", "Réponses de recherche gardées par processus, chacune valable jusqu'au prochain changement d'un jeu (0 : aucune).", "catalogue"),
    Variable("OPENDATA_RATE_LIMIT", "50/second", "Limite des appels anonymes par adresse (« off » : aucune limite).", "catalogue"),
    Variable("OPENDATA_RATE_LIMIT_AUTHENTICATED", "100/second", "Limite des appels authentifiés.", "catalogue"),
    Variable("OPENDATA_RATE_LIMIT_STORAGE", "memory://", "Compteurs de la limite : mémoire du processus ou redis://… (partagés).", "catalogue"),
    Variable("OPENDATA_RATE_LIMIT_EXEMPT", "127.0.0.0/8,::1", "Réseaux jamais limités.", "catalogue"),
    Variable("OPENDATA_TRUSTED_PROXIES", "", "Mandataires (nginx) dont X-Forwarded-For est cru.", "catalogue"),
    Variable("OPENDATA_EMBED_FRAME_ANCESTORS", "*", "Sites autorisés à intégrer les pages /integration/<commune>.", "catalogue"),
    Variable("OPENDATA_MAP_BACKGROUND", "", "Fond de plan de la carte du portail : gabarit de tuiles XYZ ({z}/{x}/{y}, un WMTS GoogleMapsCompatible s'écrit ainsi) ou URL de base d'un WMS (https://download.data.grandlyon.com/wms/grandlyon) ; vide : contours des communes livrés avec le catalogue.", "catalogue"),
    Variable("OPENDATA_MAP_BACKGROUND_LAYER", "", "Couche(s) du WMS du fond de plan (son nom dans le GetCapabilities) ; vide pour un gabarit XYZ.", "catalogue"),
    Variable("OPENDATA_MAP_BACKGROUND_ATTRIBUTION", "", "Mention du fond de plan affichée sur la carte (texte), par exemple « Plan : Métropole de Lyon ».", "catalogue"),
    Variable("OPENDATA_PG_POOL_SIZE", "10", "Connexions PostGIS de l'API OGC par processus.", "catalogue"),
    Variable("OPENDATA_CSW_CONFIG", "<OPENDATA_DATA_DIR>/services/csw/pycsw.cfg", "Configuration de pycsw (CSW) servie en production.", "catalogue"),
    Variable("OPENDATA_PYCSW_VENV", "var/pycsw-venv", "Environnement Python de pycsw.", "catalogue"),
    Variable("OPENDATA_OGC_RESIDENT", "1", "« 0 » : MapServer et pycsw lancés à chaque requête (CGI) plutôt que résidents (FastCGI, serveur WSGI).", "catalogue"),
    Variable("OPENDATA_OGC_PROCESSES", "2", "Processus résidents de MapServer et de pycsw par audience servie (requêtes traitées en même temps).", "catalogue"),
    Variable("OPENDATA_SESSION_SECRET", "", "Secret de signature des sessions du portail (connexion activée s'il est donné).", "catalogue"),
    Variable("OPENDATA_SESSION_HOURS", "8", "Durée d'une session du portail, en heures.", "catalogue"),
    Variable("OPENDATA_SESSION_SECURE", "1", "« 0 » : cookie de session sans Secure (HTTP en local seulement).", "catalogue"),
    Variable("OPENDATA_OIDC_ISSUERS", "", "Fournisseurs d'identité OpenID Connect acceptés (ProConnect, GrandLyon Connect…).", "catalogue"),
    Variable("OPENDATA_OIDC_AUDIENCE", "", "Audiences acceptées des jetons (par défaut : les identifiants clients).", "catalogue"),
    Variable("OPENDATA_OIDC_ALGORITHMS", "RS256,ES256,PS256", "Algorithmes de signature acceptés.", "catalogue"),
    Variable("OPENDATA_OIDC_LEEWAY", "30", "Décalage d'horloge toléré, en secondes.", "catalogue"),
    Variable("OPENDATA_OIDC_AGENT_CLAIM", "", "Revendication qui désigne un agent public.", "catalogue"),
    Variable("OPENDATA_OIDC_AGENT_VALUE", "", "Valeur de cette revendication pour un agent.", "catalogue"),
    Variable("OPENDATA_OIDC_AGENT_ISSUERS", "", "Fournisseurs dont tout utilisateur est un agent public.", "catalogue"),
    Variable("OPENDATA_OIDC_CLIENT_ID_<NOM>", "", "Identifiant client du portail chez un fournisseur.", "catalogue"),
    Variable("OPENDATA_OIDC_CLIENT_SECRET_<NOM>", "", "Secret client du portail chez un fournisseur.", "catalogue"),
    Variable("OPENDATA_OIDC_SCOPES_<NOM>", "openid email profile", "Portées demandées à un fournisseur.", "catalogue"),
    Variable("OPENDATA_OIDC_LABEL_<NOM>", "", "Libellé du bouton de connexion d'un fournisseur.", "catalogue"),
    Variable("OPENDATA_HABILITATIONS_FILE", "config/habilitations.yaml", "Qui, connecté au portail, agit pour une commune ou pour l'équipe data (adresses, domaines, SIRET).", "catalogue"),
    # the command line
    Variable("OPENDATA_JETON", "", "Jeton d'API d'« opendata deposer » (préférable à --jeton).", "ligne de commande"),
)  # fmt: skip


def markdown() -> str:
    lines = [
        "# Variables d'environnement",
        "",
        "Généré depuis `core/variables.py` (`python -m core.variables > docs/variables.md`) ;",
        "`tests/test_variables.py` vérifie que ce tableau, le code et `docker-compose.yml`",
        "concordent. `<NOM>` : une variable par commune ou par fournisseur d'identité.",
        "",
        "| variable | défaut | rôle | lue par |",
        "|---|---|---|---|",
    ]
    for v in VARIABLES:
        default = f"`{v.default}`" if v.default else "—"
        lines.append(f"| `{v.name}` | {default} | {v.role} | {v.read_by} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
