"""fit_law's recheck of pruned starts: a start that successive halving dropped but that
reaches a lower objective than the best survivor is found, adopted and reported."""

import numpy as np
import pandas as pd
import pytest

from scaling.analysis import fit_law
from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(1)
    N, M = np.meshgrid(np.geomspace(1e7, 3e9, 6), np.geomspace(5, 200, 5), indexing="ij")
    N, D = N.ravel(), (N * M).ravel()
    L = chinchilla_loss(N, D, **TEST_LAW) * np.exp(0.003 * rng.standard_normal(N.size))
    return pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=L))


# Two starts (log_E, log_A, log_B, alpha, beta). The first looks better at once (its
# objective when pruning keeps one start after a single evaluation is lower), but its
# data term has vanished (B = e^-60: no gradient brings it back), so it converges to a
# law of N alone; the second, dropped by that pruning, reaches the real optimum.
TRAP = [np.log(2.4), np.log(TEST_LAW["A"]), -60.0, TEST_LAW["alpha"], 0.37]
FAR = [0.0, 5.0, 5.0, 0.5, 0.5]
AGGRESSIVE = ((1, 1),)


def test_an_aggressive_prune_misses_the_optimum_and_the_recheck_finds_it(table):
    grid = np.array([TRAP, FAR])
    full = fit_law(table, "chinchilla", grid=grid, prune=None)
    missed = fit_law(table, "chinchilla", grid=grid, prune=AGGRESSIVE, recheck=0)
    # the miss is real: a converged fit well above the optimum, and no warning says so
    assert missed.converged and missed.n_kept == 1 and missed.n_rechecked == 0
    assert missed.objective > 1.01 * full.objective
    assert not any("pruning" in w for w in missed.warnings)

    fit = fit_law(table, "chinchilla", grid=grid, prune=AGGRESSIVE)
    assert fit.n_rechecked == 1
    assert fit.objective == pytest.approx(full.objective, rel=1e-6)
    for p in ("E", "alpha", "beta"):
        assert fit.params[p] == pytest.approx(full.params[p], rel=1e-4)
    gap = (missed.objective - full.objective) / missed.objective
    note = [w for w in fit.warnings if w.startswith("pruning had dropped a start")]
    assert len(note) == 1 and f"{100 * gap:.3g}% lower objective" in note[0]


def test_no_warning_when_pruning_kept_the_optimum(table):
    fit = fit_law(table, "chinchilla")  # Hoffmann's grid, the default pruning
    assert fit.n_rechecked == 16 and fit.converged
    assert not any("pruning" in w for w in fit.warnings)
    assert fit.params["alpha"] == pytest.approx(TEST_LAW["alpha"], abs=0.03)
    with pytest.raises(ValueError, match="recheck must be an integer >= 0"):
        fit_law(table, "chinchilla", recheck=-1)
