"""Chat and preference data: every layout of ../shared/data/sft/ and /preference/ as messages.

Files are JSON arrays, JSONL or `.jsonl.gz` (`.json.gz` too). Each record's layout is
recognised by its keys, so one reader serves SFT, the reward model, DPO and PPO prompts:

- alpaca: instruction, input?, output, system?, history? (Alpaca, AlpacaEval)
- self_instruct: instruction, instances [{input, output}], one conversation per instance
- messages: messages [{role, content, weight?}], system? (OpenAI / TRL); an assistant turn
  of `weight` 0 is context, not learnt (OpenAI's fine-tuning format)
- prompt_completion: prompt + completion, as text or messages (TRL's prompt-completion
  format); prompt_only: prompt alone (TRL's format for PPO, RLOO, GRPO)
- sharegpt: conversations [{from, value}] with human/gpt/system, system? (ShareGPT,
  LLaMA-Factory)
- kto: messages or conversations + label or kto_tag (bool), unpaired feedback (LLaMA-Factory
  KTO)
- dialog_pair: conversations/messages + chosen, rejected answer objects (LLaMA-Factory DPO)
- prompt_pair: prompt + chosen, rejected as text or messages (TRL preference format), other
  keys ignored (UltraFeedback-binarized's messages); a text prompt that is an HH dialogue
  ("\\n\\nHuman: ...\\n\\nAssistant:", Dahoas rm-static) is read as its turns
- implicit_pair: chosen, rejected as whole conversations that differ only in their last
  turn (TRL's implicit-prompt preference format)
- alpaca_pair: instruction, input?, system?, history?, chosen, rejected (LLaMA-Factory's
  Alpaca-style preference format)
- hh: chosen, rejected full "\\n\\nHuman: ...\\n\\nAssistant: ..." dialogues (Anthropic HH-RLHF;
  the first "\\n\\n" may be stripped)
- pairwise: instruction, input?, response1, response2, annotator1..n, 0 = tie (PandaLM)

A record that fits a layout but cannot be used (a tie, an empty answer, a malformed field) is
skipped and counted by reason (a Self-Instruct instance on its own); the counts go to the
caller's `skipped` Counter, which the command says with its other counts, or, without one,
to stderr.
A record that fits no layout, or unparseable JSON, stops with the file and line/record.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refinery.errors import RefineryError, unreadable_file
from refinery.jsonl import json_lines
from refinery.utf8 import decode_utf8, is_unicode

Message = dict[str, Any]  # role, content; "weight": 0 on an assistant turn not to be learnt
Conversation = list[Message]

# ShareGPT speaker names -> chat roles (LLaMA-Factory's "human"/"gpt"; OpenAI's own names)
SPEAKERS = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}
HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
HH_ROLES = {"Human": "user", "Assistant": "assistant"}
HH_KEYS = ("chosen", "rejected")


class ChatDataError(RefineryError):
    """A chat/preference file that cannot be read, or a record that fits no known layout."""


class Skip(Exception):
    """A record of a known layout that yields nothing usable; `reason` is counted."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class LayoutMismatch(Exception):
    """A record of a known layout that has no preference pair (an SFT file given to DPO)."""


@dataclass(frozen=True)
class Preference:
    prompt: Conversation  # the messages before the answer; ends with a user turn
    chosen: str
    rejected: str


# ---------------------------------------------------------------- files


