"""Quality classifier: normalisation, training set, keep rules, fastText on tiny synthetic
classes, and the `train-quality` command's inputs and outputs."""

import dataclasses
import json
import math
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation import textgen
from curation.inputs import InputError
from curation.quality import (
    NEGATIVE,
    POSITIVE,
    QualityDecision,
    QualityModel,
    QualityModelError,
    normalise,
    pareto_draw,
    tie_break,
    top_fraction_threshold,
)
from curation.quality_training import (
    Passage,
    TrainingSetError,
    TrainParams,
    _group,
    _url_of,
    build_training_set,
    main,
    normalise_url,
    read_texts,
    roc_auc,
    train_quality_model,
    without_positives,
)

# fastText's 2 million hash buckets make a 490 MB model; the tests' few passages need few
BUCKET = 200_000

# ----------------------------------------------------------------------------- normalisation


def test_normalise_removes_source_artefacts():
    wikitext = " = = Early life = = \n The well @-@ known <unk> river , 1 @,@ 200 km long .\n"
    web = "<p>The well-known river, 1,200 km long.</p>"
    assert normalise(wikitext) == normalise(web)
    assert normalise(web) == [
        "the",
        "well",
        "-",
        "known",
        "river",
        ",",
        "0",
        ",",
        "0",
        "km",
        "long",
        ".",
    ]
    assert normalise("Fish &amp; chips") == ["fish", "&", "chips"]


# ----------------------------------------------------------------------------- keep rules


def test_threshold_rule_drops_below_it():
    rule = QualityDecision("threshold", threshold=0.25)
    verdicts = [rule.decide(str(i), s) for i, s in enumerate([0.0, 0.24, 0.25, 0.9])]
    assert verdicts == ["quality:threshold", "quality:threshold", None, None]
    assert QualityDecision("all").decide("a", 0.0) is None


def test_top_fraction_keeps_that_fraction():
    scores = [i / 100 for i in range(100)]
    random.Random(1).shuffle(scores)
    cut = top_fraction_threshold([(s, tie_break(0, f"d{i}")) for i, s in enumerate(scores)], 0.1)
    assert cut[0] == 0.9
    rule = QualityDecision("top_fraction", threshold=cut[0], tie=cut[1])
    assert sum(rule.decide(f"d{i}", s) is None for i, s in enumerate(scores)) == 10
    assert rule.decide("x", 0.5) == "quality:top_fraction"
    assert top_fraction_threshold([], 0.1) is None


@pytest.mark.parametrize(("fraction", "n"), [(0.9, 10), (0.8, 100), (0.8, 1000), (0.1, 133)])
def test_top_fraction_keeps_ceil_of_the_fraction_even_when_scores_tie(fraction, n):
    """fastText saturates: many documents score exactly the floor or 1.0. `score >= quantile`
    kept them all (0.9 of 384 kept 384), and (1 - 0.9) * 10 = 0.0999... kept one too many."""
    ids = [f"doc-{i}" for i in range(n)]
    scores = [1e-5 if i % 3 else 1.0 for i in range(n)]  # two values only
    cut = top_fraction_threshold(
        [(s, tie_break(7, d)) for s, d in zip(scores, ids, strict=True)], fraction
    )
    rule = QualityDecision("top_fraction", threshold=cut[0], seed=7, tie=cut[1])
    kept = sum(rule.decide(d, s) is None for s, d in zip(scores, ids, strict=True))
    assert kept == math.ceil(round(fraction * n, 9))


def test_pareto_rule_is_seeded_and_follows_the_lomax_tail():
    ids = [f"doc-{i}" for i in range(20000)]
    rule = QualityDecision("pareto", pareto_alpha=9.0, seed=3)
    kept = [i for i in ids if rule.decide(i, 0.5) is None]
    # P(pareto(9) > 0.5) = 1.5 ** -9 = 0.026
    assert abs(len(kept) / len(ids) - 1.5**-9) < 0.005
    assert kept == [i for i in ids if rule.decide(i, 0.5) is None]  # same seed, same docs
    other = QualityDecision("pareto", pareto_alpha=9.0, seed=4)
    assert kept != [i for i in ids if other.decide(i, 0.5) is None]
    assert all(rule.decide(i, 1.0) is None for i in ids[:1000])  # score 1: draw > 0
    assert pareto_draw(3, "doc-1", 9.0) == pareto_draw(3, "doc-1", 9.0)


