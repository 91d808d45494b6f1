"""One config mechanism for every section of every TOML file (model, data, optimizer,
schedule, train, mesh; sweep, family, hparams, wsd).

A section is a frozen dataclass that validates itself in `__post_init__` with a `Checks`
for its section name; `build_section` makes one from a TOML table; `read_toml` reads a
file, `apply_overrides` applies `section.key=value` strings. Every error reads

    section.key=value: why

and an unknown key or section names the closest valid one ("unknown key model.widht;
did you mean model.width?"). A key renamed since an older version is named with its new
spelling (`RENAMED`), so an old file fails with the fix in the message.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

# Keys renamed since an older version: (old section, old key) -> (new section, new key,
# {old value: new value}). A TOML file or override with an old key is an error naming
# the new one; `upgrade` moves them in configs that runs wrote before (their config.json),
# and sweep run ids still hash the old spelling (`scaling.sweep.trainer_config.identity`).
RENAMED: dict[tuple[str, str], tuple[str, str, dict[Any, Any]]] = {
    ("train", "flops_convention"): ("train", "flop_convention", {}),
    ("train", "eval_batches"): ("data", "num_eval_batches", {}),
    ("train", "eval_batch_size"): ("data", "eval_batch_size", {}),
    ("schedule", "decay_fraction"): ("schedule", "cooldown_fraction", {}),
    ("schedule", "decay_shape"): ("schedule", "cooldown_shape", {"sqrt": "1-sqrt"}),
    ("wsd", "decay_shape"): ("wsd", "cooldown_shape", {"sqrt": "1-sqrt"}),
}
# Values renamed where the key kept its name: (section, key) -> {old value: new value}.
RENAMED_VALUES: dict[tuple[str, str], dict[Any, Any]] = {
    ("schedule", "cooldown_shape"): {"sqrt": "1-sqrt"},
    ("wsd", "cooldown_shape"): {"sqrt": "1-sqrt"},
}


# ---- the error format -------------------------------------------------------------------
def fail(where: str, value: Any, why: str) -> NoReturn:
    """Raise ValueError("where=value: why"); `where` is "section.key"."""
    raise ValueError(f"{where}={value!r}: {why}")


def closest(name: str, known: Sequence[str], *, cutoff: float = 0.6) -> str | None:
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def check_keys(section: str, keys: Iterable[str], known: Sequence[str]) -> None:
    """Reject a key of `section` that is not in `known`: its new name if it was renamed,
    else the closest valid key, else the list of valid keys."""
    for key in keys:
        if key in known:
            continue
        if (section, key) in RENAMED:
            new_section, new_key, _ = RENAMED[section, key]
            raise ValueError(f"{section}.{key} is now {new_section}.{new_key}; rename it")
        close = closest(key, known)
        hint = f"; did you mean {section}.{close}?" if close else f"; valid keys: {', '.join(known)}"
        raise ValueError(f"unknown key {section}.{key}{hint}")


def check_sections(keys: Iterable[str], known: Sequence[str], *, where: str = "config") -> None:
    """Reject a top-level table not in `known`, naming the closest one."""
    for key in keys:
        if key not in known:
            close = closest(key, known)
            hint = f"; did you mean [{close}]?" if close else f"; sections: {', '.join(f'[{k}]' for k in known)}"
            raise ValueError(f"unknown section [{key}] in the {where}{hint}")


# ---- validators -------------------------------------------------------------------------
class Checks:
    """Validators for the fields of one section's dataclass, in the one error format.

    check = Checks("model", self)
    check.integer("width", "depth", minimum=1)
    check.choice("mlp", MLP_KINDS)
    """

    def __init__(self, section: str, obj: Any):
        self.section = section
        self.obj = obj

    def fail(self, name: str, why: str, value: Any = dataclasses.MISSING) -> NoReturn:
        fail(f"{self.section}.{name}", getattr(self.obj, name) if value is dataclasses.MISSING else value, why)

    def _each(self, names: tuple[str, ...]) -> Iterable[tuple[str, Any]]:
        return ((n, getattr(self.obj, n)) for n in names)

    def number(self, *names: str, minimum: float | None = None, maximum: float | None = None,
               positive: bool = False, below: float | None = None, integer: bool = False) -> None:  # fmt: skip
        for name, value in self._each(names):
            if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
                self.fail(name, "must be an integer" if integer else "must be a number")
            if not math.isfinite(value):
                self.fail(name, "must be finite")
            if positive and not value > 0:
                self.fail(name, "must be > 0")
            if minimum is not None and value < minimum:
                self.fail(name, f"must be >= {minimum}")
            if maximum is not None and value > maximum:
                self.fail(name, f"must be <= {maximum}")
            if below is not None and not value < below:
                self.fail(name, f"must be < {below}")

    def integer(self, *names: str, minimum: int | None = None) -> None:
        self.number(*names, minimum=minimum, integer=True)

    def boolean(self, *names: str) -> None:
        for name, value in self._each(names):
            if not isinstance(value, bool):
                self.fail(name, "must be true or false")

    def choice(self, name: str, choices: Sequence[Any]) -> None:
        value = getattr(self.obj, name)
        if value not in choices:
            old = RENAMED_VALUES.get((self.section, name), {})
            if isinstance(value, str) and value in old:
                self.fail(name, f"is now {old[value]!r}")
            close = closest(str(value), [str(c) for c in choices])
            hint = f" (did you mean {close!r}?)" if close else ""
            self.fail(name, f"must be one of {', '.join(map(str, choices))}{hint}")

    def string(self, *names: str) -> None:
        for name, value in self._each(names):
            if not isinstance(value, str) or not value:
                self.fail(name, "must be a non-empty string")

    def set(self, name: str, value: Any) -> None:
        """Store a normalized value on the frozen dataclass."""
        object.__setattr__(self.obj, name, value)


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def build_section(cls: Callable[..., T], section: str, values: Any, *, required: Sequence[str] = ()) -> T:
    """A section's dataclass from its TOML table: unknown keys and missing required ones
    are errors before any value is checked."""
    if not isinstance(values, Mapping):
        raise ValueError(f"[{section}] must be a table, got {values!r}")
    check_keys(section, values, field_names(cls))  # type: ignore[arg-type]
    missing = [k for k in required if k not in values]
    if missing:
        raise ValueError(f"[{section}] is missing required key(s): {', '.join(f'{section}.{k}' for k in missing)}")
    return cls(**values)


def plain(obj: Any) -> Any:
    """A dataclass (or nested data) in the JSON/TOML shape: tuples as lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return json.loads(json.dumps(obj, default=list))


