"""Read a results directory (the sweep's store) into the frames the figures draw.

    res = load_results("results/quickstart")
    res.runs      # finished runs: params, tokens, flops, loss, budget, run_id, width, ...
    res.curves    # evaluations of those runs: run_id, step, params, tokens, flops, loss, budget, ...
    res.interpolations()   # [(path, {"t": [...], "loss": [...], "barrier": ...}), ...]

``params`` is the non-embedding parameter count and ``loss`` the eval loss, as in
``scaling.analysis.table.load_table`` (both read the store's names from ``scaling.core.columns``). The plan's IsoFLOP budget (``budget``) is kept
when the table has it, else derived by grouping FLOPs (``analysis.isoflop.group_budgets``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.core.columns import (
    BUDGET,
    FLOPS,
    LOSS,
    NOT_LAW_CURVES,
    NOT_LAW_RUNS,
    PARAMS,
    PLAN_KIND,
    RUN_ID,
    STATUS,
    STEP,
    STORE_LOSS,
    STORE_PARAMS,
    STORE_TO_CANONICAL,
    TOKENS,
)
from scaling.core.status import DONE

__all__ = ["MissingInput", "Results", "load_results"]


class MissingInput(Exception):
    """A figure's inputs are absent: the figure is skipped with this message."""


@dataclass(frozen=True)
class Results:
    root: Path
    runs: pd.DataFrame
    curves: pd.DataFrame | None

    @property
    def budgets(self) -> np.ndarray:
        return np.unique(self.runs[BUDGET].to_numpy(float))

    def curves_with(self, min_points: int) -> pd.DataFrame:
        """Curve rows of the runs that have at least ``min_points`` evaluations."""
        if self.curves is None or self.curves.empty:
            raise MissingInput(f"{self.root}/curves.csv is absent or empty")
        n = self.curves.groupby(RUN_ID)[STEP].transform("nunique")
        out = self.curves[n >= min_points]
        if out.empty:
            raise MissingInput(f"no run in {self.root}/curves.csv has {min_points}+ evaluations")
        return out

    def interpolations(self) -> list[tuple[Path, dict]]:
        """Weight-path interpolation results (``interpolation/*.json``), sorted by name."""
        found = []
        for path in sorted((self.root / "interpolation").glob("*.json")):
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "t" in data and "loss" in data:
                found.append((path, data))
        return found


def _budget_column(df: pd.DataFrame) -> np.ndarray:
    from scaling.analysis.isoflop import group_budgets

    flops = df[FLOPS].to_numpy(float)
    if BUDGET in df.columns:
        b = pd.to_numeric(df[BUDGET], errors="coerce").to_numpy(float)
        if np.all(np.isfinite(b) & (b > 0)):
            return b
    labels = group_budgets(flops)
    geo = {lab: float(np.exp(np.mean(np.log(flops[labels == lab])))) for lab in np.unique(labels)}
    return np.array([geo[lab] for lab in labels])


def load_results(results_dir: str | Path) -> Results:
    """Finished runs and their curves from ``results_dir`` (MissingInput when absent)."""
    root = Path(results_dir)
    runs_csv = root / "runs.csv"
    if not runs_csv.is_file():
        raise MissingInput(f"{runs_csv} not found (run a sweep, or pass a results directory)")
    raw = pd.read_csv(runs_csv)
    if STATUS in raw.columns:
        raw = raw[raw[STATUS].astype(str) == DONE]
    # the law's runs and curves, as scaling.analysis.load_table reads them (no LR-tuning
    # runs; a WSD trunk's curve but not its final loss)
    kind = raw[PLAN_KIND].astype(str) if PLAN_KIND in raw.columns else pd.Series("", index=raw.index)
    raw = raw[~kind.isin(NOT_LAW_CURVES)]
    law = ~kind[raw.index].isin(NOT_LAW_RUNS)
    need = [RUN_ID, STORE_PARAMS, TOKENS, FLOPS, STORE_LOSS]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise MissingInput(f"{runs_csv} lacks column(s) {missing}")
    every = raw.rename(columns=STORE_TO_CANONICAL)
    every = every[np.isfinite(every[LOSS].astype(float)) & (every[LOSS].astype(float) > 0)]
    if not law[every.index].any():
        raise MissingInput(f"{runs_csv} has no finished run with a finite eval loss")
    every = every.assign(budget=_budget_column(every))
    runs = every[law[every.index]].sort_values([BUDGET, PARAMS, RUN_ID]).reset_index(drop=True)

    curves = None
    curves_csv = root / "curves.csv"
    if curves_csv.is_file():
        c = pd.read_csv(curves_csv)
        if not c.empty and STORE_LOSS in c.columns:
            c = c[np.isfinite(c[STORE_LOSS].astype(float)) & (c[STORE_LOSS].astype(float) > 0)]
            c = c.rename(columns={STORE_LOSS: LOSS})
            keep = [k for k in (RUN_ID, PARAMS, BUDGET, "width", "depth") if k in every.columns]
            c = c.merge(every[keep], on=RUN_ID, how="inner")
            curves = c.sort_values([BUDGET, PARAMS, RUN_ID, STEP]).reset_index(drop=True)
    return Results(root=root, runs=runs, curves=curves)
