"""Intervals and paired comparisons over users: cluster bootstrap (users resampled whole, vectorised,
seeded) and a sign-flip permutation test on the same statistic.
"""
from __future__ import annotations

import numpy as np


def _group_sums(values, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group labels, per-group sums, per-group counts) of per-row values."""
    labels, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    v = np.asarray(values, dtype=np.float64)
    return labels, np.bincount(inverse, weights=v, minlength=len(labels)), np.bincount(inverse, minlength=len(labels))


def _bootstrap_draws(n_groups: int, n_boot: int, seed: int, max_cells: int = 4_000_000):
    """Yield blocks of resampled group indices [b, n_groups] (seeded; memory bounded by max_cells)."""
    rng = np.random.default_rng(seed)
    block = max(1, min(n_boot, max_cells // max(n_groups, 1)))
    for start in range(0, n_boot, block):
        yield rng.integers(0, n_groups, size=(min(block, n_boot - start), n_groups))


def _ratio_stat(sums, counts, statistic):
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return np.sqrt(mean) if statistic == "rmse" else mean


def bootstrap_ci(values, groups=None, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                 statistic: str = "mean") -> tuple[float, float, float]:
    """(point estimate, low, high): percentile bootstrap interval over users (groups), vectorised, seeded.

    values: one per row; groups: the user of each row (None = each row its own user). The estimate is
    the mean over rows ("mean") or the square root of it ("rmse", values = squared errors); resampling
    whole users keeps the rows of one user together (cluster bootstrap). The interval contains the
    estimate for any sane data and narrows like 1/sqrt(n_users).
    """
    if statistic not in ("mean", "rmse"):
        raise ValueError(f"statistic must be 'mean' or 'rmse', got {statistic!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return (np.nan, np.nan, np.nan)
    _, sums, counts = _group_sums(v, np.arange(len(v)) if groups is None else groups)
    point = float(_ratio_stat(sums.sum(), counts.sum(), statistic))
    stats = np.concatenate([_ratio_stat(sums[idx].sum(1), counts[idx].sum(1), statistic)
                            for idx in _bootstrap_draws(len(sums), n_boot, seed)])
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return point, float(min(low, point)), float(max(high, point))


def paired_comparison(values_a, values_b, groups, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0, statistic: str = "mean", n_permutations: int = 10_000) -> dict:
    """Paired difference A - B of two models' per-row values on the same rows (same users, same candidates).

    statistic: "mean" (the figure is the mean of the values over rows) or "rmse" (values are squared
    errors, the figure is the root of their mean). Returns mean_a, mean_b (the two figures),
    diff = A - B, ci_low, ci_high (paired cluster bootstrap: the same resampled users for both
    models), p_value and n_users. p_value: two-sided paired sign-flip permutation test over users
    (under "no difference" each user's summed difference is as likely negative as positive), on the
    same row-weighted statistic as `diff`, so the test and the interval agree; its resolution is
    1 / (n_permutations + 1); 1.0 when the two models are identical on every row.
    """
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length ({len(a)} vs {len(b)}); evaluate both on the same rows")
    _, sa, counts = _group_sums(a, groups)
    _, sb, _ = _group_sums(b, groups)
    diffs = np.concatenate([_ratio_stat(sa[idx].sum(1), counts[idx].sum(1), statistic)
                            - _ratio_stat(sb[idx].sum(1), counts[idx].sum(1), statistic)
                            for idx in _bootstrap_draws(len(sa), n_boot, seed)])
    mean_a = float(_ratio_stat(sa.sum(), counts.sum(), statistic))
    mean_b = float(_ratio_stat(sb.sum(), counts.sum(), statistic))
    diff = mean_a - mean_b
    alpha = (1 - level) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return {"mean_a": mean_a, "mean_b": mean_b, "diff": diff, "ci_low": float(min(low, diff)),
            "ci_high": float(max(high, diff)), "p_value": sign_flip_p_value(sa - sb, n_permutations, seed),
            "n_users": int(len(counts))}


def sign_flip_p_value(user_differences, n_permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value, in (0, 1], of "the summed per-user differences are symmetric around 0":
    share of random sign flips (users kept whole) whose |sum| reaches the observed |sum| (with the
    observed one counted, so never 0). Vectorised in blocks; seeded."""
    d = np.asarray(user_differences, dtype=np.float64)
    observed = abs(d.sum())
    if np.allclose(d, 0):
        return 1.0
    rng = np.random.default_rng(seed)
    block = max(1, min(n_permutations, 4_000_000 // max(len(d), 1)))
    reached = 0
    for start in range(0, n_permutations, block):
        signs = rng.integers(0, 2, size=(min(block, n_permutations - start), len(d))) * 2 - 1
        reached += int((np.abs(signs @ d) >= observed * (1 - 1e-12)).sum())
    return (reached + 1) / (n_permutations + 1)


def bootstrap_mean_ci(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) over users with `helpers.evaluation.bootstrap_ci`, NaN values (users a measure
    does not apply to, e.g. no history) dropped first."""
    v = np.asarray(values, dtype=np.float64)
    return bootstrap_ci(v[np.isfinite(v)], n_boot=n_boot, level=level, seed=seed)

