"""Weight-space analysis of a run's checkpoints: linear interpolation paths and their
barrier, checkpoint averaging (uniform, EMA), and compression (SVD truncation, quantization).

    from scaling.interpolate import interpolate, average
    path = interpolate("runs/tiny@300", "runs/tiny@600", points=21, t_range=(-0.5, 1.5))
    print(path.table()); path.barrier
    tradeoff("runs/pre@600", "runs/ft@300", {"pre": "runs/pre", "ft": "runs/ft"}).best
    compress("runs/tiny@600", svd=[0.5], bits=[4]).rows
    average("runs/tiny", last=3).improvement

Unlike `scaling.analysis` (which works on results tables and never imports JAX), this
package reads Orbax checkpoints and evaluates models, so it builds on `scaling.train`'s
public evaluation API only (`load_params`, `checkpoint_steps`, `param_shapes`, and the
`Evaluator`: the trainer's compiled eval step, shardings and validation batches), never
on trainer internals (tests/interpolate/test_interpolate_imports.py guards this).
CLI: `scaling interpolate` (see `scaling interpolate --help`).
"""

from scaling.interpolate.average import AverageResult, average, average_params, weights
from scaling.interpolate.checkpoints import Checkpoint, resolve, split_spec
from scaling.interpolate.compat import check_same_architecture
from scaling.interpolate.compress import CompressResult, compress, matrix_view, quantize
from scaling.interpolate.path import PathResult, barrier, grid, interpolate, path_losses
from scaling.interpolate.tradeoff import TradeoffResult, best_t, pareto_front, tradeoff

__all__ = [
    "AverageResult",
    "Checkpoint",
    "CompressResult",
    "PathResult",
    "TradeoffResult",
    "average",
    "average_params",
    "barrier",
    "best_t",
    "check_same_architecture",
    "compress",
    "grid",
    "interpolate",
    "matrix_view",
    "pareto_front",
    "path_losses",
    "quantize",
    "resolve",
    "split_spec",
    "tradeoff",
    "weights",
]