# ----------------------------------------------------------------------------- training set


def docs(prefix: str, lengths: list[int]) -> list[tuple[str, str]]:
    rng = random.Random(prefix)
    return [
        (f"{prefix}{i}", " ".join("".join(rng.choices("abcdefgh", k=6)) for _ in range(n)))
        for i, n in enumerate(lengths)
    ]


def test_negative_pages_of_one_host_are_all_trained_on_or_all_held_out():
    params = TrainParams(max_tokens=50, min_tokens=5, heldout=0.3, seed=1, bucket=BUCKET)
    positives = docs("wiki", [60] * 40)
    pages = docs("page", [60] * 120)
    negatives = [
        (f"crawl:{k}|https://site{i % 12}.example/{k}", t) for i, (k, t) in enumerate(pages)
    ]
    data = build_training_set(positives, negatives, params)
    host = {k: k.split("|")[1].split("/")[2] for k, _ in negatives}
    train_hosts = {host[p.document] for p in data.train if p.label == NEGATIVE}
    heldout_hosts = {host[p.document] for p in data.heldout if p.label == NEGATIVE}
    assert train_hosts and heldout_hosts and not train_hosts & heldout_hosts


def test_a_bar_in_a_url_does_not_move_its_page_off_its_host(tmp_path):
    """Keys are `id|url`, and the URL was taken after the last `|`: a page of
    `?fonts=Roboto|Open+Sans` was of host `Open+Sans`, held out apart from its host."""
    rows = [{"id": "1", "url": "https://shop.example/p?fonts=Roboto|Open+Sans", "text": "t"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "docs.parquet")
    ((key, _),) = read_texts(str(tmp_path / "docs.parquet"))
    passage = Passage(label=NEGATIVE, document=key, tokens=["t"])
    assert _group(passage) == "host:shop.example"
    assert _url_of(key) == normalise_url("https://shop.example/p?fonts=Roboto|Open+Sans")


def referenced_texts(tmp_path, rows: list[dict], references: str) -> list[str]:
    """The texts of `rows` (a documents Parquet) that `references` (a URL list) cites."""
    from curation.quality_training import referenced_documents

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "docs.parquet")
    (tmp_path / "refs.txt").write_text(references)
    found = referenced_documents(str(tmp_path / "refs.txt"), [str(tmp_path / "docs.parquet")])
    return [text for _, text in found]


def test_a_malformed_reference_url_or_corpus_url_is_skipped_not_a_traceback(tmp_path, capsys):
    rows = [
        {"id": "1", "url": "http://example.com:99999/x", "text": "bad port"},
        {"id": "2", "url": "http://[bad/x", "text": "bad IPv6"},
        {"id": "3", "url": "https://cited.example/a", "text": "cited"},
    ]
    references = "http://[oops/\nhttps://cited.example/a\n"
    assert referenced_texts(tmp_path, rows, references) == ["cited"]
    assert "1 malformed URL(s) skipped" in capsys.readouterr().err


