"""Dedup decisions without Spark: keys, signatures (numpy vs datasketch), LSH bands, keep rule."""

from __future__ import annotations

import random
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.config import load_curation_config
from curation.dedup.keep import UnionFind, choose_kept, keep_order
from curation.dedup.minhash import (
    EMPTY,
    DatasketchSigner,
    NumpySigner,
    ShingleSpec,
    band_keys,
    estimated_jaccard,
    jaccard,
    shingles,
)
from curation.dedup.text import (
    DIGITS,
    exact_key,
    normalize_text,
    normalize_url,
    normalized_words,
    words_pattern,
)
from curation.dedup.wordhash import CODE_POINTS, solo_and_mark_codes, word_codes, word_hashes
from refinery.config import ConfigError

WORD5 = ShingleSpec("word", 5)
SIGNERS = [NumpySigner, DatasketchSigner]
MASK64 = (1 << 64) - 1
# Characters where the regex words are easy to get wrong: non-ASCII digits (Arabic-Indic,
# Devanagari), a superscript and a fraction NFKC rewrites, a ligature, İ (lower() gives two
# code points), the underscore, combining marks, separators. (Hypothesis never draws lone
# surrogates into text; test_word_hashes_edge_cases has one.) Ideographs and kana are words
# alone with the marks after them (a variation selector), a halfwidth kana NFKC widens.
TRICKY = "0١५²½ﬁİ_\u0301\u200d \n\t-.ÇaZ北京かナ々\u3099ｶ\U000e0100"
TEXTS = st.lists(st.text(st.one_of(st.characters(), st.sampled_from(TRICKY))), max_size=6)


def word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=7))  # digits would fold to 0


def vocabulary_text(rng: random.Random, words: int) -> list[str]:
    return [word(rng) for _ in range(words)]


def edited(words: list[str], rng: random.Random, changes: int) -> list[str]:
    copy = list(words)
    for i in rng.sample(range(len(copy)), changes):
        copy[i] = word(rng)
    return copy


