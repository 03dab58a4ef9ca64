"""Chat/preference readers: every layout on an inline sample, and the real shared files."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from train_helpers import REPO

from training.chat_data import (
    ChatDataError,
    Preference,
    detect_layout,
    pairwise_winner,
    read_conversations,
    read_preferences,
    read_prompts,
)

SHARED = REPO.parent / "shared" / "data"


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_alpaca_with_input_system_and_history(tmp_path):
    record = {
        "instruction": "Add the numbers.",
        "input": "2 and 3",
        "output": "5",
        "system": "Be brief.",
        "history": [["Hi", "Hello!"]],
    }
    path = tmp_path / "a.json"
    path.write_text(json.dumps([record, {"instruction": "Say hi.", "input": "", "output": "Hi"}]))
    first, second = read_conversations(path)
    assert first == [
        {"role": "system", "content": "Be brief."},
        user("Hi"),
        assistant("Hello!"),
        user("Add the numbers.\n\n2 and 3"),
        assistant("5"),
    ]
    assert second == [user("Say hi."), assistant("Hi")]
    assert read_prompts(path)[1] == [user("Say hi.")]
    path.write_text(json.dumps([{"instruction": "Say hi.", "input": None, "output": "Hi"}]))
    assert read_conversations(path) == [second]  # a null input is no input


def test_messages_and_sharegpt_give_the_same_conversation(tmp_path):
    messages = {"messages": [user("Q"), assistant("A")]}
    sharegpt = {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}
    path = write_jsonl(tmp_path / "m.jsonl", [messages, sharegpt])
    assert read_conversations(path) == [[user("Q"), assistant("A")]] * 2
    assert read_prompts(path) == [[user("Q")]] * 2


def test_a_file_that_starts_with_a_byte_order_mark_is_read(tmp_path):
    bom = "\ufeff"
    array = tmp_path / "a.json"
    array.write_text(bom + json.dumps([{"instruction": "Q", "output": "A"}]), encoding="utf-8")
    lines = tmp_path / "l.jsonl"
    lines.write_text(bom + json.dumps({"messages": [user("Q"), assistant("A")]}), encoding="utf-8")
    assert read_conversations(array) == read_conversations(lines) == [[user("Q"), assistant("A")]]


def test_a_chat_record_whose_label_names_a_category_is_not_kto(tmp_path):
    dialogue = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]
    path = write_jsonl(tmp_path / "sg.jsonl", [{"conversations": dialogue, "label": "greeting"}])
    assert read_conversations(path) == [[user("Hi"), assistant("Hello!")]]


def test_self_instruct_gives_one_conversation_per_instance(tmp_path):
    record = {
        "id": "t1",
        "instruction": "Reverse the word.",
        "instances": [{"input": "cat", "output": "tac"}, {"input": "dog", "output": "god"}],
    }
    path = write_jsonl(tmp_path / "s.jsonl", [record])
    assert read_conversations(path) == [
        [user("Reverse the word.\n\ncat"), assistant("tac")],
        [user("Reverse the word.\n\ndog"), assistant("god")],
    ]
    assert len(read_prompts(path)) == 2


def test_hh_dialogue_shared_prefix_is_the_prompt(tmp_path):
    prefix = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how do I bake bread?"
    record = {
        "chosen": prefix + "\n\nAssistant: Mix flour, water, yeast; knead; bake.",
        "rejected": prefix + "\n\nAssistant: Buy it.",
    }
    empty = {"chosen": prefix + "\n\nAssistant: ", "rejected": prefix + "\n\nAssistant: No."}
    path = tmp_path / "hh.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(record) + "\n" + json.dumps(empty) + "\n")
    skipped = Counter()
    (pair,) = read_preferences(path, skipped)
    assert pair == Preference(
        [user("hi"), assistant("hello"), user("how do I bake bread?")],
        "Mix flour, water, yeast; knead; bake.",
        "Buy it.",
    )
    assert skipped == {"empty": 1}
    assert read_conversations(path)[0][-1] == assistant("Mix flour, water, yeast; knead; bake.")
    assert read_prompts(path) == [pair.prompt] * 2  # a prompt needs no usable answer


def test_llamafactory_dpo_pairs(tmp_path):
    record = {
        "conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q"}],
        "chosen": {"from": "gpt", "value": "good"},
        "rejected": {"from": "gpt", "value": "bad"},
    }
    path = tmp_path / "dpo.json"
    path.write_text(json.dumps([record]))
    (pair,) = read_preferences(path)
    assert pair.prompt == [{"role": "system", "content": "S"}, user("Q")]
    assert (pair.chosen, pair.rejected) == ("good", "bad")


def test_a_top_level_system_prompt_opens_the_conversation(tmp_path):
    """LLaMA-Factory's ShareGPT layout keeps the system prompt beside the conversation."""
    turns = [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]
    system = {"role": "system", "content": "Be a pirate."}
    records = [
        {"conversations": turns, "system": "Be a pirate."},
        {"messages": [system, user("Q"), assistant("A")], "system": "Be a pirate."},
        {"messages": [user("Q"), assistant("A")], "system": "Be a pirate."},
        {"messages": [system, user("Q"), assistant("A")], "system": "Be a parrot."},
    ]
    skipped = Counter()
    conversations = read_conversations(write_jsonl(tmp_path / "s.jsonl", records), skipped)
    assert conversations == [[system, user("Q"), assistant("A")]] * 3
    assert skipped == {"malformed: a system field and a different system turn": 1}
    pair = {
        "conversations": turns[:1],
        "system": "Be a pirate.",
        "chosen": {"from": "gpt", "value": "Arr"},
        "rejected": {"from": "gpt", "value": "Hello"},
    }
    path = write_jsonl(tmp_path / "p.jsonl", [pair])
    assert read_preferences(path) == [Preference([system, user("Q")], "Arr", "Hello")]
    assert read_prompts(path) == [[system, user("Q")]]


