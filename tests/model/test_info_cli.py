import json

from scaling.cli.main import main
from scaling.model import ModelConfig, accounting


def test_info_json_for_one_model(capsys):
    assert main(["info", "--width", "256", "--depth", "4", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == json.loads(json.dumps(accounting(ModelConfig(width=256, depth=4, vocab_size=257, seq_len=256))))
    assert set(got["flops_per_token"]) == {"6N", "6N+attention", "exact"}

    assert (
        main(
            [
                "info",
                "--width",
                "128",
                "--depth",
                "2",
                "--vocab",
                "1000",
                "--seq-len",
                "64",
                "--tied",
                "--mlp",
                "swiglu",
                "--head-dim",
                "32",
                "--json",
            ]
        )
        == 0
    )
    cfg = ModelConfig(width=128, depth=2, vocab_size=1000, seq_len=64, tied_embeddings=True, mlp="swiglu", head_dim=32)
    assert json.loads(capsys.readouterr().out)["params_total"] == accounting(cfg)["params_total"]


def test_info_table_and_errors(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "JAX " in out and "backend cpu" in out and "params total" in out and "FLOPs/tok exact" in out
    assert main(["info", "--width", "100", "--depth", "2", "--json"]) == 2
    assert "model.width=100: must be a multiple of head_dim=64" in capsys.readouterr().err
    assert main(["info", "--width", "128"]) == 2
