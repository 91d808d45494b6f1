"""DataConfig: validation at construction, dict round trip, messages that name the value."""

from __future__ import annotations

import pytest

from scaling.data import DataConfig


def test_defaults_are_the_embedded_bytes_corpus():
    cfg = DataConfig()
    assert (cfg.source, cfg.tokenizer, cfg.seq_len, cfg.seed) == ("embedded", "bytes", 256, 0)
    assert 0.01 <= cfg.validation_fraction <= 0.02


def test_dict_round_trip_and_paths_become_tuples():
    cfg = DataConfig(source="text", paths=["a.txt", "b/*.md"], seq_len=32, seed=5)
    assert cfg.paths == ("a.txt", "b/*.md")
    d = cfg.to_dict()
    assert d["paths"] == ["a.txt", "b/*.md"]
    assert DataConfig.from_dict(d) == cfg
    assert hash(cfg) == hash(DataConfig.from_dict(d))  # frozen and hashable


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(ValueError, match=r"data\.seq_length.*data\.seq_len"):
        DataConfig.from_dict({"seq_length": 128})


@pytest.mark.parametrize(
    "field, value, valid",
    [("source", "wikipedia", "embedded, stdlib, text, tokens, hf"), ("tokenizer", "sentencepiece", "bytes, bpe")],
)
def test_unknown_source_or_tokenizer_names_value_and_lists_valid(field, value, valid):
    with pytest.raises(ValueError) as err:
        DataConfig(**{field: value})
    assert repr(value) in str(err.value) and valid in str(err.value)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"seq_len": 0}, "seq_len"),
        ({"seed": -1}, "seed"),
        ({"validation_fraction": 1.5}, "validation_fraction"),
        ({"validation_fraction": 0.0}, "validation_fraction"),
        ({"bpe_vocab_size": 100}, "bpe_vocab_size"),
        ({"source": "text"}, "paths"),
        ({"source": "tokens", "paths": ("a.bin", "b.bin")}, "a.bin"),
        ({"source": "hf"}, "hf_dataset"),
        ({"source": "stdlib", "paths": ("x.txt",)}, "x.txt"),
    ],
)
def test_bad_values_are_named(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        DataConfig(**kwargs)
