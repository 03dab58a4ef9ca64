"""Seeded generators of page text for the synthetic crawl (`curation.sample_crawl`).

The English generator fills sentence templates from a few hundred words (general words plus
one word list per topic), so articles read as grammatical prose that passes Gopher's
stop-word, word-length and repetition rules; the other generators make text that later
stages must reject or treat specially (spam, lists, foreign languages, PII).
Everything takes a `random.Random`, so the same seed always gives the same text.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

# ----------------------------------------------------------------------------- lexicon
# Nouns are "singular" or "singular|plural" (irregular); verbs "base" or "base|past".


def word_list(text: str) -> list[str]:
    """A word list written as one whitespace-separated string (compact to read and edit)."""
    return text.split()


GENERAL_NOUNS = word_list(
    """idea result method question problem change system example group process study
part area effect level reason detail approach experience decision region community family city
village market neighbour student teacher visitor expert report story journey project plan choice
habit rule goal pattern tool source morning evening weekend century decade moment view step risk
benefit cost chance difference surface material model design version value standard balance
routine challenge solution lesson mistake tradition culture language museum library river
mountain coast forest street building table window road bridge festival meeting conversation
interview article book map photograph letter guide list friend neighbourhood season country
person|people child|children shelf|shelves"""
)

GENERAL_ADJECTIVES = word_list(
    """important common simple careful useful popular local recent small large early
late new old different similar clear strong long short modern traditional practical surprising
interesting difficult easy quiet busy bright dark warm cold basic regular wide narrow rare famous
familiar typical natural public private central original effective gentle steady obvious complex
visible honest curious generous patient unusual"""
)

GENERAL_VERBS = word_list(
    """make|made take|took give|gave find|found keep|kept show bring|brought build|built
leave|left hold|held choose|chose describe explain improve support change create follow include
offer provide require suggest reveal produce reduce increase share compare consider develop
discuss encourage examine prepare protect replace study use help need watch learn remember notice
collect combine design present publish check organise plan|planned test admire enjoy
review"""
)

ADVERBS = word_list(
    """often usually rarely quickly slowly carefully easily clearly gradually quietly recently
finally simply largely mostly sometimes naturally steadily widely openly"""
)
FREQUENCY_ADVERBS = word_list("often usually rarely sometimes always seldom")
DEGREE_ADVERBS = ["very", "quite", "rather", "surprisingly", "not always", "usually"]
PREPOSITIONS = word_list(
    """in on with near for during after before across through without around behind
beyond under over inside"""
)
CONNECTIVES = """However, | In addition, | For example, | At the same time, | As a result, |
In practice, | Over time, | On the other hand, | Still, | Of course, | In many cases, | Later,
| Meanwhile, | In the end,""".replace("\n", " ").split(" | ")
SEASONS = ["spring", "summer", "autumn", "winter"]
NUMBERS = word_list("two three four five six seven eight nine ten twelve fifteen twenty")
PLURAL_SUBJECTS = word_list(
    """researchers visitors residents experts students teachers families farmers