def test_prompt_pairs_with_text_or_messages(tmp_path):
    records = [
        {"prompt": "Q", "chosen": "good", "rejected": "bad"},
        {"prompt": [user("Q")], "chosen": [assistant("good")], "rejected": [assistant("bad")]},
        {"prompt": "Q", "chosen": "same", "rejected": "same"},
    ]
    skipped = Counter()
    pairs = read_preferences(write_jsonl(tmp_path / "p.jsonl", records), skipped)
    assert pairs == [Preference([user("Q")], "good", "bad")] * 2
    assert skipped == {"identical answers": 1}


def test_a_text_prompt_holding_an_hh_dialogue_is_read_as_its_turns(tmp_path):
    """Dahoas rm-static / full-hh-rlhf: the dialogue up to "Assistant:" in `prompt`."""
    prompt = "\n\nHuman: Bake bread?\n\nAssistant: Flour, water.\n\nHuman: How long?\n\nAssistant:"
    records = [
        {"prompt": prompt, "response": " An hour.", "chosen": " An hour.", "rejected": " Ages."}
    ]
    (pair,) = read_preferences(write_jsonl(tmp_path / "d.jsonl", records))
    assert pair.prompt == [user("Bake bread?"), assistant("Flour, water."), user("How long?")]
    assert (pair.chosen, pair.rejected) == (" An hour.", " Ages.")


def test_an_empty_rejected_answer_is_a_pair_an_empty_chosen_one_is_not(tmp_path):
    records = [
        {"prompt": "Q", "chosen": "good", "rejected": ""},
        {"prompt": "Q", "chosen": " ", "rejected": "bad"},
    ]
    skipped = Counter()
    pairs = read_preferences(write_jsonl(tmp_path / "p.jsonl", records), skipped)
    assert pairs == [Preference([user("Q")], "good", "")]
    assert skipped == {"empty": 1}


