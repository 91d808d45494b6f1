"""The sharded train step's compiled program: no involuntary rematerialization, no
resharding collectives (all-to-all, collective-permute), and Megatron's minimum of
activation all-reduces under tensor parallelism.

Each case compiles `Program.train_step` in a fresh subprocess without the persistent
compilation cache: XLA prints "Involuntary full rematerialization" from its partitioner
(C++, on stderr) only when it really partitions, which a cache hit skips.

Run as a script, this file prints the collective table of scaling/model/PERF.md:
    uv run --frozen python tests/model/test_sharded_hlo.py [--model '{"vocab_size": 257}']
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling.model import ModelConfig, Transformer
from scaling.sharding import DEFAULT_RULES, use_rules
from scaling.train.params import param_layout

REPO = Path(__file__).resolve().parents[2]
COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
REMAT = "Involuntary full rematerialization"

_CHILD = r"""
import json, os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ["JAX_PLATFORMS"] = "cpu"
import jax, numpy as np
from scaling.model import ModelConfig
from scaling.train.config import MeshConfig, OptimizerConfig
from scaling.train.mesh import make_mesh
from scaling.train.step import program

assert not jax.config.jax_compilation_cache_dir, "a cache hit would skip the partitioner and its warnings"
for case in json.loads(sys.argv[1]):
    d, f, m = case["mesh"]
    cfg = ModelConfig(**case["model"])
    mesh_cfg = MeshConfig(data=d, fsdp=f, model=m, rules=case.get("rules", {}))
    mesh = make_mesh(mesh_cfg, jax.devices()[: d * f * m])
    prog = program(cfg, OptimizerConfig(lr=1e-3), 1, mesh, mesh_cfg.sharding_rules())
    tokens = jax.ShapeDtypeStruct((case["batch"], cfg.seq_len + 1), np.int32, sharding=prog.batch_sharding())
    lr = jax.ShapeDtypeStruct((), np.float32)
    print(f"=== case {case['mesh']}", file=sys.stderr, flush=True)
    hlo = prog.train_step.lower(prog.abstract_params(), prog.abstract_opt_state(), tokens, lr).compile().as_text()
    sys.stderr.flush()
    print(json.dumps(hlo))
"""

_DTYPE_BYTES = {"f32": 4, "s32": 4, "u32": 4, "bf16": 2, "f16": 2, "pred": 1, "s8": 1, "u8": 1, "f64": 8, "s64": 8}
_OP = re.compile(r"=\s*(.*?)\s+(" + "|".join(COLLECTIVES) + r")(?:-start)?\(")
_ARRAY = re.compile(r"\b([a-z]+\d*)\[([\d,]*)\]")


def collectives(hlo: str) -> list[tuple[str, list[tuple[int, ...]], int]]:
    """Every collective of an HLO text as (op, result array shapes, result bytes)."""
    out = []
    for line in hlo.splitlines():
        match = _OP.search(line)
        if not match:
            continue
        shapes, nbytes = [], 0
        for dtype, dims in _ARRAY.findall(match.group(1)):
            shape = tuple(int(x) for x in dims.split(",") if x)
            shapes.append(shape)
            n = _DTYPE_BYTES.get(dtype, 4)
            for x in shape:
                n *= x
            nbytes += n
        out.append((match.group(2), shapes, nbytes))
    return out


def summary(found) -> dict[str, tuple[int, int]]:
    """op -> (count, result bytes)."""
    table = {op: [0, 0] for op in COLLECTIVES}
    for op, _, nbytes in found:
        table[op][0] += 1
        table[op][1] += nbytes
    return {op: (n, b) for op, (n, b) in table.items()}


def compile_cases(cases: list[dict], root: Path = REPO) -> list[tuple[str, list]]:
    """Compile each case's train step in one fresh process: [(its stderr, its collectives)]."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_COMPILATION_CACHE_DIR")}
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(cases)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = proc.stderr.split("=== case ")[1:]
    hlos = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('"')]
    assert len(logs) == len(hlos) == len(cases), proc.stderr[-3000:]
    return [(log, collectives(hlo)) for log, hlo in zip(logs, hlos)]


# width 64 = 4 heads of 16; at batch 16 and seq 64 each batch shard of a (2, 2, 2) mesh
# holds 256 tokens = the vocab: the whole-table lookup (the case where the old lookup printed
# the rematerialization warning). The third case takes the vocab-parallel lookup (vocab
# 1024) and grouped-query attention with the kv heads split over "model" like q (8 q heads,
# 4 kv heads): the shard-major fused q/k/v matmul.
MODEL = {"width": 64, "depth": 1, "head_dim": 16, "vocab_size": 256, "seq_len": 64}
CASES = [
    {"mesh": [2, 2, 2], "model": MODEL, "batch": 16},
    {"mesh": [2, 1, 4], "model": MODEL, "batch": 16},
    {
        "mesh": [1, 2, 4],
        "model": {**MODEL, "width": 128, "num_kv_heads": 4, "vocab_size": 1024},
        "batch": 16,
        "rules": {"kv": "model"},
    },
]
IDS = ["2x2x2", "2x1x4", "1x2x4-gqa-vocab1024"]


