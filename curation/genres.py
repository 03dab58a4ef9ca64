"""Seeded page text of six kinds of site (encyclopedia, forum, code docs, science, fiction, shop)
for the synthetic crawl, so the classify stage's domain classifier has genres to tell apart.

A genre writer is the plain English writer (`curation.textgen`) with the genre's own title and
heading templates, and a share of its sentences drawn from the genre's sentence templates: the
text stays topical, grammatical prose that passes the Gopher/C4/FineWeb rules, and it reads
like its kind of page (definitions and dates; questions and replies; function names and
parameters; methods, figures and p-values; dialogue; prices and shipping).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from curation.textgen import (
    FIRST_NAMES,
    LAST_NAMES,
    TOPICS,
    Article,
    EnglishWriter,
    Topic,
    article_length,
    write_article,
)


@dataclass(frozen=True)
class Genre:
    name: str  # the domain label (conf/domain_rules.yaml) pages of this genre deserve
    sentences: list[str]
    titles: list[str]
    headings: list[str]
    topics: tuple[str, ...]  # the textgen topics such pages are about
    share: float = 0.5  # of sentences from the genre's templates; the rest is topical prose


GENRES = {
    genre.name: genre
    for genre in [
        Genre(
            "encyclopedic",
            [
                "The {noun} is {np_sg} that was first described in {year}.",
                "The term refers to {np_pl} {prep} {np}, and is also used for {np_pl}.",
                "It is classified as {np_sg} and is found mainly {prep} {np}.",
                "The {noun} is named after {name} {lastname}, who studied it in {year}.",
                "Historically, the {noun} was known as {np_sg} until the {century}.",
                "The earliest surviving reference to the {noun} dates from {year}.",
                "It is distinct from {np_sg}, with which it is often confused.",
                "Several {adj} varieties are recognised, including {np_sg} and {np_sg}.",
                "The word derives from an older term for {np_sg}.",
                "As of {year}, {num} {adj} {nouns} had been recorded.",
                "During the {century}, {np_pl} spread {prep} {np}.",
                "{name} {lastname} later argued that {np_sg} {v_3sg} {np}.",
            ],
            [
                "{adj} {noun}",
                "{noun} ({adj} {noun})",
                "History of the {noun}",
                "List of {adj} {nouns}",
                "{noun} of {nouns}",
            ],
            ["Etymology", "History", "Description", "Classification", "Distribution", "Legacy"],
            ("science", "history", "music", "travel", "gardening"),
        ),
        Genre(
            "forum",
            [
                "Hi all, my {noun} {v_3sg} {np} every time I try to {v_base} {np}.",
                "Has anyone else had {num} problems with {np_pl}?",
                "Thanks in advance, I am {degree} stuck with {np_sg}.",
                "I had the same issue {time} and fixed it by replacing {np_sg}.",
                "This worked for me {time}, after I tried to {v_base} {np}.",
                "Edit: solved, it was {np_sg} all along.",
                "Did you try to {v_base} {np} before posting?",
                "Not sure why you got downvoted, {np_sg} is {adj} here.",
                "Welcome to the forum, {name}, that is a good question.",
                "Quick update: I {v_past} {np} and now it works.",
                "Same here, {num} replies and still no answer about {np_pl}.",
                "Can you post a photo of your {noun}? Hard to {v_base} {np} without one.",
                "Honestly I would just {v_base} {np} and see what happens.",
                "Marking this as solved, thanks {name} and {subj_pl}!",
            ],
            [
                "Help: my {noun} will not {v_base}",
                "Anyone tried {adj} {nouns}?",
                "Problem with my {noun} after the update",
                "Question about {nouns} and {nouns}",
                "Best way to {v_base} a {adj} {noun}?",
            ],
            ["Original post", "Replies", "Accepted answer", "Related threads", "Latest reply"],
            ("technology", "gardening", "cooking", "finance", "music"),
        ),
        Genre(
            "code",
            [
                "Install the package with pip and import {ident} in your script.",
                "Call {ident}() with {np_sg} as the first argument.",
                "The function returns {np_sg}, or None if the {noun} is missing.",
                "Set the {ident} option to true to {v_base} {np} on start-up.",
                "This method raises a ValueError when the {noun} is {adj}.",
                "Run the {noun} tests with pytest before you open a pull request.",
                "The {ident} parameter defaults to {n} and accepts any integer.",
                "Version {n}.{n} deprecated {ident}() in favour of {ident}().",
                "See the API reference of {ident} for the full list of arguments.",
                "Pass a callback to {ident}() if you need to {v_base} {np} yourself.",
                "On Windows, the path to the {noun} file must be absolute.",
                "The returned object is immutable, so {ident}() creates a copy.",
                "Use {ident}() to {v_base} {np} without blocking the main thread.",
            ],
            [
                "Getting started with {ident}",
                "Configuring the {noun} module",
                "{ident} API reference",
                "How to {v_base} a {noun} with {ident}",
            ],
            ["Installation", "Quick start", "Parameters", "Return value", "Examples", "Changelog"],
            ("technology",),
        ),
        Genre(
            "science",
            [
                "In this paper we propose {np_sg} for the study of {np_pl}.",
                "We measured {np_pl} in {n} independent samples.",
                "Our results show that {np_sg} {v_3sg} {np} (p < 0.05).",
                "These findings agree with earlier work by {lastname} et al. ({year}).",
                "Figure {n} shows the distribution of {nouns} across all conditions.",
                "Table {n} summarises the {adj} {nouns} of each group.",
                "The proposed method outperforms {np_sg} by {n} percent.",
                "Further work is needed to {v_base} {np} in larger cohorts.",
                "Samples were collected between {year} and {year} and stored at {n} degrees.",
                "We thank {subj_pl} for their {adj} comments on {np}.",
                "A linear model was fitted to {np_pl} with {np_sg} as a covariate.",
                "The effect size was small but significant in {n} of the {n} trials.",
            ],
            [
                "On the {noun} of {adj} {nouns}",
                "A {adj} model of {nouns}",
                "Evidence for {adj} {nouns} in {nouns}",
                "{adj} {nouns}: a systematic review",
            ],
            ["Abstract", "Introduction", "Methods", "Results", "Discussion", "Conclusion"],
            ("science", "health", "technology"),
        ),
        Genre(
            "books",
            [
                "{name} looked at the {noun} for {num} {units} and said nothing.",
                '"I never wanted {np_sg}," she whispered.',
                "He closed the {noun} behind him and {v_past} towards {np}.",
                "The night was {adj} and the {noun} lay silent.",
                "She remembered {np_sg} from the summer when she was {num}.",
                '"Where have you been {time}?" asked {name}.',
                "They walked on in {adj} silence until {name} reached {np}.",
                "For a {adj} moment nobody moved, and then {name} laughed.",
                "Somewhere beyond {np}, a dog began to bark.",
                '"You should have told me about {np_sg}," he said quietly.',
                "By morning the {noun} had gone, and so had {name}.",
                "Her hands were {adj} as she opened {np}.",
            ],
            [
                "The {adj} {noun}",
                "A {noun} in {season}",
                "The Last {noun}",
                "Daughters of the {noun}",
            ],
            ["Chapter One", "Chapter Two", "Chapter Three", "Part Two", "Epilogue"],
            ("history", "travel", "music", "gardening", "cooking"),
        ),
        Genre(
            "commerce",
            [
                "Add this {adj} {noun} to your cart and get free shipping over {n} dollars.",
                "In stock: ships within {num} working days.",
                "Customers who bought this {noun} also bought {np_pl}.",
                "Rated {n} out of 5 by {n} verified buyers.",
                "Now only {n}.99 dollars, {n} percent off the usual price.",
                "Each {noun} comes with a {num}-year warranty.",
                "Order today and your {noun} arrives by Friday.",
                "Returns are free within {num} days of delivery.",
                "Product details: {adj} {noun}, {adj} finish, {n} pieces per box.",
                "Write a review and tell other shoppers what you think of {np_sg}.",
                "Pay in {num} interest-free instalments at checkout.",
                "Great value, my {noun} arrived quickly and works as described.",
            ],
            [
                "{adj} {noun} ({n} pack)",
                "{adj} {noun} set with case",
                "Buy {adj} {nouns} online",
                "{noun} kit for beginners",
            ],
            ["Product description", "Specifications", "Shipping and returns", "Customer reviews"],
            ("cooking", "gardening", "technology", "sports", "music"),
        ),
    ]
}
# Forum threads, product pages and abstracts are shorter than blog posts; a cap also keeps each
# genre template's repeats under Gopher's duplicate 5-gram limit (0.15 of characters).
MAX_WORDS = 700
CENTURIES = ["sixteenth century", "seventeenth century", "eighteenth century", "nineteenth century"]


class GenreWriter(EnglishWriter):
    """Topical prose with a share of the genre's own sentences, titles and headings."""

    def __init__(self, rng: random.Random, topic: Topic, genre: Genre):
        super().__init__(rng, topic)
        self.genre = genre
        self.TITLES, self.HEADINGS = genre.titles, genre.headings
        self._slots.update(
            name=lambda: self._pick(FIRST_NAMES).title(),
            lastname=lambda: self._pick(LAST_NAMES).title(),
            n=lambda: str(rng.randint(2, 40)),
            century=lambda: self._pick(CENTURIES),
            season=lambda: self._pick(["Spring", "Summer", "Autumn", "Winter"]),
            # A code identifier such as parse_config or load_sensor.
            ident=lambda: f"{self._word('verbs', 0.4)}_{self._word('nouns', 0.6)}",
        )

    def template(self) -> str:
        if self.rng.random() < self.genre.share:
            return self._pick(self.genre.sentences)
        return super().template()


def write_genre_article(rng: random.Random, genre: str, length: int | None = None) -> Article:
    """A page of `genre` (a key of GENRES) on one of its topics, about `length` words."""
    spec = GENRES[genre]
    topic = rng.choice([t for t in TOPICS if t.name in spec.topics])
    length = length or article_length(rng, high=MAX_WORDS)
    return write_article(rng, length, topic, writer_type=lambda r, t: GenreWriter(r, t, spec))
