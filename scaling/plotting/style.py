"""One look for every figure: the paper style, the compute-budget colour scale, the
axis labels with units, and deterministic saving (same inputs -> byte-identical files).

    with paper_style():
        fig, ax = plt.subplots()
        scale = BudgetScale(budgets)           # viridis over log10 C, one marker per budget
        ax.plot(N, L, color=scale.color(C), marker=scale.marker(C))
        scale.colorbar(fig, ax)
        paths = save(fig, out_dir, "fig1_isoflop")   # PNG + PDF, fixed metadata

Everything is drawn so it reads in grayscale too: budgets differ by marker as well as
colour, and methods (Approaches 1/2/3, interpolants, parameter sets) by line style.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker as mticker

from scaling.atomic import atomic_path

__all__ = [
    "LABELS",
    "METHOD_STYLES",
    "BudgetScale",
    "format_budget",
    "log_axis",
    "loss_axis",
    "paper_style",
    "save",
    "sci",
]

# Axis labels with units, used by every figure.
LABELS = {
    "params": "Parameters $N$ (non-embedding)",
    "tokens": "Training tokens $D$",
    "flops": "Training compute $C$ (FLOPs)",
    "loss": "Eval loss (nats/token)",
    "train_loss": "Train loss (nats/token)",
    "width": "Width $d_\\mathrm{model}$",
    "lr": "Peak learning rate",
    "rms": "Activation RMS",
}

# Line style per method, so methods differ in grayscale as well as colour.
METHOD_STYLES = {
    "approach1": dict(color="#1b9e77", linestyle="-", marker="o", label="Approach 1 (envelope)"),
    "approach2": dict(color="#d95f02", linestyle="--", marker="s", label="Approach 2 (IsoFLOP)"),
    "approach3": dict(color="#7570b3", linestyle=":", marker="^", label="Approach 3 (parametric fit)"),
    "ours": dict(color="black", linestyle="-", label="our fit"),
    "epoch": dict(color="#d95f02", linestyle="--", label="Epoch AI (2024)"),
    "hoffmann": dict(color="#7570b3", linestyle=":", label="Hoffmann et al. (2022)"),
    "data": dict(color="0.35", linestyle="none", marker="o"),
    "fit": dict(color="black", linestyle="-"),
    "extrapolation": dict(color="black", linestyle="--"),
}

BUDGET_CMAP = "viridis"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")

_RC = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "lines.markersize": 4.5,
    "errorbar.capsize": 2,
    "image.cmap": BUDGET_CMAP,
    # deterministic output: no random ids in SVG, TrueType fonts embedded in PDF
    "svg.hashsalt": "scaling-paper-figures",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "path.simplify": True,
}

# Fixed file metadata: no creation dates, no version strings, so reruns are byte-identical.
_PDF_METADATA = {"CreationDate": None, "ModDate": None, "Creator": "scaling paper_figures", "Producer": "scaling"}
_PNG_METADATA = {"Software": None}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """The figures' rcParams, restored on exit."""
    with plt.rc_context(_RC):
        yield


def save(fig, out_dir: str | Path, name: str, *, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``out_dir/name.{png,pdf}`` with fixed metadata and close the figure."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        meta = {"png": _PNG_METADATA, "pdf": _PDF_METADATA}.get(fmt)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths


def sci(value: float, digits: int = 2) -> str:
    """10^5, 2×10^5, 5.74×10^5 (mathtext), for ticks and titles."""
    if not value > 0:
        return ""
    exp = int(np.floor(np.log10(value) + 1e-9))
    mant = float(f"{value / 10.0**exp:.{digits}g}")
    if mant >= 10:
        mant, exp = mant / 10, exp + 1
    if abs(mant - 1) < 1e-9:
        return f"$10^{{{exp}}}$"
    return f"${mant:g}\\times10^{{{exp}}}$"


def _sci(value: float, _pos=None) -> str:
    return sci(value)


def log_axis(axis) -> None:
    """Readable ticks on a log axis (``ax.xaxis`` / ``ax.yaxis``; call after the limits
    are final): decades, plus 2 and 5 when it spans under two decades; no minor labels."""
    lo, hi = sorted(axis.get_view_interval())
    subs = (1.0, 2.0, 5.0) if np.log10(hi / lo) < 2 else (1.0,)
    axis.set_major_locator(mticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(mticker.FuncFormatter(_sci))
    axis.set_minor_locator(mticker.LogLocator(base=10, subs=np.arange(2, 10) * 1.0))
    axis.set_minor_formatter(mticker.NullFormatter())


def loss_axis(ax, *, log: bool = True) -> None:
    """The loss (y) axis: log scale (the science is log-log) with plain-number ticks,
    since a loss axis spans far less than a decade."""
    if log:
        ax.set_yscale("log")
    ax.yaxis.set_major_locator(mticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_locator(mticker.NullLocator())
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())


def format_budget(c: float) -> str:
    """1.0e+11 -> '1e11', 3.16e11 -> '3.2e11' (compact legend text)."""
    mant, exp = f"{c:.1e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


class BudgetScale:
    """The compute-budget colour scale shared by every figure: viridis over log10 C,
    normalised to the budgets of one results store, plus one marker per budget."""

    def __init__(self, budgets, *, vmin: float | None = None, vmax: float | None = None):
        b = np.unique(np.asarray(budgets, dtype=float))
        b = b[np.isfinite(b) & (b > 0)]
        if len(b) == 0:
            raise ValueError("BudgetScale needs at least one finite, positive budget")
        self.budgets = b
        lo = np.log10(vmin if vmin is not None else b.min())
        hi = np.log10(vmax if vmax is not None else b.max())
        if hi <= lo:  # one budget: a unit-wide window centred on it
            lo, hi = lo - 0.5, hi + 0.5
        self.norm = mcolors.Normalize(vmin=lo, vmax=hi)
        self.cmap = plt.get_cmap(BUDGET_CMAP)

    def color(self, c: float):
        # stop at 90% of viridis: its top end (yellow) is unreadable on white
        return self.cmap(0.9 * float(np.clip(self.norm(np.log10(c)), 0.0, 1.0)))

    def marker(self, c: float) -> str:
        i = int(np.argmin(np.abs(np.log(self.budgets) - np.log(c))))
        return MARKERS[i % len(MARKERS)]

    def colorbar(self, fig, ax, *, label: str = "Compute budget $\\log_{10} C$ (FLOPs)", **kw):
        cmap = mcolors.LinearSegmentedColormap.from_list("budget", self.cmap(np.linspace(0, 0.9, 256)))
        sm = matplotlib.cm.ScalarMappable(norm=self.norm, cmap=cmap)
        cb = fig.colorbar(sm, ax=ax, pad=0.02, fraction=0.05, **kw)
        cb.set_label(label)
        return cb