def test_reference_urls_found_in_no_document_are_said_so(tmp_path):
    """It said the positives were too short, when no reference URL was in the corpus."""
    rows = [{"id": "1", "url": "https://other.example/", "text": "a page"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "docs.parquet")
    (tmp_path / "refs.txt").write_text("https://cited.example/a\n")
    argv = [
        "--reference-urls",
        str(tmp_path / "refs.txt"),
        "--corpus",
        str(tmp_path / "docs.parquet"),
    ]
    argv += ["--negatives", str(tmp_path / "docs.parquet"), "--output", str(tmp_path / "model")]
    with pytest.raises(TrainingSetError, match="none of the URLs of .*refs.txt is a document of"):
        main(argv)


def test_reference_urls_match_with_bars_escaped_or_not_and_without_a_scheme(tmp_path):
    rows = [
        {"id": "1", "url": "https://wiki.example/wiki/A%7CB", "text": "escaped bar"},
        {"id": "2", "url": "https://wiki.example/wiki/C|D", "text": "raw bar"},
        {"id": "3", "url": "wiki.example/noscheme", "text": "no scheme"},
        {"id": "4", "url": "https://wiki.example/other", "text": "not cited"},
    ]
    refs = "https://wiki.example/wiki/A%7CB\nhttps://wiki.example/wiki/C%7CD\n"
    refs += "wiki.example/noscheme\n"
    assert sorted(referenced_texts(tmp_path, rows, refs)) == ["escaped bar", "no scheme", "raw bar"]


def test_a_referenced_page_among_the_negatives_is_left_out_of_them():
    page = ("extract:abc|https://www.news.example/story/", "a cited story")
    cited = ("extract:abc|https://www.news.example/story/", "a cited story")
    copy = ("other:9|http://news.example/story", "the same page from another source")
    kept, left_out = without_positives([page, copy, ("c4:1|", "web text")], [cited], [cited])
    assert kept == [("c4:1|", "web text")] and left_out == 2


def test_negatives_that_are_all_positives_are_said_to_be(tmp_path, capsys):
    """It said "no passage of the negatives is left (none is long enough)"."""
    from refinery.cli import main as refinery

    pages = [{"url": f"https://wiki.example/{i}", "text": "an article " * 50} for i in range(3)]
    (tmp_path / "pages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pages))
    both = str(tmp_path / "pages.jsonl")
    argv = ["train-quality", "--positives", both, "--negatives", both]
    assert refinery([*argv, "--output", str(tmp_path / "m")]) == 2
    said = capsys.readouterr().err
    assert "each of the 3 negatives is also a positive (the same URL or document)" in said


def test_same_named_files_of_the_two_classes_leave_no_negative_out(tmp_path):
    """Keys of lines name the file and the line: line 1 of pos/train.jsonl dropped line 1
    of neg/train.jsonl as if it were the same document."""
    for side, texts in (("pos", ["a cited article"]), ("neg", ["a web page", "another page"])):
        (tmp_path / side).mkdir()
        lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
        (tmp_path / side / "train.jsonl").write_text(lines)
    positives = list(read_texts(str(tmp_path / "pos" / "train.jsonl")))
    negatives = list(read_texts(str(tmp_path / "neg" / "train.jsonl")))
    assert without_positives(negatives, positives, []) == (negatives, 0)


def test_training_set_is_balanced_length_matched_deduplicated_and_split_by_document():
    params = TrainParams(max_tokens=50, min_tokens=5, heldout=0.3, seed=1, bucket=BUCKET)
    positives = docs("p", [400] * 20)  # long: cut into 50-token passages
    negatives = docs("n", [8, 12, 30, 45] * 30)  # short
    shared = ("dup", "the same text in both classes is no evidence for either")
    data = build_training_set([*positives, shared], [*negatives, shared], params)
    for split in (data.train, data.heldout):
        pos = [p for p in split if p.label == POSITIVE]
        neg = [p for p in split if p.label == NEGATIVE]
        assert len(pos) == len(neg) > 0
        assert sorted(len(p.tokens) for p in pos) == sorted(len(p.tokens) for p in neg)
        assert all(p.document != "dup" for p in split)
    texts = [" ".join(p.tokens) for p in data.train + data.heldout]
    assert len(texts) == len(set(texts))
    assert not {p.document for p in data.train} & {p.document for p in data.heldout}
    again = build_training_set([*positives, shared], [*negatives, shared], params)
    assert [p.tokens for p in again.train] == [p.tokens for p in data.train]
    # the inputs listed or stored in another order give the same training set
    shuffled = build_training_set([shared, *positives[::-1]], [*negatives[::-1], shared], params)
    assert [p.tokens for p in shuffled.train] == [p.tokens for p in data.train]


def test_roc_auc_on_known_lists():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5


def test_url_normalisation_matches_the_same_page():
    same = [
        "https://www.Example.org/a/b/?utm_source=x&y=2&x=1#top",
        "http://example.org:80/a/b?x=1&y=2",
    ]
    assert len({normalise_url(u) for u in same}) == 1
    assert normalise_url("https://example.org/a/c") != normalise_url(same[0])


# ----------------------------------------------------------------------------- fastText


def synthetic_classes(n: int = 60) -> tuple[list, list]:
    """Articles from the text generator vs keyword spam and bare lists."""
    rng = random.Random(5)
    positives = [(f"a{i}", "\n".join(textgen.write_article(rng).paragraphs)) for i in range(n)]
    negatives = []
    for i in range(n):
        title, paragraphs = textgen.keyword_spam(rng)
        items = textgen.list_items(rng)
        negatives.append((f"s{i}", "\n".join([title, *paragraphs, *items])))
    return positives, negatives


def spam_page(seed: int) -> str:
    title, paragraphs = textgen.keyword_spam(random.Random(seed))
    return "\n".join([title, *paragraphs])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    positives, negatives = synthetic_classes()
    params = TrainParams(max_tokens=64, min_tokens=10, epoch=5, bucket=BUCKET)
    metrics = train_quality_model(positives, negatives, out, params)
    return out, metrics, params


def test_fasttext_separates_tiny_synthetic_classes(trained):
    out, metrics, _ = trained
    assert metrics["roc_auc"] > 0.95 and metrics["heldout_passages"] > 0
    assert json.loads((out / "metrics.json").read_text()) == metrics
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["seed"] == 0
    assert manifest["counts"]["train"][POSITIVE] == manifest["counts"]["train"][NEGATIVE]
    model = QualityModel.load(out)
    article = "\n".join(textgen.write_article(random.Random(99)).paragraphs)
    good, bad = model.score([article, spam_page(99)])
    assert good > 0.5 > bad
    assert model.score([]) == []
    # nothing the model knows: no evidence, so no quality (not the end-of-line token's score)
    assert model.score(["", "   ", None, "qzxv wvvq xkcdq", "\u00a0"]) == [0.0] * 5
    assert model.score(["qzxv " + article])[0] > 0.5  # an unknown word among known ones


def test_training_is_deterministic(trained, tmp_path):
    out, metrics, params = trained
    positives, negatives = synthetic_classes()
    again = train_quality_model(positives, negatives, tmp_path, params)
    assert again == metrics
    assert (tmp_path / "train.txt").read_bytes() == (out / "train.txt").read_bytes()
    texts = [t for _, t in positives[:5] + negatives[:5]]
    assert QualityModel.load(tmp_path).score(texts) == QualityModel.load(out).score(texts)


def test_a_retrain_stopped_midway_leaves_no_finished_looking_folder(trained, tmp_path, monkeypatch):
    """A retrain in place kept the old metrics.json (make demo's done check) and model.json
    beside a model.bin cut short: the rerun skipped training and classify blamed a copy."""
    import fasttext

    out, _, params = trained
    for file in out.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fasttext, "train_supervised", killed)
    positives, negatives = synthetic_classes()
    with pytest.raises(KeyboardInterrupt):
        train_quality_model(positives, negatives, tmp_path, params)
    for finished in ("metrics.json", "manifest.json", "model.json", "model.bin"):
        assert not (tmp_path / finished).exists(), finished
    with pytest.raises(QualityModelError, match="not a quality model"):
        QualityModel.load(tmp_path)


def test_load_takes_the_folder_or_its_model_bin_and_no_other_file(trained, tmp_path):
    """Another file named in the folder loaded the folder's model.bin, and scored with it."""
    out = shutil.copytree(trained[0], tmp_path / "model")
    texts = ["A plain sentence about rivers and hills."]
    assert QualityModel.load(out / "model.bin").score(texts) == QualityModel.load(out).score(texts)
    shutil.copy(out / "model.bin", out / "other.bin")
    for name in ("other.bin", "heldout.txt"):
        with pytest.raises(QualityModelError, match=f"{name}: a quality model is the folder"):
            QualityModel.load(out / name)


def test_load_refuses_a_folder_without_a_model(tmp_path):
    with pytest.raises(QualityModelError, match="not a quality model"):
        QualityModel.load(tmp_path)


def damaged(trained, tmp_path, name: str, content: bytes) -> Path:
    out, _, _ = trained
    for file in ("model.bin", "model.json"):
        (tmp_path / file).write_bytes((out / file).read_bytes())
    (tmp_path / name).write_bytes(content)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("model.bin", bytes(range(256)) * 4, "model.bin: not a fastText model"),
        ("model.json", b"{bad", "model.json: not JSON"),
        ("model.json", b'{"normalisation": 1}', "no integer max_tokens"),
    ],
)
def test_load_names_a_damaged_file(trained, tmp_path, name, content, message):
    folder = damaged(trained, tmp_path, name, content)
    if name == "model.bin":  # a model.json from before model_bytes: fastText's own check
        info = json.loads((folder / "model.json").read_text())
        del info["model_bytes"]
        (folder / "model.json").write_text(json.dumps(info))
    with pytest.raises(QualityModelError, match=message):
        QualityModel.load(folder)


