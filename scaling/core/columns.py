"""Column names of the results store as its readers see them, in one place.

The sweep's store writes ``runs.csv`` (one row per run, ``scaling.sweep.store.RUN_COLUMNS``)
and ``curves.csv`` (one row per evaluation, ``CURVE_COLUMNS``). Two readers turn them into
the analysis's canonical columns (params, tokens, flops, loss): ``analysis.table.load_table``
and ``plotting.results.load_results``. Both take the names and the mapping from here, so
a renamed store column changes one line. Plain strings: importing this loads nothing.
"""

from __future__ import annotations

__all__ = [
    "BUDGET",
    "CANONICAL",
    "FLOPS",
    "FLOP_CONVENTION",
    "LOSS",
    "PARAMS",
    "PER_EVALUATION",
    "PLAN_KIND",
    "RUN_ID",
    "STATUS",
    "STEP",
    "STORE_LOSS",
    "STORE_PARAMS",
    "STORE_TO_CANONICAL",
    "TOKENS",
    "TRUNK",
    "LR_TUNE",
    "NOT_LAW_RUNS",
    "NOT_LAW_CURVES",
]

# The analysis's canonical columns: a law's inputs and its target.
PARAMS, TOKENS, FLOPS, LOSS = "params", "tokens", "flops", "loss"
CANONICAL = (PARAMS, TOKENS, FLOPS, LOSS)

# Store columns the readers use.
RUN_ID = "run_id"
STATUS = "status"
PLAN_KIND = "plan_kind"
FLOP_CONVENTION = "flop_convention"
BUDGET = "budget"  # the plan's IsoFLOP budget of a run
STEP = "step"
STORE_PARAMS = "params_nonembedding"  # N of a scaling law: non-embedding parameters
STORE_LOSS = "eval_loss"  # a run's final (runs.csv) or per-step (curves.csv) eval loss
# Store name -> canonical name (tokens and flops are spelled the same in both).
STORE_TO_CANONICAL = {STORE_PARAMS: PARAMS, STORE_LOSS: LOSS}
# Columns of runs.csv that describe the last evaluation, not the run: they give way to
# curves.csv's per-evaluation values when the two tables are joined.
PER_EVALUATION = (TOKENS, FLOPS, STEP, "train_loss", STORE_LOSS, "lr")
TRUNK = "trunk"  # plan_kind of a WSD trunk: constant LR, never annealed, not a law point
LR_TUNE = "lr_tune"  # plan_kind of a learning-rate tuning run: off-optimum by design, not a law point
# plan kinds left out of a law's table (final losses) and of its curves: a trunk's curve is
# the shared start of its branches, but its final loss is not annealed
NOT_LAW_RUNS = (TRUNK, LR_TUNE)
NOT_LAW_CURVES = (LR_TUNE,)