def test_pandalm_majority_vote_and_ties(tmp_path):
    base = {"instruction": "Fix:", "input": "teh", "response1": "the", "response2": "tea"}
    records = [
        {**base, "annotator1": 1, "annotator2": 1, "annotator3": 2},
        {**base, "annotator1": 2, "annotator2": 2, "annotator3": 0},
        {**base, "annotator1": 0, "annotator2": 0, "annotator3": 1},
        {**base, "annotator1": 1, "annotator2": 2, "annotator3": 0},
        {**base, "response1": True, "annotator1": 1, "annotator2": 1, "annotator3": 1},
        {**base, "annotator1": [1], "annotator2": 1},
        {**base, "annotator1": 3, "annotator2": 3, "annotator3": 3},  # no such label: no tie
        {**base, "annotator1": 1, "annotator2": 1, "annotator3": 7},
    ]
    path = tmp_path / "pandalm.json"
    path.write_text(json.dumps(records))
    skipped = Counter()
    pairs = read_preferences(path, skipped)
    assert [(p.chosen, p.rejected) for p in pairs] == [("the", "tea"), ("tea", "the")]
    assert pairs[0].prompt == [user("Fix:\n\nteh")]
    assert skipped == {
        "tie": 2,
        "malformed: response1 is bool, not text": 1,
        "malformed: annotator labels are not 0 (tie), 1 or 2": 3,
    }
    assert len(read_prompts(path)) == 8  # a tie still has a usable prompt


def test_pairwise_winner():
    assert pairwise_winner([1, 1, 2]) == 1
    assert pairwise_winner([2, 0, 2]) == 2
    assert pairwise_winner([0, 0, 1]) is None
    assert pairwise_winner([1, 2, 0]) is None
    assert pairwise_winner([1, 2]) is None


def test_kto_keeps_desirable_answers_for_sft_and_counts_the_rest(tmp_path):
    records = [
        {"messages": [user("Q"), assistant("good")], "label": True},
        {"messages": [user("Q"), assistant("bad")], "label": False},
        {"messages": [user("Q"), assistant("good?")], "label": "true"},
        # a boolean column through pandas: 1 and 0 (a 0 was trained on as a good answer)
        {"messages": [user("Q"), assistant("good 1")], "label": 1},
        {"messages": [user("Q"), assistant("bad 0")], "label": 0},
    ]
    path = write_jsonl(tmp_path / "kto.jsonl", records)
    skipped = Counter()
    assert read_conversations(path, skipped) == [
        [user("Q"), assistant("good")],
        [user("Q"), assistant("good 1")],
    ]
    assert skipped == {
        "undesirable (KTO label false)": 2,
        "malformed: label is str, not true/false": 1,
    }
    skipped.clear()
    assert read_preferences(path, skipped) == []
    assert skipped == {"unpaired (KTO label without a rejected answer)": 5}


@pytest.mark.parametrize("turns", ["messages", "conversations"])
@pytest.mark.parametrize("flag", ["label", "kto_tag"])
def test_kto_in_every_layout_llamafactory_names(tmp_path, turns, flag):
    def record(answer, good):
        dialogue = [{"from": "human", "value": "Q"}, {"from": "gpt", "value": answer}]
        return {turns: dialogue, flag: good}

    path = write_jsonl(tmp_path / "kto.jsonl", [record("good", True), record("bad", False)])
    skipped = Counter()
    assert read_conversations(path, skipped) == [[user("Q"), assistant("good")]]
    assert skipped == {f"undesirable (KTO {flag} false)": 1}
    assert read_prompts(path) == [[user("Q")]] * 2


def test_an_instruction_without_an_output_is_malformed_not_empty(tmp_path):
    records = [
        {"instruction": "Q"},
        {"instruction": "Q", "output": ""},
        {"instruction": "Q", "instances": [{"input": "x"}]},
        {"instruction": "Q", "output": "A"},
    ]
    skipped = Counter()
    assert len(read_conversations(write_jsonl(tmp_path / "a.jsonl", records), skipped)) == 1
    assert skipped == {"malformed: no output": 2, "empty": 1}


def test_a_bad_self_instruct_instance_costs_only_itself(tmp_path):
    instances = [{"input": "1+1", "output": "2"}, {"input": "2+2", "output": ""}, "3+3"]
    path = write_jsonl(tmp_path / "s.jsonl", [{"instruction": "Add.", "instances": instances}])
    skipped = Counter()
    conversations = read_conversations(path, skipped)
    assert conversations == [[user("Add.\n\n1+1"), assistant("2")]]
    assert skipped == {"empty": 1, "malformed: instances[2] is not an object": 1}
    skipped.clear()
    assert read_prompts(path, skipped) == [[user("Add.\n\n1+1")]]
    assert sum(skipped.values()) == 2


