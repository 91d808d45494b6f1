"""DataConfig: what corpus, how it is tokenized and split, and the window length.

A frozen dataclass validated at construction; `from_dict`/`to_dict` round-trip
through JSON/TOML-friendly dicts, and an unknown key is rejected naming the
closest valid one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from scaling.config_keys import check_known_keys

SOURCES = ("embedded", "stdlib", "text", "tokens", "hf")
TOKENIZERS = ("bytes", "bpe")
_MAX_VOCAB = 2**32


def _one_of(name: str, value, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"DataConfig.{name}={value!r} is not one of the valid values: {', '.join(valid)}")


def _as_str_tuple(name: str, value) -> tuple[str, ...]:
    if isinstance(value, str):  # a lone string is one path, not a sequence of characters
        value = (value,)
    try:
        out = tuple(str(v) for v in value)
    except TypeError:
        raise ValueError(f"DataConfig.{name} must be a sequence of paths, got {value!r}") from None
    return out


def _int_at_least(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"DataConfig.{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """The data pipeline's settings (see scaling/data/README.md for each source).

    source: "embedded" (the default: a fixed snapshot of CPython 3.11.7's standard-library
        source shipped with the package, identical under every Python, no download),
        "stdlib" (the running interpreter's own *.py files), "text" (files,
        directories or globs in `paths`), "tokens" (pre-tokenized .bin files in
        `paths`), or "hf" (a Hugging Face `datasets` dataset named by `hf_dataset`).
    tokenizer: "bytes" (vocab 257: 256 bytes + separator 256) or "bpe" (byte-level
        BPE of `bpe_vocab_size`, trained on the training split and cached).
    seq_len: tokens per window's input; windows hold seq_len + 1 tokens.
    seed: the training-batch order; batches are a pure function of (seed, step).
    validation_fraction: share of files (stdlib/text) or documents (hf) that go
        to validation, chosen by a stable hash of their name; for a single token
        file, the share of tokens at its end.
    paths: text files/directories/globs (text), token files (tokens, one file),
        or `data_files` for a `datasets` builder such as "json" (hf).
    validation_paths: explicit validation files instead of a hashed split.
    hf_dataset, hf_config, hf_split, hf_validation_split, text_field: passed to
        `datasets.load_dataset` (or `load_from_disk` for a saved directory).
    cache_dir: where tokenized corpora are cached; default $SCALING_DATA_CACHE or
        ~/.cache/scaling/data. Machine-local: not part of the manifest.
    eval_batch_size, num_eval_batches: when both > 0, building the dataset
        checks that validation holds that many non-overlapping windows.
    """

    source: str = "embedded"
    tokenizer: str = "bytes"
    seq_len: int = 256
    seed: int = 0
    validation_fraction: float = 0.02
    paths: tuple[str, ...] = ()
    validation_paths: tuple[str, ...] = ()
    bpe_vocab_size: int = 4096
    hf_dataset: str | None = None
    hf_config: str | None = None
    hf_split: str = "train"
    hf_validation_split: str | None = None
    text_field: str = "text"
    cache_dir: str | None = None
    eval_batch_size: int = 0
    num_eval_batches: int = 0

    def __post_init__(self) -> None:
        _one_of("source", self.source, SOURCES)
        _one_of("tokenizer", self.tokenizer, TOKENIZERS)
        _int_at_least("seq_len", self.seq_len, 1)
        _int_at_least("seed", self.seed, 0)
        _int_at_least("eval_batch_size", self.eval_batch_size, 0)
        _int_at_least("num_eval_batches", self.num_eval_batches, 0)
        _int_at_least("bpe_vocab_size", self.bpe_vocab_size, 257)
        if self.bpe_vocab_size > _MAX_VOCAB:
            raise ValueError(f"DataConfig.bpe_vocab_size={self.bpe_vocab_size} exceeds {_MAX_VOCAB}")
        vf = self.validation_fraction
        if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0.0 < vf < 1.0:
            raise ValueError(f"DataConfig.validation_fraction must be a number in (0, 1), got {vf!r}")
        object.__setattr__(self, "validation_fraction", float(vf))
        object.__setattr__(self, "paths", _as_str_tuple("paths", self.paths))
        object.__setattr__(self, "validation_paths", _as_str_tuple("validation_paths", self.validation_paths))
        if self.source in ("text", "tokens") and not self.paths:
            raise ValueError(f"DataConfig.paths is empty, but source={self.source!r} reads its corpus from `paths`")
        if self.source == "tokens":
            if len(self.paths) != 1 or len(self.validation_paths) > 1:
                raise ValueError(
                    f"source='tokens' takes one training token file in `paths` (got {list(self.paths)}) "
                    f"and at most one in `validation_paths` (got {list(self.validation_paths)}); "
                    "write several arrays into one file with write_token_file"
                )
        if self.source == "hf" and not self.hf_dataset:
            raise ValueError("DataConfig.hf_dataset is empty, but source='hf' needs a dataset name or path")
        if self.source in ("embedded", "stdlib") and (self.paths or self.validation_paths):
            raise ValueError(
                f"source={self.source!r} reads CPython's source files; DataConfig.paths={list(self.paths)} "
                f"and validation_paths={list(self.validation_paths)} must be empty (use source='text')"
            )
        if not self.text_field:
            raise ValueError("DataConfig.text_field must be a non-empty column name")

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        """Build from a plain dict (e.g. a TOML table); unknown keys name the closest valid key."""
        valid = [f.name for f in dataclasses.fields(cls)]
        check_known_keys(d, valid, lambda key: f"unknown data config key {key!r}")
        return cls(**d)

    def to_dict(self) -> dict:
        """A JSON-able dict (tuples become lists) that `from_dict` reads back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes) -> DataConfig:
        return dataclasses.replace(self, **changes)


__all__ = ["SOURCES", "TOKENIZERS", "DataConfig"]
