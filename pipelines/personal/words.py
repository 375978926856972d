"""Words the detectors share: accent-free forms, column-name tokens, place and title words."""

from __future__ import annotations

import re
import unicodedata


def plain(text: str) -> str:
    """Lower case without accents: how names, headers and word lists are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def column_tokens(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", plain(name)).strip("_")


DBF_NAME_LENGTH = 10  # a Shapefile's field names are cut there ("nom_realisateur" → "nom_realis")


def completed_tokens(name: str, vocabulary: frozenset[str]) -> str:
    """The column's tokens, with a last word the Shapefile format cut ("nom_statio") completed
    when exactly one word of `vocabulary` starts with it: the header then reads as written."""
    tokens = column_tokens(name)
    if len(name) != DBF_NAME_LENGTH:
        return tokens
    head, _, last = tokens.rpartition("_")
    if len(last) < 3 or last in vocabulary:
        return tokens
    candidates = [word for word in vocabulary if word.startswith(last)]
    if len(candidates) != 1:
        return tokens
    return f"{head}_{candidates[0]}" if head else candidates[0]


def hinted(tokens: str, hints: tuple[str, ...] | frozenset[str]) -> bool:
    """Whether a column's tokens (`nom_de_famille`) carry one of `hints` as a word or prefix."""
    parts = tokens.split("_")
    return any(h == tokens or h in parts or tokens.startswith(h + "_") for h in hints)


STREET_WORDS = (
    "rue|avenue|av|boulevard|bd|place|chemin|allee|allée|impasse|quai|route|cours|square|"
    "montee|montée|passage|voie|sentier|cite|cité|residence|résidence|lotissement|hameau|"
    "promenade|esplanade|rond-point|parvis|traverse|ruelle|faubourg"
)

# A person's name that follows one of these words (anywhere before it in a label, or close
# before it in a sentence) names a place, a facility, a street or an organisation.
PLACE_WORDS = frozenset(
    """
    rue avenue av ave boulevard bd bld blvd place pl chemin ch che allee all impasse imp quai
    route rte cours crs square sq montee mte passage pass voie sentier cite residence res
    lotissement hameau promenade esplanade rond-point parvis traverse ruelle faubourg fg
    pont port porte tunnel gare station arret parking parc jardin jardins bois foret
    complexe stade gymnase salle centre maison espace piscine patinoire boulodrome
    terrain terrains plateau skatepark dojo tennis halle halles marche city-stade
    ecole ecoles groupe scolaire college lycee universite faculte campus creche
    mediatheque bibliotheque ludotheque musee theatre cinema auditorium conservatoire
    opera galerie chapelle eglise basilique cathedrale temple mosquee synagogue
    hopital clinique ehpad foyer institut fondation hotel mairie prefecture
    quartier secteur zone zac ilot lieu-dit domaine chateau ferme moulin clos mas
    fontaine statue monument stele plaque buste memorial cimetiere
    association club amicale comite federation union societe entreprise cabinet
    prix trophee concours festival rallye
    saint sainte st ste
    """.split()  # noqa: SIM905 (a word list reads best as words)
)
# Words that may stand between a place word and the name it carries ("Complexe sportif
# du Président Jean …", "Place du Docteur …", "Salle multisports …").
TITLE_WORDS = frozenset(
    """
    de du des d la le les l a au aux et en sur sous
    president presidente docteur dr doct professeur pr prof general gal marechal mal
    colonel capitaine commandant lieutenant amiral abbe pere mere soeur frere cardinal
    eveque pasteur rabbin imam maitre me monseigneur mgr sergent adjudant
    sportif sportive municipal municipale nautique multisports omnisports communal
    communale intercommunal intercommunale culturel culturelle social sociale
    polyvalent polyvalente associatif associative public publique privee prive
    primaire maternelle elementaire petit petite grand grande vieux vieille nouveau
    nouvelle haut haute bas basse nord sud est ouest
    """.split()  # noqa: SIM905 (a word list reads best as words)
)
# Civilities only people carry; titles (Docteur, Maître) also name streets and stations.
PERSONAL_CIVILITIES = r"M\.|Mme|Mmes|Mlle|Mr|MM\.|Monsieur|Madame|Mademoiselle|Messieurs"
CIVILITIES = PERSONAL_CIVILITIES + r"|Dr|Docteur|Maître|Me"