def test_hh_prompts_of_dialogues_that_differ_before_their_last_turn(tmp_path):
    """The prompt is the chosen dialogue's up to its last Assistant turn."""
    dialogue = "\n\nHuman: Hi\n\nAssistant: {}\n\nHuman: Help me\n\nAssistant: {}"
    record = {
        "chosen": dialogue.format("Hello", "Sure."),
        "rejected": dialogue.format("Bye", "No."),
    }
    path = write_jsonl(tmp_path / "hh.jsonl", [record])
    assert read_prompts(path) == [[user("Hi"), assistant("Hello"), user("Help me")]]
    skipped = Counter()
    assert read_preferences(path, skipped) == []
    assert skipped == {"malformed: the dialogues differ before their last turn": 1}


def test_a_pairs_prompt_is_usable_whatever_its_answers_are(tmp_path):
    """PPO reads only prompts: answers that DPO would skip do not cost a prompt."""
    records = [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "4"},
        {"prompt": "Name a colour.", "chosen": "", "rejected": "blue"},
        {"prompt": "Say hi.", "chosen": "hi", "rejected": None},
        {"conversations": [{"from": "human", "value": "Pick one."}], "chosen": {}, "rejected": 1},
        {"prompt": [user("Q"), assistant("A")], "chosen": "x", "rejected": "y"},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    skipped = Counter()
    assert read_prompts(path, skipped) == [
        [user("What is 2+2?")],
        [user("Name a colour.")],
        [user("Say hi.")],
        [user("Pick one.")],
    ]
    assert skipped == {"malformed: prompt does not end with a user turn": 1}


def test_skips_are_counted_and_reported(tmp_path, capsys, monkeypatch):
    records = [
        {"messages": [user("Q"), assistant("")]},
        {"messages": [user("Q")]},
        {"messages": [assistant("A"), user("Q"), assistant("A")]},
        {"messages": [{"role": "tool", "content": "x"}, assistant("A")]},
        {"messages": [user("Q"), assistant("A")]},
        {"messages": [user("Q \ud83d"), assistant("A")]},  # json.dumps writes "\\ud83d"
    ]
    skipped = Counter()
    path = write_jsonl(tmp_path / "m.jsonl", records)
    assert len(read_conversations(path, skipped)) == 1
    assert skipped == {
        "malformed: text with a lone surrogate (\\ud800-\\udfff escape)": 1,
        "empty": 1,
        "no assistant answer": 1,
        "malformed: turn 1 is assistant, expected user": 1,
        "malformed: messages[0] has role 'tool'": 1,
    }
    # the caller says the counts, with its own drops; where to find the malformed ones is said
    assert capsys.readouterr().err == (
        f"{path}: first malformed record of each kind: line 3 (malformed: turn 1 is assistant, "
        "expected user), line 4 (malformed: messages[0] has role 'tool'), line 6 (malformed: "
        "text with a lone surrogate (\\ud800-\\udfff escape))\n"
    )
    assert len(read_conversations(path)) == 1
    assert f"{path}: skipped 5 records" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "1")  # under torchrun, rank 0 alone says where they are
    read_conversations(path, Counter())
    assert capsys.readouterr().err == ""


def test_openai_weights_mark_the_turns_not_learnt(tmp_path):
    weighted = {**assistant("Paris"), "weight": 0}
    records = [
        {
            "messages": [
                user("Capital?"),
                weighted,
                user("Sure?"),
                {**assistant("Yes"), "weight": 1},
            ]
        },
        {"messages": [user("Capital?"), weighted]},
        {"messages": [user("Capital?"), {**assistant("Paris"), "weight": 0.5}]},
        # null: a column other rows fill, as HF datasets and pandas write them
        {"messages": [{**user("Hi"), "weight": None}, {**assistant("Hello"), "weight": None}]},
    ]
    skipped = Counter()
    path = write_jsonl(tmp_path / "w.jsonl", records)
    assert read_conversations(path, skipped) == [
        [user("Capital?"), weighted, user("Sure?"), assistant("Yes")],
        [user("Hi"), assistant("Hello")],
    ]
    assert skipped == {
        "no assistant turn to learn (each empty or of weight 0)": 1,
        "malformed: messages[1] weight is 0.5, not 0 or 1": 1,
    }


