import pytest

from scaling.model import ModelConfig


def test_derived_shapes():
    cfg = ModelConfig(width=256, depth=4)
    assert (cfg.heads, cfg.kv_heads, cfg.mlp_hidden) == (4, 4, 1024)
    swi = ModelConfig(width=256, depth=4, mlp="swiglu", num_kv_heads=2)
    assert swi.mlp_hidden == 704 and swi.mlp_hidden % 64 == 0  # 8/3*256 = 682.7 -> 704
    assert swi.kv_heads == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(width=100, depth=2), "model.width=100: must be a multiple of head_dim=64"),
        (dict(width=128, depth=0), "depth=0"),
        (dict(width=128, depth=2, mlp="relu"), "mlp='relu'"),
        (dict(width=256, depth=2, num_kv_heads=3), "model.num_kv_heads=3: must divide heads=4"),
        (dict(width=128, depth=2, vocab_size=0), "vocab_size=0"),
        (dict(width=128, depth=2, seq_len=-1), "seq_len=-1"),
        (dict(width=128, depth=2, compute_dtype="float16"), "compute_dtype='float16'"),
        (dict(width=128, depth=2, param_dtype="bfloat16"), "param_dtype='bfloat16'"),
        (dict(width=128, depth=2, parameterization="ntk"), "parameterization='ntk'"),
        (dict(width=128, depth=2, attention="flash"), "attention='flash'"),
        (dict(width=128, depth=2, remat="yes"), "remat='yes'"),
        (dict(width=128, depth=2, init_std=0.0), "init_std=0.0"),
        (dict(width=128, depth=2, base_width=0), "base_width=0"),
        (dict(width=128.0, depth=2), "model.width=128.0: must be an integer"),
        (dict(width=128, depth=2, tied_embeddings="yes"), "tied_embeddings='yes'"),
    ],
)
def test_validation_names_field_and_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ModelConfig(**kwargs)


def test_dict_round_trip_and_unknown_keys():
    cfg = ModelConfig(width=128, depth=3, mlp="swiglu", tied_embeddings=True, parameterization="mup")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown key model.widht; did you mean model.width"):
        ModelConfig.from_dict({"widht": 128, "depth": 2})
    with pytest.raises(ValueError, match="missing required key"):
        ModelConfig.from_dict({"width": 128})