critics professionals beginners volunteers historians engineers parents travellers cooks
readers"""
)
SINGULAR_SUBJECTS = [
    "the author",
    "my neighbour",
    "a friend of mine",
    "the guide",
    "the committee",
    "one study",
    "the report",
    "our team",
    "the local council",
    "an old teacher",
    "the editor",
]


@dataclass(frozen=True)
class Topic:
    """Words that make an article sound like it is about one subject."""

    name: str
    nouns: list[str]
    adjectives: list[str]
    verbs: list[str]


def _topic(name: str, nouns: str, adjectives: str, verbs: str) -> Topic:
    return Topic(name, word_list(nouns), word_list(adjectives), word_list(verbs))


TOPICS = [
    _topic(
        "science",
        """atom cell molecule experiment hypothesis|hypotheses laboratory telescope galaxy planet
        particle enzyme protein gene fossil sample measurement theory microscope orbit crystal
        reaction species|species ecosystem satellite magnet electron volcano comet
        bacterium|bacteria""",
        "microscopic chemical physical stable magnetic distant ancient genetic measurable cosmic",
        "measure observe analyse detect predict test confirm record classify absorb",
    ),
    _topic(
        "cooking",
        """recipe sauce onion garlic tomato|tomatoes flour butter oven pan dough spice herb lemon
        soup bread pastry salad ingredient knife|knives chef dish broth vinegar noodle pepper
        cheese bean rice cake potato|potatoes""",
        "crispy tender savoury sweet fresh roasted creamy tangy golden homemade spicy",
        "bake simmer chop|chopped stir|stirred season roast whisk knead slice taste",
    ),
    _topic(
        "travel",
        """passport hotel airport train ferry beach harbour cathedral hostel itinerary suitcase
        guidebook valley trail coastline island border station ticket cafe castle tourist
        landscape fjord canyon lighthouse""",
        "scenic remote crowded historic coastal affordable charming colourful mountainous sunny",
        "explore visit book pack wander cross hike discover photograph reach",
    ),
    _topic(
        "sports",
        """team coach player match league stadium tournament athlete referee championship racket
        marathon sprint defence striker goalkeeper fan victory medal pitch squad trophy injury
        tactic rival score""",
        "competitive athletic defensive decisive professional talented unbeaten tactical young",
        "win|won defend score train coach lose|lost attack celebrate lead|led tackle",
    ),
    _topic(
        "history",
        """empire king queen treaty battle manuscript dynasty revolution monastery merchant
        colony archive chronicle parliament emperor soldier war peasant republic ruin artifact
        scholar kingdom navy reform rebellion charter monument""",
        "medieval royal colonial imperial forgotten revolutionary feudal classical rural",
        "conquer rule found sign defeat establish govern rebuild|rebuilt document abolish",
    ),
    _topic(
        "technology",
        """software computer network server database algorithm device battery processor sensor
        application browser interface program engineer developer keyboard screen cable robot
        chip platform update laptop protocol memory storage signal""",
        "digital wireless portable reliable efficient automated secure powerful compact",
        "install compile upgrade connect process store deploy debug|debugged encrypt download",
    ),
    _topic(
        "health",
        """doctor nurse patient clinic hospital vitamin diet exercise sleep heart muscle symptom
        treatment vaccine infection therapy medicine stress blood bone nutrient fever checkup
        posture lung skin""",
        "healthy chronic mild balanced physical mental daily preventive nutritious",
        "recover prevent treat stretch relieve strengthen monitor improve reduce heal",
    ),
    _topic(
        "gardening",
        """soil seed compost shrub hedge bulb root leaf|leaves bloom greenhouse spade weed mulch
        orchard tree vine flowerbed insect bee seedling lawn pot fence path rose""",
        "green leafy fertile shady hardy flowering perennial dry damp wild",
        "plant|planted water prune sow dig|dug grow|grew harvest weed mulch fertilise",
    ),
    _topic(
        "finance",
        """budget loan saving interest investor bank tax income pension share fund debt mortgage
        account price inflation salary expense profit wallet receipt bill insurance""",
        "financial monthly annual cautious stable expensive cheap fixed variable modest",
        "save invest borrow spend|spent earn pay|paid calculate lend|lent budget afford",
    ),
    _topic(
        "music",
        """guitar piano song melody rhythm choir concert album orchestra drummer singer chord
        lyric band violin composer stage audience tempo rehearsal festival instrument""",
        "musical acoustic classical loud soft melodic rhythmic live electric harmonic",
        "sing|sang play perform compose record rehearse tune arrange conduct improvise",
    ),
]

SUBHEADINGS = [
    "Background",
    "What we found",
    "A closer look",
    "Practical tips",
    "Looking ahead",
    "Why it matters",
    "Common questions",
    "First impressions",
    "The details",
    "What comes next",
]

_VOWEL_SOUND_EXCEPTIONS = ("use", "uni", "one", "eu", "usu")
_SILENT_H = ("hour", "honest", "honour")


# ----------------------------------------------------------------------------- morphology


def _split(entry: str) -> tuple[str, str | None]:
    base, _, irregular = entry.partition("|")
    return base, irregular or None


def plural(entry: str) -> str:
    """Plural of a noun entry ("leaf|leaves" carries its own plural)."""
    noun, irregular = _split(entry)
    if irregular:
        return irregular
    if noun.endswith(("s", "sh", "ch", "x", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def third_person(entry: str) -> str:
    verb, _ = _split(entry)
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def past(entry: str) -> str:
    verb, irregular = _split(entry)
    if irregular:
        return irregular
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


_ARTICLE_WORD = re.compile(r"\b([Aa]n?) ([A-Za-z]+)")


def fix_articles(text: str) -> str:
    """Turn "a apple" into "an apple" (and back for "an useful"), the way a writer would."""

    def choose(match: re.Match[str]) -> str:
        article, word = match.group(1), match.group(2)
        lower = word.lower()
        vowel = lower[0] in "aeiou" and not lower.startswith(_VOWEL_SOUND_EXCEPTIONS)
        vowel = vowel or lower.startswith(_SILENT_H)
        wanted = "an" if vowel else "a"
        return (wanted.capitalize() if article[0].isupper() else wanted) + " " + word

    return _ARTICLE_WORD.sub(choose, text)


def title_case(text: str) -> str:
    small = {"a", "an", "the", "of", "and", "to", "in", "on", "for", "with", "about", "from"}
    words = text.split()
    return " ".join(w if (i and w in small) else w[:1].upper() + w[1:] for i, w in enumerate(words))


# ----------------------------------------------------------------------------- English prose

SENTENCE_TEMPLATES = [
    "{subj_pl} {v_base} {np} {prep} {np}.",
    "{np_sg} {v_3sg} {np} and {v_3sg} {np}.",
    "{conn} {np_sg} {v_past} {np_pl} {prep} {np}.",
    "It is {degree} {adj} to {v_base} {np} with {np}.",
    "There are {num} {adj} {nouns} {prep} {np}, and {subj_pl} {v_base} them {adv}.",
    "{subj_sg} {v_past} that {np_pl} {v_base} {np} when {np_sg} is {adj}.",
    "Most of the {nouns} {prep} {np} {v_base} {np} {time}.",
    "The {noun} of the {noun} {v_past} {np} {time}.",
    "If you want to {v_base} {np}, you should {v_base} {np} first.",
    "We {v_past} {np} with {np_pl} and the results were {adj}.",
    "{time}, {np_sg} {v_past} {np} {prep} {np}.",
    "This is why {np_pl} have become so {adj} {prep} {np}.",
    "One of the most {adj} {nouns} is that {np_pl} can {v_base} {np} without {np}.",
    "{subj_pl} often say that {np_sg} {v_3sg} {np}, but {np_sg} {freq} {v_3sg} {np}.",
    "Although {np_sg} {v_past} {np}, {np_pl} still {v_base} {np} {adv}.",
    "Do you {v_base} {np} {prep} {np}?",
    "{np_pl} with {adj} {nouns} tend to {v_base} {np} {adv}.",
    "Nobody knew how {adj} {np_sg} would be {time}.",
    "Our {noun} {v_past} {np} {time}, and the {noun} {v_past} {np} as well.",
    "According to {subj_sg}, {np_sg} {freq} {v_3sg} {np}.",
    "In our experience, {np_pl} and {np_pl} are {adj} but rarely {adj}.",
    "{subj_sg} {v_past} {np} {prep} {np} and then {v_past} {np}.",
    "That is the reason {subj_pl} {v_base} {np_pl} {time}.",
    "The {adj} {noun} {v_3sg} {np}, which {v_3sg} {np} {prep} {np}.",
    "Each {noun} has its own {noun}, and {subj_pl} {freq} {v_base} it {prep} {np}.",
    "For {num} years, {np_pl} have helped {subj_pl} to {v_base} {np}.",
    "Some {nouns} are {adj}, others are {adj}, and a few are simply {adj}.",
    "{subj_pl} who {v_base} {np} also {v_base} {np} {prep} {np}.",
    "It was in {year} that {np_sg} first {v_past} {np}.",
    "A {adj} {noun} can {v_base} {np} in {num} {units}.",
]

TITLE_TEMPLATES = [
    "{adj} {nouns} and the {noun} of {nouns}",
    "How to {v_base} a {adj} {noun}",
    "{num} things to know about {nouns}",
    "Why {subj_pl} {v_base} {nouns}",
    "A guide to {adj} {nouns}",
    "What we learned from the {noun}",
    "The {adj} {noun} nobody talks about",
    "Notes on {nouns} and {nouns}",
]


@dataclass(frozen=True)
class WordForms:
    """Inflected forms of one word pool, computed once so sentence filling is a lookup."""

    nouns: list[str]
    plurals: list[str]
    adjectives: list[str]
    verbs: list[str]
    third_persons: list[str]
    pasts: list[str]

    @classmethod
    def of(cls, nouns: list[str], adjectives: list[str], verbs: list[str]) -> WordForms:
        return cls(
            [_split(n)[0] for n in nouns],
            [plural(n) for n in nouns],
            adjectives,
            [_split(v)[0] for v in verbs],
            [third_person(v) for v in verbs],
            [past(v) for v in verbs],
        )


GENERAL_FORMS = WordForms.of(GENERAL_NOUNS, GENERAL_ADJECTIVES, GENERAL_VERBS)
TOPIC_FORMS = {t.name: WordForms.of(t.nouns, t.adjectives, t.verbs) for t in TOPICS}


@functools.cache
def template_parts(template: str) -> list[str]:
    """A template split once into [literal, slot, literal, slot, ..., literal]."""
    return re.split(r"\{(\w+)\}", template)


SINGULAR_DETERMINERS = ["the", "the", "a", "this", "that", "every", "our", "their"]
PLURAL_DETERMINERS = ["the", "many", "some", "these", "most", "several", "few", "our"]
UNITS = ["days", "weeks", "months", "hours", "steps"]


class EnglishWriter:
    """Grammatical English sentences about one topic, drawn from templates and word lists.

    A slot takes a topic word with a fixed probability (60% of nouns, 45% of adjectives,
    40% of verbs) and a general word otherwise, so articles stay on topic without
    repeating the same n-grams (Gopher's repetition rules).
    """

    # Subclasses (curation/genres.py) write other kinds of page with other templates.
    SENTENCES = SENTENCE_TEMPLATES
    TITLES = TITLE_TEMPLATES
    HEADINGS = SUBHEADINGS

    def __init__(self, rng: random.Random, topic: Topic):
        self.rng = rng
        self.topic = topic
        self.forms = TOPIC_FORMS[topic.name]
        pick = self._pick
        self._slots = {
            "np": self._np,
            "np_sg": self._np_singular,
            "np_pl": self._np_plural,
            "noun": lambda: self._word("nouns", 0.6),
            "nouns": lambda: self._word("plurals", 0.6),
            "adj": lambda: self._word("adjectives", 0.45),
            "adv": lambda: pick(ADVERBS),
            "freq": lambda: pick(FREQUENCY_ADVERBS),
            "degree": lambda: pick(DEGREE_ADVERBS),
            "prep": lambda: pick(PREPOSITIONS),
            "conn": lambda: pick(CONNECTIVES),
            "num": lambda: pick(NUMBERS),
            "year": lambda: str(rng.randint(1820, 2024)),
            "units": lambda: pick(UNITS),
            "time": self._time,
            "subj_pl": lambda: pick(PLURAL_SUBJECTS),
            "subj_sg": lambda: pick(SINGULAR_SUBJECTS),
            "v_base": lambda: self._word("verbs", 0.4),
            "v_3sg": lambda: self._word("third_persons", 0.4),
            "v_past": lambda: self._word("pasts", 0.4),
        }

    def _pick(self, items: list[str]) -> str:
        return items[int(self.rng.random() * len(items))]

    def _word(self, form: str, topic_share: float) -> str:
        forms = self.forms if self.rng.random() < topic_share else GENERAL_FORMS
        return self._pick(getattr(forms, form))

    def _maybe_adjective(self) -> str:
        return self._word("adjectives", 0.45) + " " if self.rng.random() < 0.45 else ""

    def _np_singular(self) -> str:
        det = self._pick(SINGULAR_DETERMINERS)
        return f"{det} {self._maybe_adjective()}{self._word('nouns', 0.6)}"

    def _np_plural(self) -> str:
        det = self._pick(PLURAL_DETERMINERS)
        return f"{det} {self._maybe_adjective()}{self._word('plurals', 0.6)}"

    def _np(self) -> str:
        return self._np_singular() if self.rng.random() < 0.55 else self._np_plural()

    def _time(self) -> str:
        season = self._pick(SEASONS)
        return self._pick(
            [
                f"in {self.rng.randint(1820, 2024)}",
                f"last {season}",
                f"every {season}",
                f"over the past {self._pick(NUMBERS)} years",
                "in recent years",
                "each morning",
                "on most weekends",
                f"at the end of the {season}",
            ]
        )

    def word(self, slot: str) -> str:
        """One filler word or phrase, e.g. word("adj")."""
        return self._slots[slot]()

    def fill(self, template: str) -> str:
        parts = template_parts(template)
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out += (self._slots[parts[i]](), parts[i + 1])
        text = "".join(out)
        return text[0].upper() + text[1:]

    def template(self) -> str:
        """The next sentence's template."""
        return self._pick(self.SENTENCES)

    def sentence(self) -> str:
        return fix_articles(self.fill(self.template()))

    def paragraph(self) -> str:
        count = self.rng.randint(3, 7)
        return fix_articles(" ".join(self.fill(self.template()) for _ in range(count)))

    def title(self) -> str:
        return title_case(fix_articles(self.fill(self._pick(self.TITLES))))


@dataclass
class Article:
    """The main text of an English page: what a perfect extractor would return."""

    topic: str
    title: str
    paragraphs: list[str]
    headings: dict[int, str]  # paragraph index -> <h2> shown before it

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)

    @property
    def first_sentence(self) -> str:
        return re.split(r"(?<=[.?!]) ", self.paragraphs[0], maxsplit=1)[0]


