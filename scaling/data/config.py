"""DataConfig: what corpus, how it is tokenized and split, and the window length.

A frozen dataclass validated at construction; `from_dict`/`to_dict` round-trip
through JSON/TOML-friendly dicts, and an unknown key is rejected naming the
closest valid one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from scaling.core import config as cc

SOURCES = ("embedded", "stdlib", "text", "tokens", "hf")
TOKENIZERS = ("bytes", "bpe")
_MAX_VOCAB = 2**32


def _as_str_tuple(check: cc.Checks, name: str) -> tuple[str, ...]:
    value = getattr(check.obj, name)
    if isinstance(value, str):  # a lone string is one path, not a sequence of characters
        value = (value,)
    try:
        return tuple(str(v) for v in value)
    except TypeError:
        check.fail(name, "must be a list of paths")


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
    num_eval_batches, eval_batch_size: the fixed validation set, num_eval_batches batches
        of eval_batch_size windows (0: the trainer's train.global_batch_size). With an
        eval_batch_size > 0, building the dataset checks that validation holds that many
        non-overlapping windows.
    max_train_tokens: 0 (all), or train on only this many tokens of the training split
        (blocks spread evenly over it), repeated over epochs (data-constrained runs: unique
        tokens held fixed while the tokens trained on grow). Validation is unchanged.
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
    num_eval_batches: int = 8
    max_train_tokens: int = 0

    def __post_init__(self) -> None:
        check = cc.Checks("data", self)
        check.choice("source", SOURCES)
        check.choice("tokenizer", TOKENIZERS)
        check.integer("seq_len", "num_eval_batches", minimum=1)
        check.integer("seed", "eval_batch_size", "max_train_tokens", minimum=0)
        check.integer("bpe_vocab_size", minimum=257)
        if self.bpe_vocab_size > _MAX_VOCAB:
            check.fail("bpe_vocab_size", f"exceeds {_MAX_VOCAB}")
        check.number("validation_fraction", positive=True, below=1.0)
        check.set("validation_fraction", float(self.validation_fraction))
        check.set("paths", _as_str_tuple(check, "paths"))
        check.set("validation_paths", _as_str_tuple(check, "validation_paths"))
        if self.source in ("text", "tokens") and not self.paths:
            check.fail("paths", f"is empty, but source={self.source!r} reads its corpus from `paths`", list(self.paths))
        if self.source == "tokens" and (len(self.paths) != 1 or len(self.validation_paths) > 1):
            check.fail(
                "paths",
                f"source='tokens' takes one training token file in `paths` and at most one in "
                f"`validation_paths` (got {list(self.validation_paths)}); write several arrays into one file "
                "with write_token_file",
                list(self.paths),
            )
        if self.source == "hf" and not self.hf_dataset:
            check.fail("hf_dataset", "is empty, but source='hf' needs a dataset name or path")
        if self.source in ("embedded", "stdlib") and (self.paths or self.validation_paths):
            check.fail(
                "paths",
                f"source={self.source!r} reads CPython's source files; data.paths and data.validation_paths "
                f"(got {list(self.validation_paths)}) must be empty (use source='text')",
                list(self.paths),
            )
        if not self.text_field:
            check.fail("text_field", "must be a non-empty column name")

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        """Build from a plain dict (e.g. a TOML table); unknown keys name the closest valid key."""
        return cc.build_section(cls, "data", d)

    def to_dict(self) -> dict:
        """A JSON-able dict (tuples become lists) that `from_dict` reads back."""
        return cc.plain(self)

    def replace(self, **changes) -> DataConfig:
        return dataclasses.replace(self, **changes)


__all__ = ["SOURCES", "TOKENIZERS", "DataConfig"]