def test_trl_prompt_completion_prompt_only_and_implicit_prompt_formats(tmp_path):
    """TRL's own dataset formats were refused as fitting no layout."""
    path = write_jsonl(
        tmp_path / "pc.jsonl",
        [
            {"prompt": "Capital of France?", "completion": "Paris."},
            {"prompt": [user("Capital of Peru?")], "completion": [assistant("Lima.")]},
            {"prompt": "Capital of Chad?"},
        ],
    )
    skipped = Counter()
    assert read_conversations(path, skipped) == [
        [user("Capital of France?"), assistant("Paris.")],
        [user("Capital of Peru?"), assistant("Lima.")],
    ]
    assert skipped == {"no assistant answer": 1}
    assert read_prompts(path) == [[user(c)] for c in ("Capital of France?", "Capital of Peru?")] + [
        [user("Capital of Chad?")]
    ]
    with pytest.raises(ChatDataError, match="this prompt_completion record has no chosen"):
        read_preferences(path)
    implicit = [user("Hi"), assistant("Hello"), user("Capital of France?")]
    pairs = write_jsonl(
        tmp_path / "implicit.jsonl",
        [
            {
                "chosen": [*implicit, assistant("Paris.")],
                "rejected": [*implicit, assistant("Rome.")],
            },
            {"chosen": [user("A?"), assistant("a")], "rejected": [user("B?"), assistant("b")]},
        ],
    )
    skipped = Counter()
    assert read_preferences(pairs, skipped) == [Preference(implicit, "Paris.", "Rome.")]
    assert skipped == {"malformed: the dialogues differ before their last turn": 1}
    assert read_prompts(pairs, Counter()) == [implicit]


def test_trl_unpaired_preferences_learn_only_the_desirable_completions(tmp_path):
    """`label: false` completions were learnt as good answers."""
    records = [
        {"prompt": "The sky is", "completion": " blue.", "label": True},
        {"prompt": "The sky is", "completion": " green.", "label": False},
        {"instruction": "Name a colour.", "output": "Loud.", "kto_tag": False},
    ]
    skipped = Counter()
    path = write_jsonl(tmp_path / "unpaired.jsonl", records)
    assert read_conversations(path, skipped) == [[user("The sky is"), assistant(" blue.")]]
    assert skipped == {"undesirable (KTO label false)": 1, "undesirable (KTO kto_tag false)": 1}
    # a class label (IMDb, SST-2) is no feedback, nor a null kto_tag (a column others fill)
    records = [
        {"instruction": "Sentiment?", "input": "Dull.", "output": "negative", "label": 0},
        {"instruction": "Name a colour.", "output": "Blue.", "kto_tag": None},
        {"prompt": "Q?", "chosen": "a", "rejected": "b", "label": 0},
    ]
    path = write_jsonl(tmp_path / "labelled.jsonl", records)
    assert len(read_conversations(path)) == 3


def test_llamafactory_alpaca_preference_format(tmp_path):
    record = {"instruction": "Add.", "input": "2 and 3", "chosen": "5", "rejected": "6"}
    path = write_jsonl(tmp_path / "ap.jsonl", [record])
    prompt = [user("Add.\n\n2 and 3")]
    assert read_preferences(path) == [Preference(prompt, "5", "6")]
    assert read_conversations(path) == [[*prompt, assistant("5")]]
    assert read_prompts(path) == [prompt]


def test_unknown_layout_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"messages": [user("Q"), assistant("A")]}, {"q": 1}])
    with pytest.raises(ChatDataError, match=r"x.jsonl line 2: fits no .*\['q'\]"):
        read_conversations(path)
    path.write_text('{"messages": []}\n{not json\n')
    with pytest.raises(ChatDataError, match="x.jsonl: line 2, column 2: not valid JSON"):
        read_conversations(path)
    array = tmp_path / "y.json"
    array.write_text(json.dumps([{"instruction": "a", "output": "b"}, [1, 2]]))
    with pytest.raises(ChatDataError, match="y.json record 2: fits no"):
        read_prompts(array)


def test_sft_records_are_not_preference_pairs(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "a", "output": "b"}])
    with pytest.raises(ChatDataError, match="a.jsonl line 1: this alpaca record has no chosen"):
        read_preferences(path)