def test_load_refuses_a_cut_copy_fasttext_would_load(trained, tmp_path):
    """fastText loads a model.bin cut short and scores every text 0.5: classify kept all."""
    whole = (trained[0] / "model.bin").read_bytes()
    folder = damaged(trained, tmp_path, "model.bin", whole[:-1000])
    with pytest.raises(
        QualityModelError, match=r"model.bin: [\d,]+ bytes where .* says .*incomplete"
    ):
        QualityModel.load(folder)


def test_load_refuses_a_model_without_the_quality_label(trained, monkeypatch):
    # a fastText model trained elsewhere (__label__1 / __label__0) would score every text 0.
    # Its labels are faked: fastText hits NaN at random when trained on a tiny file.
    import fasttext

    out, _, _ = trained
    load = fasttext.load_model

    def other_labels(path):
        model = load(path)
        model.get_labels = lambda: ["__label__1", "__label__0"]
        return model

    monkeypatch.setattr(fasttext, "load_model", other_labels)
    with pytest.raises(QualityModelError, match="no __label__hq label"):
        QualityModel.load(out)


# ----------------------------------------------------------------------------- command


def test_command_reads_parquet_jsonl_and_text(tmp_path, capsys):
    positives, negatives = synthetic_classes(40)
    (tmp_path / "pos.txt").write_text("\n\n".join(t.replace("\n", " ") for _, t in positives[:20]))
    with (tmp_path / "pos.jsonl").open("w") as out:
        for key, text in positives[20:]:
            out.write(json.dumps({"text": text, "url": f"https://x.example/{key}"}) + "\n")
    rows = [{"id": k, "url": f"https://{k}.n.example/", "text": t} for k, t in negatives]
    (tmp_path / "neg").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "neg" / "part-0.parquet")
    assert len(list(read_texts(str(tmp_path / "pos.txt")))) == 20
    out = tmp_path / "model"
    # one flag with two sources, as the README writes it (repeating the flag works too)
    argv = ["--positives", str(tmp_path / "pos.txt"), str(tmp_path / "pos.jsonl")]
    argv += ["--negatives", str(tmp_path / "neg"), "--output", str(out), "--max-tokens", "64"]
    assert main([*argv, "--bucket", str(BUCKET), "--heldout", "0.3"]) == 0
    said = capsys.readouterr()
    assert "ROC-AUC" in said.out
    assert "warning: the metrics rest on " in said.err  # 40 documents a class hold out few
    sources = json.loads((out / "manifest.json").read_text())["sources"]
    assert [s["documents"] for s in sources["positives"]] == [20, 20]
    assert sources["negatives"][0]["documents"] == 40
    assert QualityModel.load(out).max_tokens == 64
    argv[argv.index(str(out))] = str(tmp_path / "unevaluated")
    assert main([*argv, "--bucket", str(BUCKET), "--heldout", "0.0001"]) == 0
    assert "(not evaluated: no passage was held out; raise --heldout" in capsys.readouterr().out
    # negatives of one host: every page of it lies on one side, whatever --heldout says
    one_host = [{**row, "url": f"https://one.example/{i}"} for i, row in enumerate(rows)]
    pq.write_table(pa.Table.from_pylist(one_host), tmp_path / "neg" / "part-0.parquet")
    argv[argv.index(str(tmp_path / "unevaluated"))] = str(tmp_path / "one-host")
    assert main([*argv, "--bucket", str(BUCKET), "--heldout", "0.3"]) == 0
    assert "negatives make 1 such group(s): give more negatives, of more hosts" in (
        capsys.readouterr().out
    )


