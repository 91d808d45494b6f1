"""Hyperparameter scaling laws: the optimal learning rate and batch size as power laws of N and D.

Two steps, as in Li et al. 2025 ("Step Law", arXiv:2503.04715), with a more robust first one:

1. ``cell_optima``: for every (N, D) cell of an lr x batch grid, the optimum from a smooth
   fit, not the raw argmin. The loss near the best grid point is fitted by a quadratic in
   (log lr, log batch) over a window of grid steps around it; its minimum (kept inside the
   window) is the cell's optimum. The raw argmin snaps to grid values a factor sqrt(2) or 2
   apart and jumps between near-tied points, which is noise the power-law fit then absorbs.
   An optimum on the grid's edge warns, naming the cell: the true one may lie beyond it.
2. ``fit_hparam_laws``: log eta* = log a + alpha log N + beta log D (law ``lr_nd``) and
   log B* = log c + gamma log D (``batch_d``; or ``batch_nd``) through ``fit_law`` and
   ``bootstrap``, so the results are the loss laws' own FitResult / BootstrapResult (the
   fitted "loss" is the optimum). The Huber threshold is in log-hyperparameter units
   (``HPARAM_DELTA``, about one sqrt(2) grid step), not the loss laws' 1e-3.

``HparamLaws`` bundles the two fits with the table of optima; its JSON is what a sweep's
``[hparams] lr = "law"`` reads (``predict(params, tokens)`` -> (lr, batch)).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .fit import fit_law
from .laws import get_law
from .results import FitResult

__all__ = ["cell_optima", "fit_hparam_laws", "HparamLaws", "HPARAM_DELTA", "EdgeOptimumWarning"]

HPARAM_DELTA = 0.3  # Huber threshold on log(lr) / log(batch) residuals: ~one sqrt(2) grid step
WINDOW_STEPS = 2.0  # the quadratic is fitted to grid points within this many steps of the best
MIN_WINDOW_POINTS = 8  # fewer than this in the window: widen it by one step (up to the whole grid)
CELL_RTOL = 0.02  # cell values (N, D) this close are one cell: runs at different batches round steps apart


class EdgeOptimumWarning(UserWarning):
    """A cell's best point lies on the edge of its lr or batch grid."""


def _grid_values(x: np.ndarray, rtol: float = 0.01) -> np.ndarray:
    """Distinct grid values of a log axis, merging values within rtol (0.000345 vs 0.0003453)."""
    xs = np.sort(np.unique(x))
    out = [xs[0]]
    for v in xs[1:]:
        if v - out[-1] > np.log1p(rtol):
            out.append(v)
    return np.array(out)


def _cell_levels(v: np.ndarray, name: str) -> np.ndarray:
    """Values within CELL_RTOL of each other (chained, sorted) -> their geometric mean."""
    if np.any(~(v > 0)):
        i = int(np.nonzero(~(v > 0))[0][0])
        raise ValueError(f"column {name!r} must be positive; row {i} is {v[i]!r}")
    lv = np.log(v)
    order = np.argsort(lv)
    group = np.concatenate([[0], np.cumsum(np.diff(lv[order]) > np.log1p(CELL_RTOL))])
    out = v.astype(float).copy()
    for g in np.unique(group):
        at = order[group == g]
        if np.ptp(v[at]) > 0:  # a single value is kept exactly
            out[at] = np.exp(lv[at].mean())
    return out


def _snap(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return grid[np.argmin(np.abs(x[:, None] - grid[None, :]), axis=1)]


def _quadratic_optimum(x, y, z, box):
    """Minimum of z ~ c0 + c1 x + c2 y + c3 x^2 + c4 y^2 + c5 xy inside box, or None."""
    A = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1)
    c, *_ = np.linalg.lstsq(A, z, rcond=None)
    H = np.array([[2 * c[3], c[5]], [c[5], 2 * c[4]]])
    if np.any(np.linalg.eigvalsh(H) <= 0):
        return None
    opt = np.linalg.solve(H, -c[1:3])
    clipped = np.clip(opt, box[0], box[1])
    val = c @ np.array([1, clipped[0], clipped[1], clipped[0] ** 2, clipped[1] ** 2, clipped[0] * clipped[1]])
    return clipped, float(val), bool(np.any(clipped != opt))


