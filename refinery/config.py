"""Typed YAML configs with `key=value` overrides, shared by curation and training.

A config schema is a tree of dataclasses (torchtitan style: one small dataclass per
component). Loading merges, in order: the dataclass defaults, a YAML file, then
command-line overrides such as `extract.timeout_seconds=2`. Every key is checked against
the schema before anything expensive starts, so a typo fails with the key's full name.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import hashlib
import json
import math
import os
import re
import types
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from refinery.errors import RefineryError
from refinery.utf8 import read_utf8

T = TypeVar("T")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(RefineryError, ValueError):
    """A config file or override that does not match its schema."""

    every_rank = True


def load_config(schema: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Build a `schema` instance from its defaults, an optional YAML file (a relative path
    not found from the working directory is read from the project root, as `conf/` presets
    are) and overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = resolve_path(path)
        data = read_yaml(path)
    apply_overrides(schema, data, overrides)
    where = f" (in {path}" if path is not None else " (in defaults"
    where += " + command-line overrides)" if overrides else ")"
    try:
        return from_dict(schema, data)
    except ConfigError as err:
        raise ConfigError(f"{err}{where}") from None


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def local_path(spec: str) -> str:
    """A local path given as one or as a file: URI (file:///x as typed, not escaped, or
    Hadoop's file:/x), as a path: /x."""
    if spec.startswith("file://"):
        rest = spec[len("file://") :]
        return rest[len("localhost") :] if rest.startswith("localhost/") else rest
    return spec[len("file:") :] if spec.startswith("file:/") else spec


def user_path(spec: str) -> str:
    """A folder or file a run's setting names (out=, data=, --from): a file: URI as a path
    and `~` as the home folder, which no shell expanded in a quoted argument or a YAML file
    (file:///x/out was a folder named "file:" in the working directory)."""
    return os.path.expanduser(local_path(spec))


def resolve_path(path: str | Path) -> Path:
    """A file a config names: absolute as given (or as a file: URI); relative from the working
    directory when it exists there, else from the project root (where `conf/` ships
    defaults)."""
    path = Path(local_path(str(path))).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return PROJECT_ROOT / path


@functools.cache
def _yaml_loader():
    """PyYAML's safe loader with YAML 1.2's plainer numbers: no octal (`010` is not 8), no
    base-60 (`1:30` is not 90), no dates, no leading zeros (`001` stays text), and `3e-4`
    is a float; true/false (and yes/no, on/off) are booleans. A mapping that repeats a key
    is an error, not the last one silently winning."""
    import yaml  # here, not at the top: a GPU node running a benchmark may lack PyYAML

    tags = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp")}

    class Loader(yaml.SafeLoader):
        def flatten_mapping(self, node):
            """The mapping's own keys, each once, then those of its `<<:` merges the earlier
            ones win (the YAML merge spec; PyYAML let the last win, and a merged mapping's
            repeated key went unsaid)."""
            merge = "tag:yaml.org,2002:merge"
            own = [(key, value) for key, value in node.value if key.tag != merge]
            merges = [value for key, value in node.value if key.tag == merge]
            node.value = own  # a mapping merging itself (`&a {<<: *a}`) adds its own keys
            merged = []
            for value_node in merges:
                sources = value_node.value if value_node.id == "sequence" else [value_node]
                for source in sources:
                    if source.id != "mapping":
                        raise yaml.constructor.ConstructorError(
                            None, None, "merges only mappings (<<: *name)", source.start_mark
                        )
                    self.flatten_mapping(source)
                    merged += source.value
            pairs, seen = [], set()
            for key_node, value_node in own:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    raise yaml.constructor.ConstructorError(
                        None, None, "a key that is a mapping or a list", key_node.start_mark
                    )
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"repeats the key {key!r}", key_node.start_mark
                    )
                seen.add(key)
                pairs.append((key_node, value_node))
            for key_node, value_node in merged:
                key = self.construct_object(key_node, deep=True)
                if key not in seen:
                    seen.add(key)
                    pairs.append((key_node, value_node))
            node.value = pairs

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in tags]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    words = "true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF"
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(f"^(?:{words})$"), list("tTfFyYnNoO")
    )
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
    )
    number = r"[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    special = r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(f"^(?:{number}|{special})$"), list("-+0123456789.")
    )
    return Loader


