"""Fine-tuning along the family: forgetting, best mixing weight t and its gain, against N.

    uv run --frozen python experiments/finetune.py [--runs runs/along_curve] [--out results/finetune]

1. Pre-trains a small family (widths 16, 24, 32, 48; depth 2; head_dim 8; seq_len 64;
   byte tokens of CPython's stdlib *.py, the default corpus; 1,000 steps of 16 sequences,
   about 1M tokens each, cosine schedule). These runs are shared with
   experiments/compression.py and experiments/lowrank.py (the trainer skips finished runs).
2. Fine-tunes each width with `train.init_params_from` on a second corpus that is not in
   the pre-training data: the email messages of the stdlib's test suite
   (`<stdlib>/test/test_email/data`, 65 RFC 822 text files, ~100 KB; not *.py, so never
   part of the default corpus; 10 files, ~4.7k tokens, hashed into validation), 150 steps
   (~1.5 epochs), fresh AdamW, warmup 10, cosine, peak lr 3e-3.
3. Evaluates θ(t) = (1 − t)·θ_pre + t·θ_ft for t = 0, 0.05, ..., 1 on both validation sets
   (`scaling.interpolate.tradeoff`: code = the pre-training run's, email = the fine-tuning
   run's), with the best t by the constrained rule: the lowest email loss with the code loss
   at most EPSILON = 0.05 nats above its t = 0 value.

Writes RESULTS/{pretrain.csv, summary.csv, tradeoff_w<W>.json}; drawn by
paper_figures/fig9_finetune.py. Deterministic (seeds 0); about 10 CPU-minutes on 2 idle
cores, most of it the pre-training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WIDTHS = (16, 24, 32, 48)
DEPTH, HEAD_DIM, SEQ_LEN, BATCH = 2, 8, 64, 16
PRETRAIN_STEPS, FT_STEPS = 1000, 150
EPSILON = 0.05
EVAL = {"eval_batch_size": 16, "num_eval_batches": 8}
FT_EVAL = {"eval_batch_size": 8, "num_eval_batches": 4}  # the email validation files hold ~4.7k tokens


def model(width: int, **extra) -> dict:
    return {"width": width, "depth": DEPTH, "head_dim": HEAD_DIM, "seq_len": SEQ_LEN, "init_std": 0.1, **extra}


def pretrain_config(width: int, steps: int = PRETRAIN_STEPS, **model_extra) -> dict:
    """The family's pre-training run (the lowrank experiment adds model keys and lengths)."""
    return {
        "model": model(width, **model_extra),
        "data": {"source": "stdlib", "tokenizer": "bytes", **EVAL},
        "optimizer": {"lr": 1e-2},
        "schedule": {"kind": "cosine", "warmup": 0.05, "min_lr_ratio": 0.1},
        "train": {
            "steps": steps,
            "global_batch_size": BATCH,
            "eval_every": steps,
            "checkpoint_every": steps,
            "keep": 1,
            "log_every": 100,
            "progress": False,
        },
    }


def email_corpus() -> Path:
    from scaling.data.sources import stdlib_root

    path = stdlib_root() / "test" / "test_email" / "data"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: this Python has no test suite; pass --corpus DIR")
    return path


def finetune_config(width: int, parent: Path, corpus: Path) -> dict:
    return {
        "model": model(width),
        "data": {"source": "text", "paths": [str(corpus)], "tokenizer": "bytes", "validation_fraction": 0.3, **FT_EVAL},
        "optimizer": {"lr": 3e-3},
        "schedule": {"kind": "cosine", "warmup": 10, "min_lr_ratio": 0.1},
        "train": {
            "steps": FT_STEPS,
            "global_batch_size": BATCH,
            "eval_every": FT_STEPS,
            "eval_at_start": True,
            "checkpoint_every": FT_STEPS,
            "keep": 1,
            "log_every": 50,
            "progress": False,
            "init_params_from": f"{parent}@{PRETRAIN_STEPS}",
        },
    }


def ensure_pretrained(runs: Path, widths=WIDTHS) -> dict[int, Path]:
    """Train (or find finished) the pre-training family; {width: run dir}."""
    from scaling.train import train

    out = {}
    for w in widths:
        d = runs / f"pre_w{w}"
        res = train(pretrain_config(w), d)
        if res.status != "done":
            raise RuntimeError(f"{d}: {res.status} {res.error}")
        print(f"pre-trained width {w}: eval_loss {res.final_eval_loss:.4f}", flush=True)
        out[w] = d
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=str(REPO / "runs" / "along_curve"), help="where the runs train")
    p.add_argument("--out", default=str(REPO / "results" / "finetune"), help="results directory")
    p.add_argument("--corpus", default=None, help="fine-tuning corpus (default: the stdlib's email test data)")
    args = p.parse_args(argv)
    from scaling.atomic import write_json, write_text
    from scaling.interpolate import tradeoff
    from scaling.model import ModelConfig, params_nonembedding
    from scaling.runtime import enable_compilation_cache
    from scaling.train import train

    enable_compilation_cache()
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Path(args.corpus) if args.corpus else email_corpus()
    pre = ensure_pretrained(runs)
    pre_rows, rows = (
        ["width,params_nonembedding,steps,tokens,eval_loss"],
        [
            "width,params_nonembedding,code_loss_pre,email_loss_pre,code_loss_ft,email_loss_ft,"
            "forgetting_at_1,gain_at_1,best_t,gain_at_best,gain_share_at_best,forgetting_at_best"
        ],
    )
    for w, d in pre.items():
        n = params_nonembedding(ModelConfig(**model(w)))
        final = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()][-1]
        pre_rows.append(f"{w},{n},{final['step']},{final['tokens']},{final['eval_loss']:.6f}")
        ft = runs / f"ft_w{w}"
        res = train(finetune_config(w, d, corpus), ft)
        if res.status != "done":
            raise RuntimeError(f"{ft}: {res.status} {res.error}")
        tr = tradeoff(
            f"{d}@{PRETRAIN_STEPS}",
            f"{ft}@{FT_STEPS}",
            {"code": str(d), "email": str(ft)},
            points=21,
            t_range=(0.0, 1.0),
            rule="constrained",
            epsilon=EPSILON,
        )
        record = tr.to_dict()
        record["width"], record["params_nonembedding"] = w, n
        record["corpus"] = {"finetune": str(corpus.relative_to(corpus.parents[2])), "pretrain": "stdlib *.py"}
        for k in ("checkpoint_a", "checkpoint_b"):  # machine-local paths out of the committed file
            record[k] = {"spec": Path(record[k]["run_dir"]).name + f"@{record[k]['step']}", "step": record[k]["step"]}
        for s in record["sources"].values():
            s["source"] = Path(s["source"]).name
        write_json(out / f"tradeoff_w{w}.json", record)
        s, code, email = tr.summary, tr.losses["code"], tr.losses["email"]
        rows.append(
            f"{w},{n},{code[0]:.6f},{email[0]:.6f},{code[-1]:.6f},{email[-1]:.6f},{s['forgetting_at_1']:.6f},"
            f"{s['gain_at_1']:.6f},{tr.best['t']:.2f},{s['gain_at_best']:.6f},{s['gain_share_at_best']:.6f},"
            f"{s['forgetting_at_best']:.6f}"
        )
        print(tr.table(), flush=True)
    write_text(out / "pretrain.csv", "\n".join(pre_rows) + "\n")
    write_text(out / "summary.csv", "\n".join(rows) + "\n")
    print(f"wrote {out}/summary.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