@pytest.fixture(scope="module")
def compiled():
    if sys.platform != "linux":
        pytest.skip("fake CPU devices via XLA_FLAGS")
    return compile_cases(CASES)


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_no_rematerialization_nor_resharding(compiled, index):
    log, found = compiled[index]
    assert REMAT not in log, log[:2000]
    table = summary(found)
    assert table["all-to-all"][0] == 0, table
    assert table["collective-permute"][0] == 0, table


@pytest.mark.parametrize("index", [1, 2], ids=IDS[1:])
def test_tensor_parallel_activation_all_reduces_are_megatrons_minimum(compiled, index):
    """Per block: forward, one all-reduce after attention's output projection and one after
    the MLP's down projection; backward, one for the input gradient of the fused q/k/v
    matmul and one for the MLP's up projection. A [batch shard x seq, width] activation."""
    case = CASES[index]
    d, f, _ = case["mesh"]
    activation = (case["batch"] // (d * f) * case["model"]["seq_len"], case["model"]["width"])
    _, found = compiled[index]
    count = sum(shapes.count(activation) for op, shapes, _ in found if op == "all-reduce")
    assert count == 4 * case["model"]["depth"], found


@pytest.mark.parametrize("kv_rule", ["model", None], ids=["kv-split", "kv-replicated"])
def test_grouped_query_layouts_match_one_device(kv_rule):
    """The shard-major fused q/k/v (kv heads split like q) and the per-projection matmuls
    (kv heads replicated) give one device's loss and gradients on a (1, 2, 4) mesh."""
    if len(jax.devices()) < 8:
        pytest.skip("needs 8 (fake CPU) devices")
    cfg = ModelConfig(width=128, depth=1, head_dim=16, num_kv_heads=4, vocab_size=64, seq_len=16)  # 8 q heads
    rules = tuple((name, kv_rule if name == "kv" else target) for name, target in DEFAULT_RULES)
    mesh = jax.make_mesh((1, 2, 4), ("data", "fsdp", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 3)
    graphdef, state = nnx.split(Transformer(cfg, rngs=nnx.Rngs(0)))
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, (4, cfg.seq_len + 1)).astype(np.int32)

    def loss(state, tokens, sharded):
        if sharded:
            with use_rules(mesh, rules):
                logits = nnx.merge(graphdef, state)(tokens[:, :-1])
        else:
            logits = nnx.merge(graphdef, state)(tokens[:, :-1])
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1))

    grad = jax.value_and_grad(loss)
    want_loss, want_grads = jax.jit(grad, static_argnums=2)(state, tokens, False)
    layout = param_layout(cfg)
    flat = layout.from_state(state)
    shardings = layout.shardings(mesh, rules)
    sharded_state = layout.to_state({n: jax.device_put(flat[n], shardings[n]) for n in flat})
    batch = jax.device_put(tokens, jax.sharding.NamedSharding(mesh, jax.P("fsdp", None)))
    got_loss, got_grads = jax.jit(grad, static_argnums=2)(sharded_state, batch, True)
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5)
    got, want = layout.from_state(got_grads), layout.from_state(want_grads)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-6, rtol=1e-4, err_msg=name)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="collectives of the sharded train step, per mesh")
    ap.add_argument("--model", default="{}", help="ModelConfig overrides as JSON")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--root", default=str(REPO), help="the checkout to measure (e.g. an older commit's)")
    args = ap.parse_args()
    model = {"width": 64, "depth": 2, "head_dim": 16, "vocab_size": 256, "seq_len": 64, **json.loads(args.model)}
    meshes = [(1, 1, 1), (8, 1, 1), (1, 8, 1), (2, 2, 2), (1, 2, 4), (2, 1, 4)]
    results = compile_cases([{"mesh": list(m), "model": model, "batch": args.batch} for m in meshes], Path(args.root))
    print(f"model {model}, batch {args.batch}")
    print("| mesh (data, fsdp, model) | remat warning | " + " | ".join(COLLECTIVES) + " | total |")
    print("|---|---|" + "---|" * (len(COLLECTIVES) + 1))
    for mesh, (log, found) in zip(meshes, results):
        table = summary(found)
        cells = [f"{n} ({b / 1024:.0f} KiB)" if n else "0" for n, b in table.values()]
        total_n, total_b = sum(n for n, _ in table.values()), sum(b for _, b in table.values())
        print(
            f"| {mesh} | {'yes' if REMAT in log else 'no'} | "
            + " | ".join(cells)
            + f" | {total_n} ({total_b / 1024:.0f} KiB) |"
        )


if __name__ == "__main__":
    main()