def test_one_pretty_printed_object_is_refused(tmp_path):
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"data": [{"instruction": "a", "output": "b"}]}, indent=2))
    with pytest.raises(ChatDataError, match="one JSON object; expected an array"):
        read_conversations(path)


def test_a_parquet_file_is_named_as_such(tmp_path):
    """It was "line 1: byte b'\\xc0' is not UTF-8 (convert ... iconv ...)"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "alpaca.parquet"
    pq.write_table(pa.Table.from_pylist([{"instruction": "a", "output": "b"}]), path)
    with pytest.raises(ChatDataError, match="alpaca.parquet: a Parquet file; give JSON Lines"):
        read_conversations(path)


def test_missing_file(tmp_path):
    with pytest.raises(ChatDataError, match="file not found"):
        read_conversations(tmp_path / "nope.jsonl")
    with pytest.raises(ChatDataError, match="is a folder, not a file"):
        read_conversations(tmp_path)


def test_a_damaged_gzip_file_is_named(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    data = bytearray(
        gzip.compress(b"".join(b'{"instruction": "Q%d", "output": "A"}\n' % i for i in range(2000)))
    )
    data[200:260] = bytes(60)
    path.write_bytes(bytes(data))
    with pytest.raises(ChatDataError, match=f"{path}: cannot read"):
        read_conversations(path)


def test_demo_sets_in_conf():
    conversations = read_conversations(REPO / "conf/posttrain/demo_sft.jsonl")
    pairs = read_preferences(REPO / "conf/posttrain/demo_preferences.jsonl")
    assert len(conversations) == 40 and len(pairs) == 38
    assert all(c[-1]["role"] == "assistant" for c in conversations)


SHARED_FILES = {
    "sft/alpaca_en_demo.json": ("alpaca", 716, None),
    "sft/alpaca_eval_example_outputs.json": ("alpaca", 570, None),
    "sft/self_instruct_seed_tasks.jsonl": ("self_instruct", 122, None),
    "sft/self_instruct_user_oriented.jsonl": ("self_instruct", 167, None),
    # 9 of 1631 skipped: 4 empty chosen answers, 5 with doubled or diverging Assistant turns
    # (as prompts, only those 5)
    "preference/hh_rlhf_harmless_base_test.jsonl.gz": ("hh", 1622, 1622),
    "preference/llamafactory_dpo_en_demo.json": ("dialog_pair", 206, 206),
    "preference/llamafactory_kto_en_demo.json": ("kto", 103, 0),
    "preference/pandalm_testset_v1.json": ("pairwise", None, None),
}

# Prompts need no usable answer: only HH's 5 malformed dialogues and 1 empty PandaLM
# instruction are skipped.
SHARED_PROMPTS = {
    "preference/hh_rlhf_harmless_base_test.jsonl.gz": 1626,
    "preference/pandalm_testset_v1.json": 690,
}


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_real_shared_files(name):
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    layout, conversations, pairs = SHARED_FILES[name]
    from training.chat_data import iter_records

    assert {detect_layout(r) for _, r in iter_records(path)} == {layout}
    found = read_conversations(path)
    if conversations is not None:
        assert len(found) == conversations
    for conversation in found:
        assert conversation[-1]["role"] == "assistant" and conversation[-1]["content"].strip()
    prompts = read_prompts(path)
    assert prompts and all(p[-1]["role"] == "user" for p in prompts)
    assert len(prompts) == SHARED_PROMPTS.get(name, len(prompts))
    if layout in ("alpaca", "self_instruct"):
        with pytest.raises(ChatDataError, match="has no chosen/rejected pair"):
            read_preferences(path)
        return
    skipped = Counter()
    found_pairs = read_preferences(path, skipped)
    if pairs is not None:
        assert len(found_pairs) == pairs
    if layout == "pairwise":  # 691 judgements: 62 unanimous ties among them; 38 pairs of a
        # majority answer and an empty one are kept
        assert skipped["tie"] >= 62 and len(found_pairs) + sum(skipped.values()) == 691
        assert sum(not p.rejected.strip() for p in found_pairs) == 38


def test_hh_dialogues_whose_leading_newlines_were_stripped_are_read_alike(tmp_path):
    """Without "\\n\\n" before the first "Human:", a prompt was one user turn holding the whole
    transcript, and chosen/rejected dialogues were skipped as not starting with a turn."""
    prompt = "Human: Bake bread?\n\nAssistant: Flour, water.\n\nHuman: How long?\n\nAssistant:"
    records = [{"prompt": prompt, "chosen": " An hour.", "rejected": " Ages."}]
    (pair,) = read_preferences(write_jsonl(tmp_path / "d.jsonl", records))
    assert pair.prompt == [user("Bake bread?"), assistant("Flour, water."), user("How long?")]
    stripped = {"chosen": "Human: 2+2?\n\nAssistant: 4", "rejected": "Human: 2+2?\n\nAssistant: 5"}
    (pair,) = read_preferences(write_jsonl(tmp_path / "hh.jsonl", [stripped]))
    assert pair == Preference([user("2+2?")], "4", "5")
    plain = [{"prompt": "Human: resources, please", "chosen": "a", "rejected": "b"}]
    assert read_preferences(write_jsonl(tmp_path / "p.jsonl", plain))[0].prompt == [
        user("Human: resources, please")  # no Assistant turn: plain text
    ]


def test_trl_columns_win_over_an_extra_messages_column(tmp_path):
    """HuggingFaceH4/ultrafeedback_binarized adds the chosen dialogue as `messages`: it was
    taken for the prompt, and every record skipped ("prompt does not end with a user turn")."""
    question = [user("What is 2+2?")]
    record = {
        "prompt": "What is 2+2?",
        "prompt_id": "0",
        "chosen": [*question, assistant("4")],
        "rejected": [*question, assistant("5")],
        "messages": [*question, assistant("4")],
        "score_chosen": 8.0,
        "score_rejected": 3.0,
    }
    path = write_jsonl(tmp_path / "uf.jsonl", [record])
    assert read_preferences(path) == [Preference(question, "4", "5")]
    assert read_conversations(path) == [[*question, assistant("4")]]
    assert read_prompts(path) == [question]
    # LLaMA-Factory DPO (answers as single objects) with a `prompt` key: its dialogue decides
    turns = [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "2+2?"}]
    factory = {
        "conversations": turns,
        "chosen": {"from": "gpt", "value": "4"},
        "rejected": {"from": "gpt", "value": "5"},
        "prompt": "2+2?",
    }
    (pair,) = read_preferences(write_jsonl(tmp_path / "lf.jsonl", [factory]))
    assert pair.prompt == [{"role": "system", "content": "Be brief."}, user("2+2?")]


def test_a_byte_that_is_not_utf8_is_named_by_its_line(tmp_path):
    path = tmp_path / "cp1252.jsonl"
    path.write_bytes(
        b'{"instruction": "Q", "output": "A"}\n{"instruction": "caf\xe9", "output": "A"}\n'
    )
    with pytest.raises(ChatDataError, match=r"cp1252.jsonl: line 2: byte b'\\xe9' is not UTF-8"):
        read_conversations(path)
    gz = tmp_path / "cp1252.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(ChatDataError, match=r"line 2: byte b'\\xe9' is not UTF-8"):
        read_conversations(gz)


def test_a_prompt_s_answers_and_empty_answers_are_context_not_learnt(tmp_path):
    """TRL learns a prompt-completion record's completion alone; an empty answer learnt would
    teach ending the turn at once (an empty last answer already skips the record)."""
    context = {**assistant("An answer in the prompt."), "weight": 0}
    path = write_jsonl(
        tmp_path / "turns.jsonl",
        [
            {
                "prompt": [user("P1"), assistant("An answer in the prompt."), user("P2")],
                "completion": [assistant("OK")],
            },
            {"messages": [user("a"), assistant("  "), user("c"), assistant("d")]},
            {"instruction": "i", "output": "o", "history": [["u", ""]]},
            {"messages": [user("a"), assistant("")]},
        ],
    )
    skipped = Counter()
    assert read_conversations(path, skipped) == [
        [user("P1"), context, user("P2"), assistant("OK")],
        [user("a"), {**assistant("  "), "weight": 0}, user("c"), assistant("d")],
        [user("u"), {**assistant(""), "weight": 0}, user("i"), assistant("o")],
    ]
    assert skipped == {"empty": 1}