def load_yaml_text(text: str) -> Any:
    """`text` read by the config loader (see `_yaml_loader`)."""
    import yaml

    return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a SafeLoader subclass)


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder: name a .yaml file in it")
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if not path.is_file():  # `--config <(...)`, /dev/stdin: said as what it is, not missing
        raise ConfigError(f"config file {path} is not a file (a pipe?): name a .yaml file")
    text = read_utf8(path, ConfigError)
    try:
        data = load_yaml_text(text)
    except yaml.YAMLError as err:  # PyYAML's own text spans lines: line:column and problem
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"config file {path}{where} is not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def apply_overrides(schema: type, data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each `key=value` of `overrides` in the raw config mapping `data` (in place). A
    text setting takes the text as typed (`out=runs/x #2`, `data=001`), not as YAML reads it
    (in quotes, as YAML reads the quoted text); an optional one is unset by `null`, `~` or
    nothing. A whole section given as a mapping (`schedule={kind: wsd}`) merges into the
    config file's section, as Hydra merges one: the file's other keys stay (a mapping setting
    inside it, `mix={targets: {...}}`, replaces the file's whole, as `mix.targets=` does)."""
    for item in overrides:
        key, value = parse_override(item)
        parts, setting = _split_key(schema, key)
        _seed_mapping(schema, data, parts)
        if _optional_of(setting) is str:
            raw = item.partition("=")[2].strip()
            if raw[:1] in ("'", '"') and raw[-1:] == raw[:1] and isinstance(value, str):
                raw = value  # quoted as YAML quotes text: `spark.x="false"` is false
            optional = setting is not str
            value = None if optional and raw in ("", "null", "~", "None") else raw
        if dataclasses.is_dataclass(_optional_of(setting)) and isinstance(value, dict):
            section = get_dotted(data, parts)
            if isinstance(section, dict):
                merge_section(_optional_of(setting), section, value)
                continue
        set_dotted(data, parts, value)
    return data


def merge_section(schema: type, data: dict[str, Any], layer: dict[str, Any]) -> None:
    """Lay `layer` over the raw section `data` of `schema` (in place): its sub-sections merge
    key by key, any other setting (a mapping one too) is replaced."""
    hints = get_type_hints(schema)
    for key, value in layer.items():
        sub_schema = _optional_of(hints.get(key))
        if (
            dataclasses.is_dataclass(sub_schema)
            and isinstance(value, dict)
            and isinstance(data.get(key), dict)
        ):
            merge_section(sub_schema, data[key], value)
        else:
            data[key] = copy.deepcopy(value)


def get_dotted(data: dict[str, Any], parts: list[str]) -> Any:
    """What the raw mapping `data` holds at `parts` (None where it holds nothing)."""
    node: Any = data
    for part in parts:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=3` -> ("a.b", 3); the value is read as a YAML scalar or flow collection."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        value = load_yaml_text(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _optional_of(tp: Any) -> Any:
    """X for `X | None`, else `tp` itself."""
    if get_origin(tp) in (Union, types.UnionType):
        options = [t for t in get_args(tp) if t is not type(None)]
        if len(options) == 1:
            return options[0]
    return tp


def _split_key(schema: type, key: str) -> tuple[list[str], Any]:
    """Split a dotted override key along the schema, and the type of what it sets (None for a
    key the schema does not know). Inside a mapping-typed field (such as `spark.conf`) the rest
    of the key is one entry, so `spark.conf.spark.executor.cores=4` sets the entry
    "spark.executor.cores", of the mapping's value type."""
    parts = key.split(".")
    node: Any = schema
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(node):
            return parts, None
        hint = get_type_hints(node).get(part)
        tp = _optional_of(hint)
        if get_origin(tp) is dict and i + 1 < len(parts):
            return [*parts[: i + 1], ".".join(parts[i + 1 :])], get_args(tp)[1]
        node = tp
    return parts, hint


def _seed_mapping(schema: type, data: dict[str, Any], parts: list[str]) -> None:
    """Before an override sets one entry of a mapping-typed field (`spark.conf.X=...`) that
    the config file leaves out, start that mapping from the field's default: the entry joins
    the default entries instead of replacing them all."""
    node: Any = schema
    for depth, part in enumerate(parts[:-1]):
        if not dataclasses.is_dataclass(node):
            return
        setting = {f.name: f for f in dataclasses.fields(node)}.get(part)
        if setting is None:
            return
        tp = _optional_of(get_type_hints(node)[part])
        if get_origin(tp) is dict:
            if setting.default_factory is dataclasses.MISSING:
                return
            raw = data
            for section in parts[:depth]:
                raw = raw.setdefault(section, {})
                if not isinstance(raw, dict):
                    return  # set_dotted says the section is not one
            if part not in raw:
                raw[part] = copy.deepcopy(setting.default_factory())
            return
        node = tp


def set_dotted(data: dict[str, Any], parts: list[str], value: Any) -> None:
    key = ".".join(parts)
    node = data
    for i, part in enumerate(parts[:-1]):
        if node.get(part) is None:  # an unset optional mapping (`mix.targets: null`)
            node[part] = {}
        child = node[part]
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def merge_mapping(data: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """Lay the nested mapping `layer` over `data` (in place): a section merges key by key,
    anything else replaces. For a config file laid over another config (`refinery anneal
    --config` over its source run's)."""
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            merge_mapping(data[key], value)
        else:
            data[key] = copy.deepcopy(value)
    return data


def drop_unknown_keys(schema: type, data: dict[str, Any], prefix: str = "") -> list[str]:
    """Remove (in place) the keys of `data` that `schema` does not know, at every level;
    returns their dotted names. For configs an older version wrote (a checkpoint's)."""
    fields = {f.name for f in dataclasses.fields(schema) if f.init}
    hints = get_type_hints(schema)
    dropped = []
    for key in list(data):
        if key not in fields:
            del data[key]
            dropped.append(f"{prefix}{key}")
        elif dataclasses.is_dataclass(hints[key]) and isinstance(data[key], dict):
            dropped += drop_unknown_keys(hints[key], data[key], f"{prefix}{key}.")
    return dropped


RANGES = {
    "> 0": lambda value: value > 0,
    ">= 0": lambda value: value >= 0,
    "in [0, 1]": lambda value: 0 <= value <= 1,
}


def check_ranges(section: str, config: Any, rules: dict[str, str]) -> None:
    """Refuse a field of `config` outside its range; `rules` maps a field to a key of RANGES.
    For a dataclass's __post_init__, `section` being its place in the config ("optim")."""
    for name, rule in rules.items():
        value = getattr(config, name)
        if not RANGES[rule](value):
            key = f"{section}.{name}" if section else name
            raise ConfigError(f"{key} must be {rule}, got {value}")


def check_seed(key: str, seed: int, bits: int = 32) -> None:
    """Refuse a seed a library would refuse mid-run: NumPy's legacy seeding, scikit-learn
    and datasketch take 0 .. 2^32 - 1, torch (`bits=64`) 0 .. 2^64 - 1."""
    if not 0 <= seed < 2**bits:
        raise ConfigError(f"{key} must be in 0 .. 2^{bits} - 1, got {seed}")


def set_sections(config: Any, names: tuple[str, ...]) -> list[str]:
    """The sections among `names` that `config` sets away from their defaults: for a command
    to say that it ignores another command's settings (`refinery sft dpo.beta=5`)."""
    return [name for name in names if getattr(config, name) != type(getattr(config, name))()]


def from_dict(schema: type[T], data: Any, prefix: str = "") -> T:
    """Validate `data` against a dataclass schema, naming the first bad key."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {_describe(data)}"
        )
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    hints = get_type_hints(schema)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), fields, n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        known = ", ".join(fields)
        raise ConfigError(f"unknown config key '{prefix}{key}'{hint}; known keys here: {known}")
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, f"{prefix}{name}")
    return schema(**values)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, {} if value is None else value, key + ".")
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{key}: {_describe(value)} fits none of {tp}"
        )
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}: must be one of {list(choices)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {_describe(value)}")
        (item_tp,) = get_args(tp)
        for i, v in enumerate(value):
            if item_tp is str and isinstance(v, bool):  # [en, no]: YAML 1.1 reads `no` as false
                raise ConfigError(
                    f"{key}[{i}]: {str(v).lower()} is a YAML boolean (an unquoted yes, no, on, "
                    f"off, true or false): quote it, as ['no'] for Norwegian"
                )
        return [_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_describe(value)}")
        key_tp, value_tp = get_args(tp)
        return {
            _coerce(key_tp, k, f"{key}.{k}"): _coerce(value_tp, v, f"{key}.{k}")
            for k, v in value.items()
        }
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)  # a config read elsewhere (PyYAML's 1.1 reads `3e-4` as text)
    if tp is float and _not_finite(value):  # `1e400` is infinity once converted
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)  # `mix.total_tokens=1e9`
    if tp is str and isinstance(value, bool):
        return "true" if value else "false"  # Spark's spelling: `spark.speculation: true`
    if tp is str and isinstance(value, int | float):
        return str(value)  # YAML reads `spark.executor.cores: 4` as int; Spark wants strings
    if tp in (int, float, str, bool):
        if isinstance(value, bool) and tp is not bool:
            raise ConfigError(f"{key}: expected {tp.__name__}, got {_describe(value)}")
        if not isinstance(value, tp):
            raise ConfigError(f"{key}: expected {tp.__name__}, got {_describe(value)}")
        return value
    raise ConfigError(f"{key}: unsupported schema type {tp}")  # a bug in the schema, not the file


def _not_finite(value: Any) -> bool:
    """NaN or infinity, as YAML reads `.nan` / `.inf` or as the words `nan` / `inf`: no
    setting means either, and a NaN passes every range check unnoticed."""
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, str) and value.strip().lower().lstrip("+-") in {
        "nan",
        "inf",
        "infinity",
    }


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def to_dict(config: Any) -> dict[str, Any]:
    """A resolved config as a dict (one already, as a command that adds its own settings
    passes it, as is)."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config


def config_hash(config: Any) -> str:
    """Stable short hash of a resolved config (dataclass or dict), for run.json and manifests."""
    blob = json.dumps(to_dict(config), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


__all__ = [
    "apply_overrides",
    "ConfigError",
    "config_hash",
    "from_dict",
    "load_config",
    "parse_override",
    "to_dict",
]