def pairs(seed: int = 0, count: int = 60) -> list[tuple[str, str, float]]:
    """Document pairs with word substitutions spread over a wide Jaccard range."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        words = vocabulary_text(rng, 300)
        copy = edited(words, rng, changes=i % 30)
        a, b = " ".join(words), " ".join(copy)
        out.append((a, b, jaccard(shingles(a, WORD5), shingles(b, WORD5))))
    return out


def test_normalize_text_folds_case_digits_punctuation_and_spaces():
    assert normalize_text("Hello,  World!\n\tIt's 2024 — ÇA va?") == "hello world it s 0000 ca va"
    assert normalize_text(None) == ""


def test_exact_key_folds_case_and_punctuation_but_keeps_numbers():
    assert exact_key("A  b.") == exact_key("a b") == exact_key("A, B!")
    # two scores, two doses: shingles fold digits (FineWeb), the exact key must not
    assert exact_key("Arsenal 3, Chelsea 1.") != exact_key("Arsenal 0, Chelsea 2.")
    assert exact_key("take 500 mg every 4 hours") != exact_key("take 100 mg every 8 hours")
    # a text without words is nobody's copy (they all hashed "", one key for all of them)
    assert exact_key(None) is exact_key("") is exact_key("🎉🎉 🥳") is exact_key("∑ ∫ √") is None


def test_copies_that_differ_only_in_accents_are_one_text():
    """FineWeb drops accents (DataTrove's norm_unicode_diacritics): a copy without them was
    neither an exact nor a near duplicate (Jaccard 0 for a French page)."""
    assert exact_key("Le château était à côté de l'église") == exact_key(
        "Le chateau etait a cote de l'eglise"
    )
    assert exact_key("Η Αθήνα είναι η πρωτεύουσα") == exact_key("Η ΑΘΗΝΑ ΕΙΝΑΙ Η ΠΡΩΤΕΥΟΥΣΑ")
    assert exact_key("Việt Nam") == exact_key("Viet Nam")
    assert exact_key("שָׁלוֹם مُحَمَّد") == exact_key("שלום محمد")
    assert normalized_words("İstanbul ﬁrst") == ["istanbul", "first"]  # NFKC still
    # vowel signs are the vowels, and voicing marks make other kana: they stay
    assert exact_key("कि") != exact_key("का") and exact_key("が") != exact_key("か")
    assert normalized_words("한국어 がぎ") == ["한국어", "が", "ぎ"]  # composed again


def test_a_variation_selector_is_no_word_and_no_difference():
    """Alone after an emoji, U+FE0F was a one-character word: emoji-only texts had a key (all
    one), and a copy whose emoji lost its selector was no copy."""
    assert exact_key("❤️") is None and exact_key("☺️ ❤️") is None
    assert exact_key("Thanks ❤️") == exact_key("Thanks ❤")


def test_combining_marks_stay_in_their_words():
    """Vowel signs and viramas are marks, not letters: they neither split a word nor vanish."""
    assert normalize_text("हिन्दी में, ภาษาไทย!") == "हिन्दी में ภาษาไทย"
    assert exact_key("कि") != exact_key("का")


def test_word_codes_match_the_regexes_on_every_code_point():
    """The tables stand in for `\\w` and `\\d`: check them against `re` itself, exhaustively."""
    expected = np.zeros(CODE_POINTS, dtype=np.uint32)
    for point in range(CODE_POINTS):
        char = chr(point)
        if words_pattern().fullmatch(char):
            expected[point] = ord("0") if DIGITS.fullmatch(char) else point
    assert np.array_equal(word_codes(), expected)


def test_solo_codes_match_the_regex_on_every_code_point():
    """A character is a word alone exactly where the regex finds two words in it twice."""
    pattern = words_pattern()
    expected = [len(pattern.findall(chr(p) * 2)) == 2 for p in range(CODE_POINTS)]
    assert np.array_equal(solo_and_mark_codes()[0], np.array(expected))


def test_chinese_and_japanese_shingle_by_character():
    """Whole clauses were one word each: one character edited changed a third of the shingles."""
    assert normalized_words("北京是首都，人口约2千万。Beijing") == (
        ["北", "京", "是", "首", "都", "人", "口", "约", "0", "千", "万", "beijing"]
    )
    page = (
        "北京是中华人民共和国的首都，全国政治、文化、国际交往和科技创新中心。"
        "北京历史悠久，有三千多年建城史和八百多年建都史，是世界著名古都。"
        "北京地处华北平原北部，背靠燕山，毗邻天津市和河北省。"
    )
    edited = page.replace("三千", "四千")
    assert jaccard(shingles(page, WORD5), shingles(edited, WORD5)) > 0.85  # clauses: 0.09
    assert exact_key("北京 是首都。") == exact_key("北京是首都")
    assert normalized_words("葛\U000e0100飾区") == ["葛", "飾", "区"]  # a variant is its ideograph
    # character shingles read the text as written: a run of ideographs is one
    assert normalize_text("北京是首都，人口约2千万。") == "北京是首都 人口约0千万"


def test_thai_lao_khmer_and_myanmar_shingle_by_letter_too():
    """Written without spaces between words, as Chinese: a Thai page was 15 phrase-long words,
    and one edited word left a Jaccard of 0.47, under the threshold."""
    page = (
        "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย มีประชากรประมาณสิบล้านคน "
        "เป็นศูนย์กลางทางเศรษฐกิจ การศึกษา และวัฒนธรรมของประเทศ "
        "แม่น้ำเจ้าพระยาไหลผ่านใจกลางเมือง มีวัดและพระราชวังที่สวยงามมากมาย "
        "นักท่องเที่ยวจากทั่วโลกเดินทางมาเยี่ยมชมทุกปี"
    )
    edited = page.replace("สิบล้านคน", "สิบเอ็ดล้านคน")
    assert jaccard(shingles(page, WORD5), shingles(edited, WORD5)) > 0.8
    assert normalized_words("ภาษาไทย ๑๒") == ["ภ", "า", "ษ", "า", "ไ", "ท", "ย", "00"]
    assert normalized_words("ກິນ ខ្មែរ") == ["ກິ", "ນ", "ខ្", "មែ", "រ"]  # marks stay with a letter


def mix64_reference(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def word_hash_reference(word: str) -> int:
    """The word hash of curation/dedup/wordhash.py, one word at a time in plain Python."""
    total = sum(mix64_reference(ord(c) | i << 21) for i, c in enumerate(word)) & MASK64
    return mix64_reference(total ^ len(word))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(TEXTS)
def test_vectorised_words_are_the_regex_words(texts):
    hashes, counts = word_hashes(texts)
    words = [normalized_words(t) for t in texts]
    assert counts.tolist() == [len(w) for w in words]
    assert hashes.tolist() == [word_hash_reference(w) for ws in words for w in ws]


def test_word_hashes_edge_cases():
    hashes, counts = word_hashes(["ab ba a b aa", "", "ab", "x\ud800y"])
    assert counts.tolist() == [5, 0, 1, 2]  # a lone surrogate ends a word, as in the regex
    assert normalized_words("x\ud800y") == ["x", "y"]
    assert len(set(hashes[:5].tolist())) == 5 and hashes[0] == hashes[5]  # order, length
    assert word_hashes([])[0].shape == (0,)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(TEXTS)
def test_numpy_signatures_of_any_text_do_not_depend_on_the_batch(texts):
    signer = NumpySigner(ShingleSpec("word", 2), 16, seed=2)
    alone = [signer.signatures([t]) for t in texts]
    expected = np.vstack(alone) if alone else np.empty((0, 16), dtype=np.uint32)
    assert np.array_equal(signer.signatures(texts), expected)


def test_normalize_url_folds_what_does_not_change_the_page():
    same = [
        "https://Example.TEST/a/b/?utm_source=x&b=2&a=1#top",
        "https://example.test:443/a/b?a=1&b=2",
    ]
    assert len({normalize_url(u) for u in same}) == 1
    assert normalize_url("http://example.test/a") != normalize_url("https://example.test/a")
    assert normalize_url("https://www.example.test/") != normalize_url("https://example.test/")
    assert normalize_url("https://example.test/a?page=2") != normalize_url("https://example.test/a")
    assert normalize_url("http://x.test/#!/page1") != normalize_url("http://x.test/#!/page2")
    assert normalize_url("http://x.test/#!/page1") == normalize_url("HTTP://x.test#!/page1")
    assert normalize_url("http://[broken/") == "http://[broken/"
    # the path's escapes as RFC 3986 normalises them, an internationalised host as punycode
    tilde = [
        "http://x.test/%7Euser/caf%c3%a9",
        "http://x.test/~user/café",
        "http://x.test/%7euser/caf%C3%A9",
    ]
    assert len({normalize_url(u) for u in tilde}) == 1
    assert normalize_url("http://x.test/a%2Fb") != normalize_url("http://x.test/a/b")
    assert normalize_url("http://x.test/a b") == normalize_url("http://x.test/a%20b")
    # dot segments resolved as RFC 3986 5.2.4 does (its example), empty segments kept
    assert normalize_url("http://x.test/a/b/c/./../../g") == "http://x.test/a/g"
    assert normalize_url("http://x.test/a/b/..") == normalize_url("http://x.test/a/")
    assert normalize_url("http://x.test/..") == "http://x.test/"
    assert normalize_url("http://x.test/a/..b") != normalize_url("http://x.test/b")
    assert normalize_url("http://x.test/a//b") != normalize_url("http://x.test/a/b")
    assert normalize_url("https://Bücher.example/x") == "https://xn--bcher-kva.example/x"
    assert normalize_url("http://straße.de/a") == normalize_url("http://xn--strae-oqa.de/a")
    assert normalize_url("http://straße.de/a") != normalize_url("http://strasse.de/a")
    assert normalize_url(None) is None and normalize_url("  ") is None  # no URL, no key


def test_normalize_url_keeps_pages_that_differ_apart():
    # Latin-1 escapes: decoded with replacement, both were ...?name=Jos%EF%BF%BD
    assert normalize_url("http://x.test/s?name=Jos%E9") != normalize_url(
        "http://x.test/s?name=Jos%E8"
    )
    assert normalize_url("http://x.test/s?q=caf%C3%A9") == normalize_url("http://x.test/s?q=café")
    assert normalize_url("http://x.test/s?q=a+b") == normalize_url("http://x.test/s?q=a%20b")
    assert normalize_url("http://[::1]:8080/a") == "http://[::1]:8080/a"
    assert normalize_url("http://[::1]:8080/a") != normalize_url("http://[::1:8080]/a")


def test_invisible_characters_inside_words_are_no_difference():
    assert normalize_text("An exam\u00adple\u200b te\u2060xt\ufeff") == "an example text"


def test_shingles_of_short_texts_and_characters():
    assert shingles("one two", WORD5) == {"one two"}
    assert shingles("", WORD5) == set()
    assert shingles("abcdef", ShingleSpec("char", 4)) == {"abcd", "bcde", "cdef"}


@pytest.mark.parametrize("signer_class", SIGNERS)
def test_signatures_are_deterministic_and_batch_independent(signer_class):
    texts = [a for a, _, _ in pairs(count=12)] + ["", "short text"]
    signer = signer_class(WORD5, 112, seed=3)
    whole = signer.signatures(texts)
    one_by_one = np.vstack([signer_class(WORD5, 112, seed=3).signatures([t]) for t in texts])
    assert whole.dtype == np.uint32 and whole.shape == (len(texts), 112)
    assert np.array_equal(whole, one_by_one)
    assert (whole[-2] == EMPTY).all() and not (whole[-1] == EMPTY).all()
    assert not np.array_equal(whole, signer_class(WORD5, 112, seed=4).signatures(texts))


def test_numpy_signatures_survive_chunking(monkeypatch):
    texts = [a for a, _, _ in pairs(count=8)]
    signer = NumpySigner(WORD5, 64, seed=1)
    expected = signer.signatures(texts)
    monkeypatch.setattr("curation.dedup.minhash.CHUNK_SHINGLES", 100)
    assert np.array_equal(signer.signatures(texts), expected)


@pytest.mark.parametrize("spec", [WORD5, ShingleSpec("char", 24)])
def test_numpy_and_datasketch_estimate_jaccard_equally_well(spec):
    errors = {cls: [] for cls in SIGNERS}
    for a, b, _ in pairs(seed=1, count=40):
        truth = jaccard(shingles(a, spec), shingles(b, spec))
        for cls in SIGNERS:
            sig = cls(spec, 128, seed=1).signatures([a, b])
            errors[cls].append(estimated_jaccard(sig[0], sig[1]) - truth)
    for cls, err in errors.items():
        # Standard error of a 128-permutation estimate is at most sqrt(0.25 / 128) = 0.044.
        assert abs(np.mean(err)) < 0.02, cls
        assert np.sqrt(np.mean(np.square(err))) < 0.06, cls
    rmse = [np.sqrt(np.mean(np.square(e))) for e in errors.values()]
    assert max(rmse) < 1.5 * min(rmse)


@pytest.mark.parametrize("signer_class", SIGNERS)
def test_lsh_bands_catch_close_pairs_and_miss_distant_ones(signer_class):
    """14 bands x 8 rows: P(candidate) is 0.9996 at Jaccard 0.9 and 0.001 at 0.3."""
    signer = signer_class(WORD5, 14 * 8, seed=1)
    rng = random.Random(5)
    for changes, expect in [(1, True), (3, True), (60, False), (120, False)]:
        for _ in range(10):
            words = vocabulary_text(rng, 400)
            a, b = " ".join(words), " ".join(edited(words, rng, changes))
            truth = jaccard(shingles(a, WORD5), shingles(b, WORD5))
            assert (truth >= 0.9) if expect else (truth <= 0.3)
            keys = band_keys(signer.signatures([a, b]), 14, 8)
            assert bool((keys[0] == keys[1]).any()) is expect, (changes, truth)


def test_band_keys_depend_on_every_row_and_the_band():
    sig = np.zeros((3, 4), dtype=np.uint32)
    sig[1, 3] = 1
    keys = band_keys(sig, 2, 2)
    assert keys.dtype == np.int64
    assert keys[0, 0] == keys[1, 0] and keys[0, 1] != keys[1, 1]
    assert keys[0, 0] != keys[0, 1]  # identical values in different bands never collide


def test_keep_rules():
    docs = [
        {"id": "b", "text_length": 10, "fetch_time": 2, "quality_score": 0.2},
        {"id": "a", "text_length": 10, "fetch_time": 3, "quality_score": None},
        {"id": "c", "text_length": 5, "fetch_time": 1, "quality_score": 0.9},
    ]
    assert choose_kept(docs, "longest")["id"] == "a"  # tie on length: smallest id
    assert choose_kept(docs, "earliest")["id"] == "c"
    assert choose_kept(docs, "quality")["id"] == "c"
    unscored = [{**d, "quality_score": None} for d in docs]
    assert choose_kept(unscored, "quality")["id"] == "a"
    assert keep_order("quality", False) == keep_order("longest", False)
    nan = {"id": "0", "text_length": 10, "fetch_time": 2, "quality_score": float("nan")}
    assert choose_kept([nan, *docs], "quality")["id"] == "c"  # NaN is no score, in any order
    assert choose_kept([*docs, nan], "quality")["id"] == "c"


def test_union_find_labels_by_smallest_member():
    labels = UnionFind().components([(3, 4), (4, 5), (1, 2), (5, 0)])
    assert labels == {3: 0, 4: 0, 5: 0, 0: 0, 1: 1, 2: 1}


def test_dedup_config_is_validated():
    config = load_curation_config(overrides=["dedup.minhash.bands=20", "dedup.minhash.rows=13"])
    assert config.dedup.minhash.num_perm == 260
    for bad in ["dedup.minhash.rows=0", "dedup.verify_threshold=1.5", "dedup.keep=random"]:
        with pytest.raises(ConfigError):
            load_curation_config(overrides=[bad])


def test_a_document_longer_than_a_chunk_is_signed_slice_by_slice(monkeypatch):
    """Its (permutations x shingles) matrix was made whole: 448 MB for a million shingles."""
    from curation.dedup import minhash

    texts = ["short one here", " ".join(f"w{i % 997} x{i % 13}" for i in range(3000)), "tail"]
    signer = NumpySigner(WORD5, 112, seed=4)
    whole = signer.signatures(texts)
    monkeypatch.setattr(minhash, "CHUNK_SHINGLES", 500)
    assert np.array_equal(signer.signatures(texts), whole)


def test_a_signing_batch_is_cut_by_rows_and_by_bytes_of_text():
    """Batches were cut by rows alone: 512 long documents held gigabytes in one worker."""
    from curation.spark.dedup import batch_slices

    assert list(batch_slices(np.array([10] * 7), 3, 1000)) == [(0, 3), (3, 6), (6, 7)]
    assert list(batch_slices(np.array([40, 40, 40, 5, 5]), 10, 80)) == [(0, 2), (2, 5)]
    # a document larger than the budget is signed alone, never skipped
    assert list(batch_slices(np.array([5, 500, 5]), 10, 100)) == [(0, 1), (1, 2), (2, 3)]
    assert list(batch_slices(np.array([], dtype=np.int64), 10, 100)) == []