def test_too_little_data_says_what_is_missing(tmp_path):
    """It said "raise --heldout" when every pair was held out, and blamed hosts when there
    were no negatives at all, or when every passage was in both classes."""
    params = TrainParams(max_tokens=50, min_tokens=5, seed=1, bucket=BUCKET)
    positives = docs("wiki", [60] * 40)
    negatives = [
        (f"c:{k}|https://s{i}.example/{k}", t) for i, (k, t) in enumerate(docs("p", [60] * 40))
    ]
    cases = [
        ([], "no passage of the negatives is left \\(none is long enough\\)"),
        (positives, "no passage of the positives is left \\(each is also among the other"),
    ]
    for given, message in cases:
        with pytest.raises(TrainingSetError, match=message):
            train_quality_model(positives, given, tmp_path / "m", params)
    almost_all = dataclasses.replace(params, heldout=0.99)
    with pytest.raises(TrainingSetError, match="hold out less than --heldout 0.99"):
        train_quality_model(positives, negatives, tmp_path / "m", almost_all)


def test_a_diverged_training_is_said_and_leaves_no_folder(tmp_path, monkeypatch):
    import fasttext

    def diverge(**kwargs):
        assert (tmp_path / "model" / "train.txt").exists()
        raise RuntimeError("Encountered NaN.")

    monkeypatch.setattr(fasttext, "train_supervised", diverge)
    positives, negatives = synthetic_classes(20)
    params = TrainParams(max_tokens=64, min_tokens=10, bucket=100)
    with pytest.raises(TrainingSetError, match=r"diverged \(NaN\) at --lr 0.5 with --bucket 100"):
        train_quality_model(positives, negatives, tmp_path / "model", params)
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (["--heldout", "1.5"], "--heldout must be in (0, 1), got 1.5"),
        (["--min-tokens", "0"], "--min-tokens (0) must be in 1..--max-tokens"),
        (["--epoch", "0"], "--epoch must be at least 1"),
        # fastText's C++ int: a bare TypeError, after the model already there was deleted
        (["--seed", str(2**32)], "--seed must fit a 32-bit integer"),
        (["--bucket", str(2**31)], "--bucket must fit a 32-bit integer"),
    ],
)
def test_command_refuses_settings_it_cannot_train_with(tmp_path, capsys, argument, message):
    from refinery.cli import main as refinery

    (tmp_path / "p.txt").write_text("some text")
    sources = ["--positives", str(tmp_path / "p.txt"), "--negatives", str(tmp_path / "p.txt")]
    assert refinery(["train-quality", *sources, "--output", str(tmp_path / "m"), *argument]) == 2
    assert message in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(SystemExit) as stopped:  # argparse's usage error
        refinery(["train-quality", *sources, "--output", str(afile)])
    assert stopped.value.code == 2 and "is a file" in capsys.readouterr().err