def _axis_optimum(u, z, lo, hi):
    """1-D quadratic minimum in [lo, hi], or None when not convex."""
    if len(np.unique(u)) < 3:
        return None
    c = np.polyfit(u, z, 2)
    if c[0] <= 0:
        return None
    return float(np.clip(-c[1] / (2 * c[0]), lo, hi))


def _cell_label(cell: Mapping) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in cell.items())


def cell_optima(
    data,
    *,
    lr: str = "lr",
    batch: str = "batch_size",
    loss: str = "loss",
    cell: Sequence[str] = ("params", "tokens"),
    window: float = WINDOW_STEPS,
    warn: bool = True,
) -> pd.DataFrame:
    """The optimal (lr, batch) of every cell of an lr x batch grid, from a smooth local fit.

    data: a DataFrame (or anything ``load_table`` reads) with the cell columns (default
    params, tokens), ``lr``, ``batch`` and ``loss``. Non-finite losses (diverged runs)
    are dropped. Cell values within 2% (``CELL_RTOL``) are one cell, reported at their
    geometric mean: a sweep's runs at different batch sizes train slightly different D.
    Returns one row per cell: the cell columns, ``lr``, ``batch_size``, ``loss`` (the
    fitted minimum), ``argmin_lr``, ``argmin_batch``, ``argmin_loss`` (the best grid
    point), ``n_points``, ``n_window``, ``method`` ("quadratic", "axes" when the 2-D
    quadratic is not convex, "argmin" when neither is) and ``edge`` ("" or which edges the
    best grid point is on). Raises ValueError when a cell has a single value on an axis.
    """
    df = _as_frame(data)
    need = list(cell) + [lr, batch, loss]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"cell_optima needs columns {need}; missing {missing} (the table has {list(df.columns)})")
    for c in (lr, batch):
        bad = ~(pd.to_numeric(df[c], errors="coerce") > 0)
        if bad.any():
            i = df.index[bad.to_numpy()][0]
            raise ValueError(f"column {c!r} must be positive; row {i} is {df.loc[i, c]!r}")
    df = df[np.isfinite(pd.to_numeric(df[loss], errors="coerce"))].copy()
    for c in cell:  # a sweep's batch sizes round steps differently: D varies ~0.5% within a cell
        df[c] = _cell_levels(pd.to_numeric(df[c], errors="coerce").to_numpy(float), c)
    rows = []
    for key, g in df.groupby(list(cell), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        where = dict(zip(cell, (float(k) for k in key)))
        rows.append(_one_cell(g, where, lr, batch, loss, window, warn))
    return pd.DataFrame(rows)


def _as_frame(data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    from .table import load_table

    return load_table(data)


def _one_cell(g: pd.DataFrame, where: dict, lr: str, batch: str, loss: str, window: float, warn: bool) -> dict:
    label = _cell_label(where)
    x = np.log(g[lr].to_numpy(float))
    y = np.log(g[batch].to_numpy(float))
    z = g[loss].to_numpy(float)
    gx, gy = _grid_values(x), _grid_values(y)
    for name, col, gv in ((lr, "lr", gx), (batch, "batch", gy)):
        if len(gv) < 2:
            raise ValueError(
                f"cell ({label}): column {name!r} has a single value ({np.exp(gv[0]):.4g}); "
                f"an lr x batch grid needs at least 2 {col} values per cell (3+ to locate an optimum)"
            )
    x, y = _snap(x, gx), _snap(y, gy)
    i = int(np.argmin(z))
    bx, by = x[i], y[i]
    ix, iy = int(np.searchsorted(gx, bx)), int(np.searchsorted(gy, by))
    edges = []
    for name, j, gv in (("lr", ix, gx), ("batch", iy, gy)):
        if j == 0:
            edges.append(f"smallest {name}")
        elif j == len(gv) - 1:
            edges.append(f"largest {name}")
    edge = ", ".join(edges)
    if edge and warn:
        warnings.warn(
            f"cell ({label}): the best point (lr={np.exp(bx):.4g}, batch={np.exp(by):.4g}) is at the "
            f"{edge} of the grid; the optimum may lie beyond it (extend the grid there)",
            EdgeOptimumWarning,
            stacklevel=3,
        )
    # the window: grid steps around the best point, widened until it holds enough points
    sx, sy = np.median(np.diff(gx)), np.median(np.diff(gy))
    steps = float(window)
    while True:
        inw = (np.abs(x - bx) <= steps * sx * 1.001) & (np.abs(y - by) <= steps * sy * 1.001)
        big = steps * min(sx, sy) > max(np.ptp(gx), np.ptp(gy))
        if inw.sum() >= MIN_WINDOW_POINTS or big:
            break
        steps += 1.0
    xw, yw, zw = x[inw], y[inw], z[inw]
    box = (np.array([xw.min(), yw.min()]), np.array([xw.max(), yw.max()]))
    method, opt, val = "argmin", (bx, by), float(z[i])
    if len(np.unique(xw)) >= 3 and len(np.unique(yw)) >= 3 and inw.sum() >= 6:
        q = _quadratic_optimum(xw, yw, zw, box)
        if q is not None:
            (ox, oy), val, _ = q
            method, opt = "quadratic", (ox, oy)
    if method == "argmin":
        row, col = (yw == by), (xw == bx)
        ox = _axis_optimum(xw[row], zw[row], box[0][0], box[1][0])
        oy = _axis_optimum(yw[col], zw[col], box[0][1], box[1][1])
        if ox is not None or oy is not None:
            method, opt = "axes", (bx if ox is None else ox, by if oy is None else oy)
    return {
        **where,
        "lr": float(np.exp(opt[0])),
        "batch_size": float(np.exp(opt[1])),
        "loss": float(val),
        "argmin_lr": float(np.exp(bx)),
        "argmin_batch": float(np.exp(by)),
        "argmin_loss": float(z[i]),
        "n_points": int(len(z)),
        "n_window": int(inw.sum()),
        "method": method,
        "edge": edge,
    }


@dataclass
class HparamLaws:
    """Fitted optimal-lr and optimal-batch laws, with the per-cell optima they came from.

    lr, batch: FitResults of laws such as ``lr_nd`` and ``batch_d`` (with ``.intervals`` and
    ``.bootstrap`` when bootstrapped); the value they "predict" is the optimum.
    batch_unit: "tokens" or "sequences" (with seq_len, to convert); optima: the cells.
    provenance: where the grid came from (``scaling fit-hparams`` records the source, the
    hash of the runs it read, seed, bootstrap size and package versions).
    """

    lr: FitResult
    batch: FitResult
    batch_unit: str = "sequences"
    seq_len: int | None = None
    optima: pd.DataFrame | None = field(default=None, repr=False)
    provenance: dict | None = field(default=None, repr=False)

    def predict(self, params, tokens) -> tuple[np.ndarray, np.ndarray]:
        """(optimal lr, optimal batch size in ``batch_unit``) at N = params, D = tokens."""
        return _law_predict(self.lr, params, tokens), _law_predict(self.batch, params, tokens)

    def predict_interval(self, params, tokens, level: float | None = None):
        """((lr_lo, lr_hi), (batch_lo, batch_hi)) percentile intervals from the bootstraps."""
        out = []
        for f in (self.lr, self.batch):
            if f.bootstrap is None:
                raise ValueError("intervals need a bootstrap: fit_hparam_laws(..., n_boot=1000)")
            law = get_law(f.law)
            out.append(f.bootstrap.interval(law.predict_many(f.bootstrap.draws, **_inputs(law, params, tokens)), level))
        return tuple(out)

    def batch_sequences(self, params, tokens, seq_len: int) -> np.ndarray:
        """The optimal batch size in sequences of seq_len tokens."""
        b = _law_predict(self.batch, params, tokens)
        return b / seq_len if self.batch_unit == "tokens" else b * (self.seq_len or seq_len) / seq_len

    def summary(self) -> str:
        lines = [
            f"optimal learning rate ({self.lr.law}):",
            self.lr.summary(),
            f"optimal batch size, in {self.batch_unit} ({self.batch.law}):",
            self.batch.summary(),
        ]
        if self.optima is not None:
            methods = {str(k): int(v) for k, v in self.optima["method"].value_counts().items()}
            lines.append(f"cells: {len(self.optima)}; methods: {methods}")
            edge = self.optima[self.optima["edge"] != ""]
            if len(edge):
                lines.append(f"cells with the best point on the grid's edge: {len(edge)}")
        return "\n".join(lines)

    __str__ = summary

    def to_dict(self) -> dict:
        d = {
            "kind": "hparam_laws",
            "lr": self.lr.to_dict(),
            "batch": self.batch.to_dict(),
            "batch_unit": self.batch_unit,
            "seq_len": self.seq_len,
        }
        if self.optima is not None:
            d["optima"] = json.loads(self.optima.to_json(orient="records"))
        if self.provenance is not None:
            d["provenance"] = dict(self.provenance)
        return d

    def to_frame(self) -> pd.DataFrame:
        return self.optima.copy() if self.optima is not None else pd.DataFrame()

    @classmethod
    def from_dict(cls, d: Mapping) -> HparamLaws:
        if d.get("kind") != "hparam_laws" or "lr" not in d or "batch" not in d:
            raise ValueError("not a hyperparameter-law file: it needs kind='hparam_laws' and 'lr', 'batch' fits")
        optima = pd.DataFrame(d["optima"]) if d.get("optima") else None
        return cls(
            lr=FitResult.from_dict(d["lr"]),
            batch=FitResult.from_dict(d["batch"]),
            batch_unit=d.get("batch_unit", "sequences"),
            seq_len=d.get("seq_len"),
            optima=optima,
            provenance=d.get("provenance"),
        )

    def to_json(self, path=None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            from scaling.atomic import write_text

            write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, path_or_text) -> HparamLaws:
        from pathlib import Path

        s = str(path_or_text)
        text = s if s.lstrip().startswith("{") else Path(s).read_text()
        return cls.from_dict(json.loads(text))


def _inputs(law, params, tokens) -> dict:
    return {k: v for k, v in (("params", params), ("tokens", tokens)) if k in law.inputs}


def _law_predict(fit: FitResult, params, tokens) -> np.ndarray:
    law = get_law(fit.law)
    return law.predict(fit.params, **_inputs(law, params, tokens))


def fit_hparam_laws(
    optima: pd.DataFrame,
    *,
    lr_law: str = "lr_nd",
    batch_law: str = "batch_d",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    delta: float = HPARAM_DELTA,
    batch_unit: str = "sequences",
    seq_len: int | None = None,
) -> HparamLaws:
    """Fit power laws to per-cell optima (the output of ``cell_optima``).

    Each law is fitted with ``fit_law`` (Huber on log residuals, threshold ``delta``) and,
    when n_boot > 0, bootstrapped over cells with ``bootstrap`` (percentile intervals at
    ``level``), so the results carry ``.intervals`` like any loss-law fit.
    """
    from .uncertainty import bootstrap

    if batch_unit not in ("sequences", "tokens"):
        raise ValueError(f"batch_unit must be 'sequences' or 'tokens'; got {batch_unit!r}")
    need = ("params", "tokens", "lr", "batch_size")
    missing = [c for c in need if c not in optima.columns]
    if missing:
        raise ValueError(f"optima need columns {list(need)}; missing {missing} (use cell_optima first)")
    fits = []
    for law, col in ((lr_law, "lr"), (batch_law, "batch_size")):
        table = pd.DataFrame(
            {
                "params": optima["params"],
                "tokens": optima["tokens"],
                "loss": optima[col],
                "run_id": np.arange(len(optima)),
            }
        )
        f = fit_law(table, law, delta=delta)
        if n_boot:
            boot = bootstrap(table, fit=f, n_boot=n_boot, seed=seed, level=level)
            assert boot.fit is not None  # bootstrap attaches the full-data fit
            f = boot.fit
        fits.append(f)
    return HparamLaws(lr=fits[0], batch=fits[1], batch_unit=batch_unit, seq_len=seq_len, optima=optima.copy())
