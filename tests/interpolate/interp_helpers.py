"""The tiny run every interpolation test shares: width 64, depth 1, seq 32, 24 steps of batch
8, evaluated and checkpointed every 4 steps with every checkpoint kept. (Constants live here,
not in conftest.py, so that test modules can import them unambiguously.)"""

STEPS, EVERY = 24, 4
RUN = {
    "model": {"width": 64, "depth": 1, "head_dim": 32, "seq_len": 32},
    "data": {"source": "stdlib", "num_eval_batches": 2},
    "optimizer": {"lr": 1e-2},
    "schedule": {"kind": "cosine", "warmup": 2},
    "train": {
        "steps": STEPS,
        "global_batch_size": 8,
        "eval_every": EVERY,
        "checkpoint_every": EVERY,
        "keep": 100,
        "log_every": EVERY,
        "progress": False,
    },
}
EVAL_TOKENS = 8 * 2 * 32  # eval batch × eval batches × seq_len