def test_reference_urls_pick_positives_from_the_corpus(tmp_path):
    rows = [
        {"id": "1", "url": "https://www.cited.example/page/", "text": "cited"},
        {"id": "2", "url": "https://other.example/", "text": "not cited"},
    ]
    assert referenced_texts(tmp_path, rows, "http://cited.example/page\n") == ["cited"]


@pytest.mark.parametrize(
    "name, keys",
    [
        ("docs.txt", ["docs.txt:1", "docs.txt:2"]),
        ("docs.jsonl", ["docs.jsonl:1|", "docs.jsonl:2|"]),
        ("docs.parquet", ["a|u1", "b|u2"]),  # an id, whatever part file holds it
    ],
)
def test_the_heldout_split_does_not_depend_on_how_the_path_is_written(
    tmp_path, monkeypatch, name, keys
):
    texts = ["first document", "second document"]
    if name.endswith(".txt"):
        (tmp_path / name).write_text("".join(t + "\n" for t in texts))
    elif name.endswith(".jsonl"):
        (tmp_path / name).write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    else:
        table = pa.table({"id": ["a", "b"], "url": ["u1", "u2"], "text": texts})
        pq.write_table(table, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    read = list(read_texts(name))
    assert read == list(read_texts(str(tmp_path / name)))
    assert [key for key, _ in read] == keys  # the file's name, not the path as written


def test_a_stage_output_cut_into_other_parts_trains_the_same_model(tmp_path):
    """`--negatives A/extract/*.parquet`: the keys named each part file, which Spark cuts by
    its settings, so the seeded sample and held-out split (and the model: ROC-AUC 0.852 vs
    0.866) followed the layout of identical documents."""
    rows = [
        {"id": f"id{i:03d}", "url": f"https://x.test/{i}", "text": f"page {i}"} for i in range(40)
    ]
    for run, parts in (("A", 4), ("B", 2)):
        folder = tmp_path / run / "extract"
        folder.mkdir(parents=True)
        for i in range(parts):
            pq.write_table(pa.Table.from_pylist(rows[i::parts]), folder / f"part-{i}.parquet")
    keys = {
        run: sorted(
            k for p in sorted((tmp_path / run / "extract").iterdir()) for k, _ in read_texts(str(p))
        )
        for run in ("A", "B")
    }
    assert keys["A"] == keys["B"]
    # and a folder of another name
    assert sorted(read_texts(str(tmp_path / "A" / "extract"))) == sorted(
        (k, t)
        for p in sorted((tmp_path / "B" / "extract").iterdir())
        for k, t in read_texts(str(p))
    )


def test_an_output_inside_an_input_folder_is_refused(tmp_path, capsys):
    """It wrote model.bin and train.txt into OUT/extract, which later stages then read."""
    (tmp_path / "extract").mkdir()
    (tmp_path / "pos.txt").write_text("a document\n")
    for output in (tmp_path / "extract", tmp_path / "extract" / "model"):
        argv = ["--positives", str(tmp_path / "pos.txt"), "--negatives", str(tmp_path / "extract")]
        with pytest.raises(SystemExit):
            main([*argv, "--output", str(output)])
        assert "is inside the input folder" in capsys.readouterr().err
    assert list((tmp_path / "extract").iterdir()) == []


def test_help_shows_no_default_for_a_required_option(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "text with a document per line (default" not in said  # --negatives: required
    assert "model folder to write (default" not in said and "(default: 0)" in said


def test_bad_sources_are_named(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"body": "no text"}\n')
    with pytest.raises(TrainingSetError, match=r"bad.jsonl: line 2: no string `text`"):
        list(read_texts(str(tmp_path / "bad.jsonl")))
    with pytest.raises(TrainingSetError, match="no such file"):
        list(read_texts(str(tmp_path / "missing.txt")))
    (tmp_path / "latin1.jsonl").write_bytes('{"text": "ok"}\n{"text": "café"}\n'.encode("latin-1"))
    with pytest.raises(TrainingSetError, match=r"latin1.jsonl: line 2: byte b'\\xe9' is not UTF"):
        list(read_texts(str(tmp_path / "latin1.jsonl")))
    lines = "a fine line\n" * 3000 + "café\n"  # far past the first 8 KiB a text reader decodes
    (tmp_path / "latin1.txt").write_bytes(lines.encode("latin-1"))
    with pytest.raises(TrainingSetError, match=r"latin1.txt: line 3001: byte b'\\xe9' is not"):
        list(read_texts(str(tmp_path / "latin1.txt")))
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "ints.parquet")
    with pytest.raises(TrainingSetError, match=r"ints.parquet: its `text` column is int64"):
        list(read_texts(str(tmp_path / "ints.parquet")))
    (tmp_path / "web.NDJSON").write_text('{"text": "read as JSON Lines"}\n')
    assert [t for _, t in read_texts(str(tmp_path / "web.NDJSON"))] == ["read as JSON Lines"]
    (tmp_path / "web.txt").write_text('{"text": "JSON named as text"}\n')
    with pytest.raises(TrainingSetError, match=r"web.txt: line 1 is a JSON object: name a JSON"):
        list(read_texts(str(tmp_path / "web.txt")))
    for name in ("web.jsonl.gz", "sms.tsv"):
        (tmp_path / name).write_bytes(b"\x1f\x8b")
        with pytest.raises(TrainingSetError, match=rf"{name}: a .\w+ file is not read here"):
            list(read_texts(str(tmp_path / name)))
    for name in ("CC-0.warc", "old.arc", "CC-0.warc.wet", "CC-1.warc.gz"):  # not text
        (tmp_path / name).write_bytes(b"WARC/1.0\r\nWARC-Type: warcinfo\r\n")
        with pytest.raises(TrainingSetError, match=rf"{name}: a WARC/ARC/WET file: `refinery"):
            list(read_texts(str(tmp_path / name)))
    crawl = tmp_path / "crawl"  # a folder of WARCs is named for what it is
    crawl.mkdir()
    (crawl / "CC-0.warc.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(InputError, match=r"crawl holds no Parquet file \(WARC files: `refinery"):
        list(read_texts(str(crawl)))
    pq.write_table(pa.table({"text": ["a [bracketed] name"]}), tmp_path / "docs[1].parquet")
    assert [t for _, t in read_texts(str(tmp_path / "docs[1].parquet"))] == ["a [bracketed] name"]
    (tmp_path / "few.txt").write_text("too short\n")
    with pytest.raises(TrainingSetError, match="too little data"):
        train_quality_model([("a", "too short")], [("b", "also short")], tmp_path, TrainParams())


def test_a_quality_model_missing_where_the_scorer_runs_fails_the_task(tmp_path):
    from curation.classify import DocumentScorer
    from refinery.errors import ExecutorSetupError

    scorer = DocumentScorer(tmp_path / "gone", labeller=None)
    with pytest.raises(ExecutorSetupError, match=r"quality.model cannot be loaded \(on host"):
        scorer.score(["https://x.example/"], ["x.example"], ["text"])