def article_length(rng: random.Random, low: int = 150, high: int = 1500) -> int:
    """Word count drawn log-normally around ~500 words and clipped to [low, high]."""
    return int(min(high, max(low, rng.lognormvariate(6.2, 0.55))))


def write_article(
    rng: random.Random,
    length: int | None = None,
    topic: Topic | None = None,
    writer_type: Callable[[random.Random, Topic], EnglishWriter] = EnglishWriter,
) -> Article:
    """An article of about `length` words (150-1500 by default) on a random topic, written by
    `writer_type` (plain prose; curation/genres.py has encyclopedia entries, forum threads, ...)."""
    topic = topic or rng.choice(TOPICS)
    target = length or article_length(rng)
    writer = writer_type(rng, topic)
    paragraphs: list[str] = []
    words = 0
    while words < target:
        paragraphs.append(writer.paragraph())
        words += len(paragraphs[-1].split())
    headings = {
        i: rng.choice(writer.HEADINGS) for i in range(2, len(paragraphs), rng.randint(2, 4))
    }
    return Article(topic.name, writer.title(), paragraphs, headings)


# ----------------------------------------------------------------------------- near duplicates


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams after lower-casing and dropping punctuation (FineWeb's MinHash input)."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    return len(a & b) / len(a | b)


def near_duplicate(
    article: Article, rng: random.Random, low: float = 0.80, high: float = 0.95
) -> tuple[Article, float]:
    """A copy with one sentence added and a few words changed, its 5-gram Jaccard in [low, high].

    Words are changed one at a time until the similarity falls below a target drawn in the
    range; a change that would fall below `low` (short articles) is undone and ends the loop.
    """
    writer = EnglishWriter(rng, next(t for t in TOPICS if t.name == article.topic))
    original = shingles("\n".join(article.paragraphs))
    paragraphs = [p.split(" ") for p in article.paragraphs]
    rng.choice(paragraphs).extend(writer.sentence().split(" "))
    target = rng.uniform(low + 0.02, high - 0.02)
    similarity = jaccard(original, shingles("\n".join(" ".join(w) for w in paragraphs)))
    while similarity > target:
        words = rng.choice(paragraphs)
        i = rng.randrange(len(words))
        if not (words[i].isalpha() and words[i].islower()):
            continue
        before, words[i] = words[i], writer.word(rng.choice(["noun", "adj", "adv"]))
        changed = jaccard(original, shingles("\n".join(" ".join(w) for w in paragraphs)))
        if changed < low:
            words[i] = before
            break
        similarity = changed
    copy = Article(
        article.topic, article.title, [" ".join(w) for w in paragraphs], dict(article.headings)
    )
    return copy, similarity


# ----------------------------------------------------------------------------- low quality text

SPAM_THEMES = [
    ["cheap", "replica", "watches", "buy", "online", "best", "price", "discount", "luxury"],
    ["weight", "loss", "pills", "fast", "diet", "free", "trial", "best", "results"],
    ["payday", "loans", "instant", "approval", "cash", "now", "no", "credit", "check"],
    ["cheap", "flights", "hotels", "deals", "last", "minute", "book", "now", "lowest"],
    ["seo", "backlinks", "traffic", "ranking", "buy", "cheap", "top", "google", "fast"],
]


def keyword_spam(rng: random.Random) -> tuple[str, list[str]]:
    """A title and paragraphs that repeat a handful of keywords (fails Gopher repetition)."""
    words = rng.choice(SPAM_THEMES)
    phrases = [" ".join(rng.sample(words, 3)) for _ in range(6)]
    paragraphs = []
    for _ in range(rng.randint(4, 8)):
        paragraphs.append(" ".join(rng.choice(phrases) for _ in range(rng.randint(15, 30))))
    paragraphs.insert(1, f"Click here for {phrases[0]}! Best {phrases[1]} online!!!")
    return title_case(phrases[0]), paragraphs


SHORT_TEXTS = [
    "Coming soon.",
    "This page is under construction. Check back later!",
    "Login required. Please sign in to continue.",
    "Thanks for subscribing!",
    "Nothing here yet.",
    "Error: session expired.",
]


def short_text(rng: random.Random) -> str:
    return rng.choice(SHORT_TEXTS)


LIST_ITEMS = [
    "cheap hotels", "best pizza near me", "free games", "car insurance quotes", "used cars",
    "weather today", "flight deals", "home loans", "dating tips", "garden tools", "phone cases",
    "baby names", "funny videos", "crypto prices", "recipes easy", "laptop deals", "movie times",
    "job search", "real estate", "online courses",
]  # fmt: skip


def list_items(rng: random.Random) -> list[str]:
    """Many two- or three-word lines (link farms, tag clouds): fails C4/FineWeb line rules."""
    return [f"{rng.choice(LIST_ITEMS)} {rng.randint(1, 99)}" for _ in range(rng.randint(40, 90))]


# ----------------------------------------------------------------------------- other languages


@dataclass(frozen=True)
class Language:
    """Enough words to write a few sentences that language ID recognises."""

    code: str
    subjects: list[str]
    predicates: list[str]
    endings: list[str]
    titles: list[str]
    nav: list[str]  # menu labels, so boilerplate is in the page's language too
    separator: str = " "  # Japanese and Chinese write without spaces


LANGUAGES = {
    "de": Language(
        "de",
        ["Der Lehrer", "Die Stadt", "Das Kind", "Meine Familie", "Unser Nachbar", "Der Koch"],
        [
            "besucht den Markt",
            "liest ein Buch über die Geschichte",
            "kocht eine Suppe mit frischem Gemüse",
            "plant eine Reise nach Süden",
            "arbeitet jeden Tag im Garten",
            "spricht über das Wetter",
            "kauft Brot und Käse",
        ],
        ["am Wochenende", "im Winter", "mit großer Freude", "nach der Arbeit", "ohne Hilfe"],
        ["Neuigkeiten aus der Stadt", "Ein Tag auf dem Land", "Rezepte für den Winter"],
        ["Startseite", "Nachrichten", "Kontakt", "Impressum", "Diese Website verwendet Cookies."],
    ),
    "fr": Language(
        "fr",
        ["Le professeur", "La ville", "Mon voisin", "Notre famille", "Le cuisinier", "La mairie"],
        [
            "visite le marché",
            "lit un livre sur l'histoire de la région",
            "prépare une soupe aux légumes frais",
            "organise un voyage vers le sud",
            "travaille chaque jour dans le jardin",
            "parle du temps qu'il fait",
            "achète du pain et du fromage",
        ],
        ["le week-end", "en hiver", "avec beaucoup de plaisir", "après le travail", "sans aide"],
        ["Nouvelles de la ville", "Une journée à la campagne", "Recettes pour l'hiver"],
        ["Accueil", "Actualités", "Contact", "Mentions légales", "Ce site utilise des cookies."],
    ),
    "es": Language(
        "es",
        ["El profesor", "La ciudad", "Mi vecino", "Nuestra familia", "El cocinero", "La niña"],
        [
            "visita el mercado",
            "lee un libro sobre la historia del país",
            "prepara una sopa con verduras frescas",
            "planea un viaje hacia el sur",
            "trabaja cada día en el jardín",
            "habla del tiempo que hace",
            "compra pan y queso",
        ],
        [
            "el fin de semana",
            "en invierno",
            "con mucha alegría",
            "después del trabajo",
            "sin ayuda",
        ],
        ["Noticias de la ciudad", "Un día en el campo", "¿Qué comer en invierno?"],
        ["Inicio", "Noticias", "Contacto", "Aviso legal", "Este sitio utiliza cookies."],
    ),
    "ru": Language(
        "ru",
        ["Учитель", "Наш город", "Мой сосед", "Моя семья", "Повар", "Девочка"],
        [
            "посещает рынок",
            "читает книгу об истории страны",
            "готовит суп из свежих овощей",
            "планирует поездку на юг",
            "работает каждый день в саду",
            "говорит о погоде",
            "покупает хлеб и сыр",
        ],
        ["в выходные", "зимой", "с большой радостью", "после работы", "без помощи"],
        ["Новости города", "Один день в деревне", "Рецепты для зимы"],
        ["Главная", "Новости", "Контакты", "О нас", "Этот сайт использует файлы cookie."],
    ),
    "ja": Language(
        "ja",
        ["先生は", "私の家族は", "となりの人は", "子供たちは", "料理人は", "町の人々は"],
        [
            "市場に行きます",
            "歴史の本を読みます",
            "新しい野菜でスープを作ります",
            "南への旅行を計画しています",
            "毎日庭で働いています",
            "天気について話します",
            "パンとチーズを買います",
        ],
        ["週末に", "冬に", "とても楽しく", "仕事の後で", "一人で"],
        ["町のニュース", "田舎の一日", "冬の料理"],
        ["ホーム", "ニュース", "お問い合わせ", "会社概要", "このサイトはクッキーを使用します。"],
        separator="",
    ),
    "zh": Language(
        "zh",
        ["老师", "我们的城市", "我的邻居", "我的家人", "厨师", "孩子们"],
        [
            "去市场买东西",
            "读一本关于历史的书",
            "用新鲜的蔬菜做汤",
            "计划去南方旅行",
            "每天在花园里工作",
            "谈论天气",
            "买面包和水果",
        ],
        ["在周末", "在冬天", "非常高兴地", "下班以后", "一个人"],
        ["城市新闻", "乡下的一天", "冬天的菜"],
        ["首页", "新闻", "联系我们", "关于我们", "本网站使用cookie。"],
        separator="",
    ),
}


def foreign_text(rng: random.Random, language: Language) -> tuple[str, list[str]]:
    """A title and 2-3 short paragraphs of simple sentences in `language`."""
    stop = "。" if language.separator == "" else "."

    def sentence() -> str:
        if language.code in ("ja", "zh"):
            parts = [rng.choice(language.subjects), rng.choice(language.endings)]
            return "".join(parts) + rng.choice(language.predicates) + stop
        parts = [rng.choice(language.subjects), rng.choice(language.predicates)]
        return " ".join(parts + [rng.choice(language.endings)]) + stop

    space = language.separator
    paragraphs = [
        space.join(sentence() for _ in range(rng.randint(3, 5))) for _ in range(rng.randint(2, 3))
    ]
    return rng.choice(language.titles), paragraphs


# ----------------------------------------------------------------------------- PII


def luhn_complete(digits: str) -> str:
    """Append the check digit that makes `digits` pass the Luhn test."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return digits + str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return luhn_complete(digits[:-1]) == digits


# SSNs the SSA voided or never issued (078-05-1120, 219-09-9999, 123-45-6789): never a real
# person's, yet of a real SSN's form. Not SSA's advertising range 987-65-432x: area 9xx is
# no SSN (ITINs), so the redactor rightly leaves it, and the ground truth would disagree.
# Five entries, as the list had: a choice among five draws from the crawl's generator as
# before, so every other page of a seed's crawl stays the same.
FAKE_SSNS = ["078-05-1120", "219-09-9999", "123-45-6789", "078-05-1120", "219-09-9999"]
FIRST_NAMES = ["jane", "john", "maria", "li", "omar", "sofia", "peter", "anna", "raj", "emma"]
LAST_NAMES = ["doe", "smith", "garcia", "chen", "haddad", "rossi", "novak", "berg", "patel"]


def pii_values(rng: random.Random) -> dict[str, str]:
    """One fake value of each PII type, all in ranges reserved for examples or fiction."""
    name = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}"
    card = luhn_complete("4" + "".join(str(rng.randrange(10)) for _ in range(14)))
    return {
        "email": f"{name}@{rng.choice(['mail', 'post', 'inbox'])}-host.example",
        # Ofcom's drama range (020 7946 0xxx) and the US 555-01xx fiction range.
        "phone_intl": f"+44 20 7946 0{rng.randint(0, 999):03d}",
        "phone_us": f"({rng.choice([212, 312, 415, 617])}) 555-01{rng.randint(0, 99):02d}",
        "ipv4": f"{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{rng.randint(1, 254)}",
        "ipv6": f"2001:db8:{rng.randint(1, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}",
        "credit_card": " ".join(card[i : i + 4] for i in range(0, 16, 4)),
        "ssn": rng.choice(FAKE_SSNS),
    }


PII_SENTENCES = {
    "email": "For questions about this post, write to {} and we will reply within a week.",
    "phone_intl": "Our London office can be reached on {} during working hours.",
    "phone_us": "Readers in the United States can call {} for a free consultation.",
    "ipv4": "The old server at {} will be switched off at the end of the month.",
    "ipv6": "Please update your settings so that the new address {} is allowed.",
    "credit_card": "A reader accidentally posted the card number {} in the comments below.",
    "ssn": "The form asked for a social security number such as {} without any warning.",
}


def pii_sentences(values: dict[str, str]) -> list[str]:
    return [PII_SENTENCES[kind].format(value) for kind, value in values.items()]
