"""The two-sample Kolmogorov-Smirnov test, two-sided, in plain Python.

The statistic D is the largest gap between the two empirical CDFs (0-1). Its p-value is
exact, by lattice-path counting, when ``n * m <= EXACT_KS_LIMIT``, else from the asymptotic
Kolmogorov distribution with Stephens' correction. Ties make the p-value conservative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

EXACT_KS_LIMIT = 250_000


@dataclass(frozen=True)
class KsResult:
    statistic: float
    p_value: float
    method: str


def _ks_gap(sample_a: Sequence[float], sample_b: Sequence[float]) -> int:
    """The KS statistic times n*m, an integer: max over x of |m*#(a<=x) - n*#(b<=x)|."""
    a, b = sorted(sample_a), sorted(sample_b)
    n, m = len(a), len(b)
    i = j = gap = 0
    while i < n and j < m:
        value = min(a[i], b[j])
        while i < n and a[i] == value:
            i += 1
        while j < m and b[j] == value:
            j += 1
        gap = max(gap, abs(i * m - j * n))
    return gap


def ks_exact_p_value(n: int, m: int, gap: int) -> float:
    """P(D >= gap/(n*m)) for two samples of sizes n and m from one continuous distribution:
    1 minus the share of the C(n+m, n) orderings whose lattice path stays strictly inside
    |i*m - j*n| < gap (exact integers)."""
    if gap <= 0:
        return 1.0
    row = [1 if abs(j * n) < gap else 0 for j in range(m + 1)]
    for j in range(1, m + 1):
        row[j] = row[j - 1] if row[j] else 0
    for i in range(1, n + 1):
        previous = 0
        for j in range(m + 1):
            inside = abs(i * m - j * n) < gap
            previous = (row[j] + previous) if inside else 0
            row[j] = previous
    return max(0.0, 1.0 - row[m] / math.comb(n + m, n))


def kolmogorov_survival(statistic: float) -> float:
    """Q_KS(x) = 2 * sum_{k>=1} (-1)^(k-1) exp(-2 k^2 x^2), the limit law of sqrt(n) D."""
    if statistic < 0.2:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2.0 * (-1) ** (k - 1) * math.exp(-2.0 * k * k * statistic * statistic)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, total))


def ks_asymptotic_p_value(n: int, m: int, statistic: float) -> float:
    effective = math.sqrt(n * m / (n + m))
    return kolmogorov_survival((effective + 0.12 + 0.11 / effective) * statistic)


def ks_2samp(sample_a: Sequence[float], sample_b: Sequence[float]) -> KsResult:
    """Two-sided two-sample Kolmogorov-Smirnov test (ties: conservative p-value)."""
    n, m = len(sample_a), len(sample_b)
    if n == 0 or m == 0:
        raise ValueError("the KS test needs two non-empty samples")
    gap = _ks_gap(sample_a, sample_b)
    statistic = gap / (n * m)
    if n * m <= EXACT_KS_LIMIT:
        return KsResult(statistic, ks_exact_p_value(n, m, gap), "exact")
    return KsResult(statistic, ks_asymptotic_p_value(n, m, statistic), "asymptotic")
