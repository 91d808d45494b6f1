"""Dense against low-rank at equal parameters and at equal FLOPs, at CPU scale.

    uv run --frozen python experiments/lowrank.py [--runs runs/along_curve] [--out results/lowrank]

Dense: widths 16, 24, 32 of the family of experiments/finetune.py (depth 2, head_dim 8,
seq_len 64, 1,000 steps of 16 sequences = 1.02M tokens, cosine; the same runs, trained
there or here). Low-rank: `model.lowrank_ratio = 1/6` (every attention and MLP matrix
U·V with rank = round(width / 6)), trained from scratch with the same data, optimizer and
schedule, at the width (a multiple of head_dim) whose non-embedding N is closest to
the dense model's (twice the dense width, N within 5%), twice:
- equal parameters: the same 1,000 steps (same tokens);
- equal FLOPs: steps = 1000 · F_dense / F_lowrank (exact FLOPs per token, every matmul),
  so both spend the dense run's training compute. The wider low-rank model pays more for
  attention and the readout per token, so it sees fewer tokens.
Each comparison is the final held-out loss on the same validation batches.

Writes RESULTS/runs.csv; drawn by paper_figures/fig11_lowrank.py. ~10 CPU-minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from finetune import HEAD_DIM, PRETRAIN_STEPS, REPO, ensure_pretrained, model, pretrain_config  # noqa: E402

DENSE_WIDTHS = (16, 24, 32)
RATIO = 1 / 6
COLUMNS = ("kind", "width", "rank", "params_nonembedding", "flops_per_token", "steps", "tokens", "flops", "eval_loss")


def matched_width(n_dense: int) -> int:
    """The low-rank width (a multiple of head_dim) whose N is closest to n_dense."""
    from scaling.model import ModelConfig, params_nonembedding

    cands = range(HEAD_DIM, 257, HEAD_DIM)
    return min(cands, key=lambda w: abs(params_nonembedding(ModelConfig(**model(w, lowrank_ratio=RATIO))) - n_dense))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=str(REPO / "runs" / "along_curve"), help="where the runs train")
    p.add_argument("--out", default=str(REPO / "results" / "lowrank"), help="results directory")
    args = p.parse_args(argv)
    from scaling.atomic import write_text
    from scaling.model import ModelConfig, flops_per_token, params_nonembedding
    from scaling.runtime import enable_compilation_cache
    from scaling.train import train

    enable_compilation_cache()
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokens_per_step = pretrain_config(16)["train"]["global_batch_size"] * model(16)["seq_len"]
    rows = []

    def record(kind, cfg_model, steps, loss):
        f = flops_per_token(cfg_model, "exact")
        rows.append(
            (
                kind,
                cfg_model.width,
                cfg_model.rank or "",
                params_nonembedding(cfg_model),
                f,
                steps,
                steps * tokens_per_step,
                f * steps * tokens_per_step,
                loss,
            )  # fmt: skip
        )

    dense_runs = ensure_pretrained(runs, DENSE_WIDTHS)
    for w, d in dense_runs.items():
        dense = ModelConfig(**model(w))
        res = train(pretrain_config(w), d)
        record("dense", dense, PRETRAIN_STEPS, res.final_eval_loss)
        lw = matched_width(params_nonembedding(dense))
        low = ModelConfig(**model(lw, lowrank_ratio=RATIO))
        eq_flops_steps = round(PRETRAIN_STEPS * flops_per_token(dense, "exact") / flops_per_token(low, "exact"))
        for kind, steps in (("lowrank_equal_params", PRETRAIN_STEPS), ("lowrank_equal_flops", eq_flops_steps)):
            d_low = runs / f"lowrank{RATIO:g}_w{lw}_s{steps}"
            res = train(pretrain_config(lw, steps=steps, lowrank_ratio=RATIO), d_low)
            if res.status != "done":
                raise RuntimeError(f"{d_low}: {res.status} {res.error}")
            record(kind, low, steps, res.final_eval_loss)
            print(f"dense w{w} vs {kind} w{lw} r{low.rank}: {rows[-1][-1]:.4f}", flush=True)
    lines = [",".join(COLUMNS)] + [",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in r) for r in rows]
    write_text(out / "runs.csv", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