def field_defaults(cls: type) -> dict[str, Any]:
    """A section's field defaults in the JSON shape (fields without one are left out)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return plain(out)


# ---- files and overrides ----------------------------------------------------------------
def read_toml(path: str | Path, *, what: str = "config file") -> dict[str, Any]:
    """A TOML file as a dict; a missing file or bad TOML is an error naming the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: invalid TOML: {err}") from None


def parse_value(text: str) -> Any:
    """A `--set` value: a TOML literal (3e-3, true, [1, 2], "x"), else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def split_override(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like section.key=value")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str] | Mapping[str, Any] | None,
                    sections: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """A copy of `raw` with `section.key=value` overrides (strings, values parsed by
    `parse_value`) or a {"section.key": value} mapping applied; `section.a.b=v` sets a key
    of a nested table. The section must be one of `sections`; keys are checked when the
    config is built."""
    out = json.loads(json.dumps(raw))
    if not overrides:
        return out
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = [(k, parse_value(v)) for k, v in map(split_override, overrides)]
    for dotted, value in items:
        parts = dotted.split(".")
        if len(parts) < 2 or not all(parts):
            raise ValueError(f"override {dotted!r} must look like section.key=value")
        check_sections([parts[0]], sections, where=f"override {dotted!r}")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {dotted!r}: {p!r} is not a table")
        node[parts[-1]] = value
    return out


def upgrade(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A config written by an older version (a run's config.json) with renamed keys and
    values moved to their current spelling; a key given in both spellings keeps the new."""
    out = json.loads(json.dumps(raw))
    for (section, key), (new_section, new_key, values) in RENAMED.items():
        table = out.get(section)
        if isinstance(table, dict) and key in table:
            value = table.pop(key)
            value = values.get(value, value) if isinstance(value, str) else value
            out.setdefault(new_section, {}).setdefault(new_key, value)
    for (section, key), values in RENAMED_VALUES.items():
        table = out.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            table[key] = values.get(table[key], table[key])
    return out