def iter_records(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(where, record) for each record: `line N` of JSONL, `record N` of a JSON array."""
    path = Path(path)
    if not path.is_file():
        raise ChatDataError(f"{path}: {unreadable_file(path)}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ChatDataError(f"{path}: cannot read: {err}") from None
    if raw.startswith(b"PAR1"):  # as Hugging Face datasets often ship; its bytes are no text
        raise ChatDataError(
            f"{path}: a Parquet file; give JSON Lines or a JSON array of records (e.g. "
            "pandas.read_parquet(path).to_json(out, orient='records', lines=True))"
        )
    text = decode_utf8(raw, path, ChatDataError)  # a byte that is not UTF-8: its line
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise ChatDataError(f"{path}: not valid JSON: {err}") from None
        for i, record in enumerate(records, start=1):
            yield f"record {i}", record
        return
    if "\n" in text.strip() and _is_one_json_value(text):  # pretty-printed, not JSONL
        raise ChatDataError(f"{path}: one JSON object; expected an array of records or JSONL")
    for number, record in json_lines(text, path, ChatDataError, lone_surrogates=True):
        yield f"line {number}", record


def _is_one_json_value(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def detect_layout(record: Any) -> str | None:
    """The layout name of a record, or None when it fits none."""
    if not isinstance(record, dict):
        return None
    keys = set(record)
    if {"instruction", "instances"} <= keys:
        return "self_instruct"
    if {"chosen", "rejected"} <= keys:
        dialog = keys & {"conversations", "messages"}
        if dialog and isinstance(record["chosen"], dict):  # LLaMA-Factory: one answer object
            return "dialog_pair"
        if "prompt" in keys:  # TRL's columns, whatever else a record has (UltraFeedback's
            return "prompt_pair"  # binarized sets add the chosen dialogue as `messages`)
        if dialog:
            return "dialog_pair"
        if "instruction" in keys:
            return "alpaca_pair"
        if all(isinstance(record[k], list) for k in HH_KEYS):
            return "implicit_pair"
        if all(isinstance(record[k], str) and "\n\nAssistant:" in record[k] for k in HH_KEYS):
            return "hh"
        return None
    if {"response1", "response2"} <= keys and "instruction" in keys:
        return "pairwise"
    if keys & {"messages", "conversations"}:
        return "kto" if _kto_feedback(record) else "messages" if "messages" in keys else "sharegpt"
    if "instruction" in keys:
        return "alpaca"
    if "prompt" in keys:
        return "prompt_completion" if "completion" in keys else "prompt_only"
    return None


def _kto_feedback(record: dict) -> bool:
    """Whether a chat record carries KTO feedback: a `kto_tag`, or a `label` that is true or
    false (as JSON, as 1 or 0, which a boolean column becomes through pandas, or as text: a
    malformed one is counted, not trained on); a `label` naming a category is not feedback."""
    label = record.get("label")
    text = isinstance(label, str) and label.strip().lower() in ("true", "false")
    return record.get("kto_tag") is not None or label in (0, 1) or text


# ---------------------------------------------------------------- messages


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise Skip(f"malformed: {field} is {type(value).__name__}, not text")
    return value


def _required_text(record: dict, field: str) -> str:
    if field not in record:
        raise Skip(f"malformed: no {field}")
    return _text(record[field], field)


def normalise_messages(items: Any, field: str) -> Conversation:
    """[{role, content}] or [{from, value}] -> [{role, content}], roles system/user/assistant."""
    if not isinstance(items, list):
        raise Skip(f"malformed: {field} is not a list")
    messages = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise Skip(f"malformed: {field}[{i}] is not an object")
        speaker = item.get("role", item.get("from"))
        role = SPEAKERS.get(speaker) if isinstance(speaker, str) else None
        if role is None:
            raise Skip(f"malformed: {field}[{i}] has role {speaker!r}")
        content = _text(item.get("content", item.get("value")), f"{field}[{i}] content")
        messages.append({"role": role, "content": content})
        weight = item.get("weight")
        if weight is None:  # absent, or null: a column other rows fill (HF datasets, pandas)
            weight = 1
        if weight not in (0, 1):  # OpenAI's: 0 or 1
            raise Skip(f"malformed: {field}[{i}] weight is {weight!r}, not 0 or 1")
        if weight == 0 and role == "assistant":
            messages[-1]["weight"] = 0
    return messages


def record_messages(record: dict, field: str) -> Conversation:
    """`record[field]` as messages, after the record's top-level `system` prompt if it has one
    (LLaMA-Factory's ShareGPT layout keeps the system prompt beside the conversation)."""
    messages = normalise_messages(record[field], field)
    system = record.get("system")
    if system:
        system = _text(system, "system")
        if messages and messages[0]["role"] == "system":
            if messages[0]["content"] != system:
                raise Skip("malformed: a system field and a different system turn")
        else:
            messages.insert(0, {"role": "system", "content": system})
    return messages


def check_turns(messages: Conversation) -> Conversation:
    """System first (at most once), then user and assistant alternate from a user turn."""
    body = messages[1:] if messages and messages[0]["role"] == "system" else messages
    if not body:
        raise Skip("empty")
    for i, message in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise Skip(f"malformed: turn {i + 1} is {message['role']}, expected {expected}")
    return messages


def split_answer(conversation: Conversation) -> tuple[Conversation, str]:
    """(prompt messages, final assistant answer) of a conversation ending with the answer."""
    check_turns(conversation)
    if conversation[-1]["role"] != "assistant":
        raise Skip("no assistant answer")
    answer = conversation[-1]["content"]
    if not answer.strip():
        raise Skip("empty")
    return conversation[:-1], answer


def _user_turn(instruction: str, extra: str) -> str:
    """Alpaca's instruction and its optional input, one blank line apart (Taori et al. 2023)."""
    return f"{instruction}\n\n{extra}" if extra.strip() else instruction


def alpaca_prompt(record: dict, input_field: Any = None) -> Conversation:
    """System (optional), history pairs (optional), then instruction + input as the user turn."""
    messages: Conversation = []
    if record.get("system"):
        messages.append({"role": "system", "content": _text(record["system"], "system")})
    history = record.get("history") or []
    if not isinstance(history, list):
        raise Skip("malformed: history is not a list")
    for turn in history:
        if not (isinstance(turn, list | tuple) and len(turn) == 2):
            raise Skip("malformed: history item is not a [user, assistant] pair")
        messages.append({"role": "user", "content": _text(turn[0], "history")})
        messages.append({"role": "assistant", "content": _text(turn[1], "history")})
    instruction = _text(record["instruction"], "instruction")
    extra = record.get("input") if input_field is None else input_field
    extra = _text("" if extra is None else extra, "input")  # null: no input (LLaMA-Factory)
    if not instruction.strip():
        raise Skip("empty")
    messages.append({"role": "user", "content": _user_turn(instruction, extra)})
    return messages


def parse_hh(text: str) -> Conversation:
    """ "\\n\\nHuman: a\\n\\nAssistant: b" -> [user a, assistant b] (Bai et al. 2022); the
    leading "\\n\\n" may be missing, as copies of HH-RLHF that strip their text have it."""
    if text.lstrip().startswith("Human:"):
        text = "\n\n" + text.lstrip()
    parts = HH_TURN.split(text)
    if parts[0].strip():
        raise Skip("malformed: dialogue does not start with a Human/Assistant turn")
    return [
        {"role": HH_ROLES[speaker], "content": content.strip()}
        for speaker, content in zip(parts[1::2], parts[2::2], strict=True)
    ]


def hh_preference(chosen: str, rejected: str) -> Preference:
    """The prompt is the shared prefix up to its last "Assistant:"; the rest are the answers."""
    shared = os.path.commonprefix([chosen, rejected])
    cut = shared.rfind("\n\nAssistant:")
    if cut < 0:
        raise Skip("malformed: chosen and rejected share no Assistant turn")
    prompt = parse_hh(chosen[:cut])
    answers = [parse_hh(text[cut:]) for text in (chosen, rejected)]
    if any(len(a) != 1 or a[0]["role"] != "assistant" for a in answers):
        raise Skip("malformed: the dialogues differ before their last turn")
    check_turns(prompt)
    return _preference(prompt, answers[0][0]["content"], answers[1][0]["content"])


def pairwise_winner(labels: list[Any]) -> int | None:
    """1 or 2 when a strict majority of annotators prefer that response; None for a tie
    (PandaLM: label 0 = tie). Majority vote as in PandaLM's own evaluation."""
    votes = Counter(labels)
    label, count = votes.most_common(1)[0]
    if label not in (1, 2) or count * 2 <= len(labels):
        return None
    return label


def annotator_labels(record: dict) -> list[Any]:
    keys = sorted((k for k in record if re.fullmatch(r"annotator\d+", k)), key=lambda k: int(k[9:]))
    if not keys:
        raise Skip("malformed: pairwise record without annotator labels")
    labels = [record[k] for k in keys]
    if not all(type(label) is int and label in (0, 1, 2) for label in labels):
        raise Skip("malformed: annotator labels are not 0 (tie), 1 or 2")
    return labels


def _answer(value: Any, field: str) -> str:
    """A chosen/rejected answer: text, a {from, value} / {role, content} object, or messages
    whose last turn is the answer."""
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        messages = normalise_messages(value, field)
        if not messages or messages[-1]["role"] != "assistant":
            raise Skip(f"malformed: {field} is not an assistant answer")
        return messages[-1]["content"]
    return _text(value, field)


def _preference(prompt: Conversation, chosen: str, rejected: str) -> Preference:
    if not chosen.strip():  # an empty rejected answer is a real failure to answer: kept
        raise Skip("empty")
    if chosen == rejected:
        raise Skip("identical answers")
    if not prompt or prompt[-1]["role"] != "user":
        raise Skip("malformed: prompt does not end with a user turn")
    return Preference(prompt, chosen, rejected)


def _prompt_messages(value: Any, field: str) -> Conversation:
    # an HH dialogue as text: "\n\nHuman:" first, or "Human:" in a copy that stripped it
    is_hh = isinstance(value, str) and (
        value.lstrip(" ").startswith("\n\nHuman:")
        or (value.lstrip().startswith("Human:") and "\n\nAssistant:" in value)
    )
    if is_hh:
        turns = parse_hh(value)  # a whole HH dialogue as text, up to the answer's "Assistant:"
        if turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
            turns.pop()
        return turns
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return normalise_messages(value, field)


# ---------------------------------------------------------------- per-layout conversions


def record_preferences(record: dict, layout: str) -> list[Preference]:
    if layout == "hh":
        return [hh_preference(_text(record["chosen"], "chosen"), record["rejected"])]
    if layout in ("dialog_pair", "prompt_pair", "alpaca_pair", "implicit_pair"):
        prompt = pair_prompt(record, layout)
        chosen = _answer(record["chosen"], "chosen")
        return [_preference(prompt, chosen, _answer(record["rejected"], "rejected"))]
    if layout == "pairwise":
        winner = pairwise_winner(annotator_labels(record))
        if winner is None:
            raise Skip("tie")
        answers = [_text(record[f"response{i}"], f"response{i}") for i in (1, 2)]
        prompt = alpaca_prompt(record)
        return [_preference(prompt, answers[winner - 1], answers[2 - winner])]
    if layout == "kto":
        raise Skip("unpaired (KTO label without a rejected answer)")
    raise LayoutMismatch(layout)


def pair_prompt(record: dict, layout: str) -> Conversation:
    """The prompt of a preference record (`dialog_pair`, `prompt_pair`, `alpaca_pair`,
    `implicit_pair`), or of a `prompt_completion` / `prompt_only` one."""
    if layout == "dialog_pair":
        field = "conversations" if "conversations" in record else "messages"
        return check_turns(record_messages(record, field))
    if layout == "alpaca_pair":
        return alpaca_prompt(record)
    if layout == "implicit_pair":
        chosen, rejected = (normalise_messages(record[k], k) for k in HH_KEYS)
        if chosen[:-1] != rejected[:-1]:
            raise Skip("malformed: the dialogues differ before their last turn")
        return check_turns(chosen[:-1])
    return check_turns(_prompt_messages(record["prompt"], "prompt"))


def _turns_field(record: dict) -> str:
    """Where a messages, sharegpt or kto record keeps its turns (`messages` first, as
    `detect_layout` reads it)."""
    return "messages" if "messages" in record else "conversations"


def record_conversations(record: dict, layout: str) -> list[Conversation | Skip]:
    # Unpaired feedback (LLaMA-Factory's KTO, TRL's unpaired preference format): only the
    # desirable answers are learnt. Elsewhere a `label` may name a class (IMDb's 0/1).
    if record.get("kto_tag") is not None or (
        layout in ("kto", "prompt_completion") and _kto_feedback(record)
    ):
        _check_desirable(record)
    if layout == "alpaca":
        return [_learnable(_with_answer(alpaca_prompt(record), _required_text(record, "output")))]
    if layout == "self_instruct":
        instances = record["instances"]
        if not isinstance(instances, list) or not instances:
            raise Skip("malformed: instances is not a non-empty list")
        out = []
        for i, instance in enumerate(instances):
            try:
                if not isinstance(instance, dict):
                    raise Skip(f"malformed: instances[{i}] is not an object")
                prompt = alpaca_prompt(record, instance.get("input", ""))
                out.append(_learnable(_with_answer(prompt, _required_text(instance, "output"))))
            except Skip as skip:  # one bad instance costs only itself
                out.append(skip)
        return out
    if layout in ("messages", "sharegpt"):
        conversation = record_messages(record, _turns_field(record))
        split_answer(conversation)
        return [_learnable(conversation)]
    if layout == "prompt_completion":
        completion = record["completion"]
        if isinstance(completion, str):
            completion = [{"role": "assistant", "content": completion}]
        # TRL's completion-only loss: the prompt's assistant turns are context
        prompt = [_as_context(m) for m in pair_prompt(record, layout)]
        conversation = prompt + normalise_messages(completion, "completion")
        split_answer(conversation)
        return [_learnable(conversation)]
    if layout == "prompt_only":
        raise Skip("no assistant answer")
    if layout == "kto":
        conversation = record_messages(record, _turns_field(record))
        split_answer(conversation)
        return [_learnable(conversation)]
    # preference layouts: the conversation that ends with the chosen answer
    return [
        _learnable([*p.prompt, {"role": "assistant", "content": p.chosen}])
        for p in record_preferences(record, layout)
    ]


def _check_desirable(record: dict) -> None:
    key = "kto_tag" if record.get("kto_tag") is not None else "label"
    if not isinstance(record[key], bool) and record[key] not in (0, 1):
        raise Skip(f"malformed: {key} is {type(record[key]).__name__}, not true/false")
    if not record[key]:
        raise Skip(f"undesirable (KTO {key} false)")


def _as_context(message: Message) -> Message:
    """An assistant turn as context, not learnt (weight 0); other turns as they are."""
    return {**message, "weight": 0} if message["role"] == "assistant" else message


def _learnable(conversation: Conversation) -> Conversation:
    """`conversation` with its empty assistant turns as context: an empty last answer skips
    the record (`split_answer`), and an earlier one learnt would teach ending the turn at once."""
    conversation = [m if m["content"].strip() else _as_context(m) for m in conversation]
    if all(m.get("weight") == 0 for m in conversation if m["role"] == "assistant"):
        raise Skip("no assistant turn to learn (each empty or of weight 0)")
    return conversation


def record_prompts(record: dict, layout: str) -> list[Conversation | Skip]:
    if layout in ("alpaca", "alpaca_pair"):
        return [alpaca_prompt(record)]
    if layout == "self_instruct":
        return [c if isinstance(c, Skip) else c[:-1] for c in record_conversations(record, layout)]
    if layout in ("messages", "sharegpt", "kto"):
        conversation = check_turns(record_messages(record, _turns_field(record)))
        if conversation[-1]["role"] == "assistant":
            conversation = conversation[:-1]
        check_turns(conversation)
        return [conversation]
    if layout == "pairwise":  # the prompt is usable even when the annotators tie
        return [alpaca_prompt(record)]
    # a pair's prompt is usable whatever its answers are (empty, identical, missing)
    if layout == "hh":
        chosen = _text(record["chosen"], "chosen")
        prompt = check_turns(parse_hh(chosen[: chosen.rfind("\n\nAssistant:")]))
    else:  # dialog_pair, prompt_pair, implicit_pair, prompt_completion, prompt_only
        prompt = pair_prompt(record, layout)
    if prompt[-1]["role"] != "user":
        raise Skip("malformed: prompt does not end with a user turn")
    return [prompt]


def _with_answer(prompt: Conversation, answer: str) -> Conversation:
    if not answer.strip():
        raise Skip("empty")
    return [*prompt, {"role": "assistant", "content": answer}]


# ---------------------------------------------------------------- readers


def _read(path: str | Path, convert, what: str, skipped: Counter | None) -> list:
    counts: Counter = Counter()
    first: dict[str, str] = {}  # where each reason was first met
    out: list = []
    for where, record in iter_records(path):
        layout = detect_layout(record)
        if layout is None:
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise ChatDataError(
                f"{path} {where}: fits no chat/preference layout (keys {keys}); see "
                "training/chat_data.py for the layouts read"
            )
        if not is_unicode(record):  # the tokenizer cannot encode its text
            items = [Skip("malformed: text with a lone surrogate (\\ud800-\\udfff escape)")]
        else:
            try:
                items = convert(record, layout)
            except Skip as skip:
                items = [skip]
            except LayoutMismatch:
                raise ChatDataError(
                    f"{path} {where}: this {layout} record has no chosen/rejected pair; "
                    f"{what} need a preference file"
                ) from None
        for item in items:  # a record of several examples returns the Skip of a bad one
            if isinstance(item, Skip):
                counts[item.reason] += 1
                first.setdefault(item.reason, where)
            else:
                out.append(item)
    malformed = [f"{where} ({r})" for r, where in first.items() if r.startswith("malformed")]
    # counted by reason; where to look, so the records can be mended (once, not by every rank)
    if malformed and os.environ.get("RANK", "0") == "0":
        print(
            f"{path}: first malformed record of each kind: {', '.join(malformed)}", file=sys.stderr
        )
    if skipped is None:
        report_skipped(path, counts, what)
    else:  # the caller says them, with what else it dropped
        skipped.update(counts)
    return out


def report_skipped(path: str | Path, counts: Counter, what: str) -> None:
    if counts:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
        print(
            f"{path}: skipped {sum(counts.values())} records for {what} ({reasons})",
            file=sys.stderr,
        )


def read_conversations(path: str | Path, skipped: Counter | None = None) -> list[Conversation]:
    """Conversations ending with an assistant turn (SFT); preference files give the chosen."""
    return _read(path, record_conversations, "conversations", skipped)


def read_preferences(path: str | Path, skipped: Counter | None = None) -> list[Preference]:
    """Preference pairs (reward model, DPO); ties, empty and malformed records are skipped."""
    return _read(path, record_preferences, "preference pairs", skipped)


def read_prompts(path: str | Path, skipped: Counter | None = None) -> list[Conversation]:
    """Prompt messages without the final answer, from any layout (PPO, answer generation)."""
    return _read(path, record_prompts, "prompts", skipped)
