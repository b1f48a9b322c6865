"""OASIS deconvolution kernels: pool-adjacent-violators for AR(1) and AR(2) calcium.

Written from Friedrich, Zhou & Paninski (2017), "Fast online deconvolution of
calcium imaging data", PLoS Comput Biol 13:e1005423 (arXiv:1609.00639). The model
is ``y_t = b + c_t + noise`` with ``c_t = g_1 c_{t-1} (+ g_2 c_{t-2}) + s_t`` and
``s_t >= 0``; between two spikes ``c`` follows the AR recursion, so the solution is a
sequence of *pools* (runs of frames with one spike at their start), and violations
of ``s >= 0`` are fixed by merging a pool into its predecessor.

The noise-constrained problem ``min |s|_1`` subject to ``|y - b - c|^2 = sigma^2 T``
is the Lagrangian ``1/2 |y - b - c|^2 + lam |s|_1`` with ``lam`` chosen so that the
constraint holds. For AR(1) every quantity of a pool (its value, its residual sum of
squares) is a closed form in the pool's start, length and three running sums of the
data, so ``lam`` and ``b`` are updated as in the paper: for a fixed set of pools the
residual is quadratic in ``lam`` (with ``b`` profiled out), solved exactly, then
pools are merged where the new ``lam`` makes them violate, warm-started, until the
constraint is tight (then once more from single frames at the final ``lam`` and
``b``, since warm starts only merge). For AR(2) a pool's value depends on where the
previous pool ends, so ``lam`` is found by safeguarded regula falsi on full passes
instead. AR(2) merging is greedy (as in the paper), near but not at the optimum
(about 0.5% above it): an active-set method then finishes exactly, each subproblem
(spikes free on a support) solved in O(T) by dynamic programming over the state
``(c_t, c_{t-1})``, and ``lam`` is moved to keep the constraint tight.

The l0 variants drop the penalty (``lam = 0``) and keep the noise constraint. AR(1):
greedy, as in the paper's code: the l1 solution's spike places, largest first, the
fewest of them whose fit meets the constraint. AR(2): thresholded OASIS, every spike
0 or at least ``s_min``, the largest ``s_min`` (bisection) meeting the constraint.

Every function here is plain Python that numba can compile: :func:`solver` returns
the compiled ones (``@njit(cache=True, nogil=True)``, a ``prange`` driver across
traces) when numba is in use, the same functions un-jitted otherwise.
"""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np

__all__ = ["solver"]

#: Relative tolerance of the noise constraint ``|RSS - sigma^2 T| <= TOL * sigma^2 T``.
TOL = 1e-4
#: Lag count beyond the model order for the autocovariance (as in the paper's code).
LAGS = 10


def _powers(g, n):
    h = np.empty(n + 1)
    h[0] = 1.0
    for k in range(1, n + 1):
        h[k] = h[k - 1] * g
    return h


def _pool_rss(s1, s2, t, ln, yd, h, inv1g, g, b, lam, last):
    """A pool's value (clamped at 0) and the residual sum of squares over its frames."""
    hl = h[ln]
    a = (1.0 - hl) * inv1g
    e = 1.0 if last else 1.0 - hl
    w = (1.0 - hl * hl) / (1.0 - g * g)
    v = yd - b * a - lam * e
    u = v / w if v > 0.0 else 0.0
    sx = s1[t + ln] - s1[t]
    sxx = s2[t + ln] - s2[t]
    r = sxx - 2.0 * b * sx + ln * b * b - 2.0 * u * (yd - b * a) + u * u * w
    return u, r


def _ar1_merge(pt, pl, pyd, n, h, g, b, lam, smin, total):
    """Merge adjacent pools until no spike at a pool start is below ``smin`` (0: the
    plain non-negativity constraint); returns the new pool count."""
    inv1g = 1.0 / (1.0 - g)
    k = 0
    for i in range(n):
        pt[k] = pt[i]
        pl[k] = pl[i]
        pyd[k] = pyd[i]
        while k > 0:
            # raw (unclamped) values, as in the paper's violation test
            l0 = pl[k - 1]
            h0 = h[l0]
            v0 = pyd[k - 1] - b * (1.0 - h0) * inv1g - lam * (1.0 - h0)
            w0 = (1.0 - h0 * h0) / (1.0 - g * g)
            h1 = h[pl[k]]
            e1 = 1.0 if pt[k] + pl[k] == total else 1.0 - h1
            v1 = pyd[k] - b * (1.0 - h1) * inv1g - lam * e1
            w1 = (1.0 - h1 * h1) / (1.0 - g * g)
            u0 = v0 / w0
            if smin > 0.0 and u0 < 0.0:  # an empty pool: the next spike starts from 0
                u0 = 0.0
            if u0 * h0 + smin <= v1 / w1:
                break
            pyd[k - 1] += pyd[k] * h0
            pl[k - 1] += pl[k]
            k -= 1
        k += 1
    return k


def _ar1_stats(s1, s2, pt, pl, pyd, n, h, g, b, lam, total):
    """Residual sum of squares and sum of the calcium of the current pools."""
    inv1g = 1.0 / (1.0 - g)
    rss = 0.0
    csum = 0.0
    for i in range(n):
        u, r = _pool_rss(s1, s2, pt[i], pl[i], pyd[i], h, inv1g, g, b, lam, i == n - 1)
        rss += r
        csum += u * (1.0 - h[pl[i]]) * inv1g
    return rss, csum


def _ar1_fill(pt, pl, pyd, n, h, g, b, lam, c):
    inv1g = 1.0 / (1.0 - g)
    total = c.shape[0]
    for i in range(n):
        hl = h[pl[i]]
        e = 1.0 if pt[i] + pl[i] == total else 1.0 - hl
        v = pyd[i] - b * (1.0 - hl) * inv1g - lam * e
        w = (1.0 - hl * hl) / (1.0 - g * g)
        u = v / w if v > 0.0 else 0.0
        for k in range(pl[i]):
            c[pt[i] + k] = u * h[k]


def _ar1_constrained(x, g, thresh, fix_b, b_fixed, pt, pl, pyd, h, s1, s2):
    """The noise-constrained AR(1) problem on ``x`` (data minus a rough baseline).

    Returns (pool count, b, lam); the pools describe the calcium.
    """
    total = x.shape[0]
    inv1g = 1.0 / (1.0 - g)
    b = b_fixed if fix_b else s1[total] / total
    if s2[total] - 2.0 * b * s1[total] + total * b * b <= thresh:
        # no calcium at all already meets the constraint: |s|_1 = 0 is the optimum
        pt[0] = 0
        pl[0] = total
        acc = 0.0
        for t in range(total):
            acc += h[t] * x[t]
        pyd[0] = acc
        return 1, b, max(0.0, acc - b * (1.0 - h[total]) * inv1g)
    for t in range(total):
        pt[t] = t
        pl[t] = 1
        pyd[t] = x[t]
    b = b_fixed if fix_b else 0.0
    lam = 0.0
    n = _ar1_merge(pt, pl, pyd, total, h, g, b, lam, 0.0, total)
    if not fix_b:
        _rss, csum = _ar1_stats(s1, s2, pt, pl, pyd, n, h, g, b, lam, total)
        # the baseline is the mean residual; keeping b/(1-g) + lam fixed keeps every
        # pool but the last where it is, so no new pass is needed
        db = (s1[total] - csum) / total - b
        b += db
        lam -= db * inv1g
    n, b, lam = _ar1_tighten(pt, pl, pyd, n, h, g, b, lam, thresh, fix_b, s1, s2)
    # Pools only merge on the way, so a lam or b that moved back leaves some too
    # coarse: start again from single frames at the final values, until stable.
    for _ in range(5):
        for t in range(total):
            pt[t] = t
            pl[t] = 1
            pyd[t] = x[t]
        n = _ar1_merge(pt, pl, pyd, total, h, g, b, lam, 0.0, total)
        n0, b0, lam0 = n, b, lam
        n, b, lam = _ar1_tighten(pt, pl, pyd, n, h, g, b, lam, thresh, fix_b, s1, s2)
        if n == n0 and abs(lam - lam0) <= 1e-9 * (abs(lam0) + 1.0) and abs(b - b0) <= 1e-12:
            break
    return n, b, lam


def _ar1_tighten(pt, pl, pyd, n, h, g, b, lam, thresh, fix_b, s1, s2):
    """Update lam (and b) until the noise constraint is tight, merging pools as they
    come to violate it; returns (pool count, b, lam)."""
    total = s1.shape[0] - 1
    inv1g = 1.0 / (1.0 - g)
    for _ in range(100):
        rss, csum = _ar1_stats(s1, s2, pt, pl, pyd, n, h, g, b, lam, total)
        off = 0.0 if fix_b else abs((s1[total] - csum) / total - b)
        if csum <= 1e-12 or (
            abs(rss - thresh) <= TOL * thresh and off <= 1e-6 * math.sqrt(thresh / total)
        ):
            break
        # For these pools and their active set, b (profiled: the mean residual) and
        # every pool value are affine in lam, so the RSS is a quadratic in lam.
        sa2w = 0.0
        syaw = 0.0
        seaw = 0.0
        for i in range(n):
            hl = h[pl[i]]
            a = (1.0 - hl) * inv1g
            e = 1.0 if i == n - 1 else 1.0 - hl
            w = (1.0 - hl * hl) / (1.0 - g * g)
            if pyd[i] - b * a - lam * e > 0.0:
                sa2w += a * a / w
                syaw += pyd[i] * a / w
                seaw += e * a / w
        dn = total - sa2w
        if fix_b or dn <= 1e-6 * total:
            beta0 = b
            beta1 = 0.0
        else:
            beta0 = (s1[total] - syaw) / dn
            beta1 = seaw / dn
        q0 = s2[total] - 2.0 * beta0 * s1[total] + total * beta0 * beta0
        q1 = -2.0 * beta1 * s1[total] + 2.0 * total * beta0 * beta1
        q2 = total * beta1 * beta1
        for i in range(n):
            hl = h[pl[i]]
            a = (1.0 - hl) * inv1g
            e = 1.0 if i == n - 1 else 1.0 - hl
            w = (1.0 - hl * hl) / (1.0 - g * g)
            if pyd[i] - b * a - lam * e <= 0.0:
                continue
            mu = (pyd[i] - a * beta0) / w
            nu = (a * beta1 + e) / w
            r0 = pyd[i] - a * beta0
            r1 = a * beta1
            # -2 u r + u^2 w with u = mu - nu lam, r = r0 - r1 lam
            q0 += -2.0 * mu * r0 + w * mu * mu
            q1 += 2.0 * (mu * r1 + nu * r0) - 2.0 * w * mu * nu
            q2 += -2.0 * nu * r1 + w * nu * nu
        if q2 <= 0.0:
            break
        disc = q1 * q1 - 4.0 * q2 * (q0 - thresh)
        if disc > 0.0:
            new = (-q1 + math.sqrt(disc)) / (2.0 * q2)
        else:  # the constraint is out of reach for these pools: the closest point
            new = -q1 / (2.0 * q2)
        b = beta0 + beta1 * new
        lam = new
        n = _ar1_merge(pt, pl, pyd, n, h, g, b, lam, 0.0, total)
    return n, b, lam


# -- AR(2) ---------------------------------------------------------------------------------
def _ar2_response(g1, g2, total):
    """The impulse response ``d_k``, and running sums of ``d_k^2`` and ``d_k d_{k-1}``."""
    d = np.empty(total + 1)
    d[0] = 1.0
    if total > 0:
        d[1] = g1
    for k in range(2, total + 1):
        d[k] = g1 * d[k - 1] + g2 * d[k - 2]
    dd = np.zeros(total + 2)
    dx = np.zeros(total + 2)
    for k in range(total + 1):
        dd[k + 1] = dd[k] + d[k] * d[k]
        dx[k + 1] = dx[k] + (d[k] * d[k - 1] if k > 0 else 0.0)
    # beyond this many frames a pool's data no longer moves its value
    reach = total
    peak = 0.0
    for k in range(total + 1):
        peak = max(peak, abs(d[k]))
        if k > 2 and abs(d[k]) < 1e-12 * peak and abs(d[k - 1]) < 1e-12 * peak:
            reach = k
            break
    return d, dd, dx, reach


def _ar2_value(z, t, ln, p, d, dd, dx, reach, g2, first):
    m = min(ln, reach)
    acc = 0.0
    for k in range(m):
        acc += d[k] * z[t + k]
    v = (acc - g2 * p * dx[m]) / dd[m]
    if first and v < 0.0:
        v = 0.0
    return v


def _ar2_ends(v, ln, p, d, g2):
    last = v * d[ln - 1] + (g2 * p * d[ln - 2] if ln >= 2 else 0.0)
    if ln >= 2:
        last2 = v * d[ln - 2] + (g2 * p * d[ln - 3] if ln >= 3 else 0.0)
    else:
        last2 = p
    return last, last2


def _ar2_fit(x, g1, g2, b, lam, smin, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c):
    """AR(2) OASIS on ``x - b`` with penalty ``lam`` (and minimal spike ``smin``):
    fills ``c``, returns the residual sum of squares."""
    total = x.shape[0]
    shift = lam * (1.0 - g1 - g2)
    for t in range(total):
        z[t] = x[t] - b - shift
    # the last two frames' calcium weighs less in |s|_1 (no later frame subtracts it)
    z[total - 1] -= lam * (g1 + g2)
    if total >= 2:
        z[total - 2] -= lam * g2
    n = 0
    for t in range(total):
        pt[n] = t
        pl[n] = 1
        n += 1
        while True:
            i = n - 1
            p = pe[i - 1] if i > 0 else 0.0
            pv[i] = _ar2_value(z, pt[i], pl[i], p, d, dd, dx, reach, g2, i == 0)
            pe[i], pe2[i] = _ar2_ends(pv[i], pl[i], p, d, g2)
            if i == 0:
                break
            pp = pe2[i - 1]
            s = pv[i] - g1 * pe[i - 1] - g2 * pp
            if s >= smin if smin > 0.0 else s >= 0.0:
                break
            pl[i - 1] += pl[i]
            n -= 1
    p = 0.0
    rss = 0.0
    for i in range(n):
        for k in range(pl[i]):
            ck = pv[i] * d[k] + (g2 * p * d[k - 1] if k >= 1 else 0.0)
            c[pt[i] + k] = ck
            r = x[pt[i] + k] - b - ck
            rss += r * r
        p = pe[i]
    return rss


def _ar2_constrained(
    x, g1, g2, thresh, fix_b, b_fixed, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c
):
    """The noise-constrained AR(2) problem: regula falsi (Illinois) on ``lam`` for a
    baseline, then the baseline as the mean residual, a few rounds. Returns (b, lam)."""
    total = x.shape[0]
    b = b_fixed if fix_b else 0.0
    lam = 0.0
    for _ in range(1 if fix_b else 6):
        lo = 0.0
        flo = _ar2_fit(x, g1, g2, b, lo, 0.0, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c) - thresh
        lam = lo
        if flo < 0.0:
            hi = max(lam, math.sqrt(thresh / total))
            fhi = _ar2_fit(x, g1, g2, b, hi, 0.0, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c)
            fhi -= thresh
            grow = 0
            while fhi < 0.0 and grow < 60:
                lo, flo = hi, fhi
                hi *= 2.0
                fhi = _ar2_fit(x, g1, g2, b, hi, 0.0, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c)
                fhi -= thresh
                grow += 1
            lam = hi
            if fhi > 0.0:
                side = 0
                for _it in range(60):
                    lam = hi - fhi * (hi - lo) / (fhi - flo)
                    f = _ar2_fit(
                        x, g1, g2, b, lam, 0.0, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c
                    )
                    f -= thresh
                    if abs(f) <= TOL * thresh:
                        break
                    if f > 0.0:
                        hi, fhi = lam, f
                        if side == 1:
                            flo *= 0.5
                        side = 1
                    else:
                        lo, flo = lam, f
                        if side == -1:
                            fhi *= 0.5
                        side = -1
        _ar2_fit(x, g1, g2, b, lam, 0.0, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c)
        if fix_b:
            break
        nb = 0.0
        for t in range(total):
            nb += x[t] - c[t]
        nb /= total
        moved = abs(nb - b)
        b = nb
        if moved <= 1e-3 * math.sqrt(thresh / total):
            break
    _ar2_fit(x, g1, g2, b, lam, 0.0, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c)
    return b, lam


def _ar2_support_fit(z, g1, g2, lam, ins, c, ra, rp, rk):
    """The exact minimiser of ``1/2 |z - c|^2 + lam |s|_1`` with spikes free (of any
    sign) at the frames in ``ins`` and 0 elsewhere, into ``c``: dynamic programming
    over the state ``(c_t, c_{t-1})``, whose cost-to-go is quadratic (a Riccati
    recursion backwards, the calcium forwards), O(T)."""
    total = z.shape[0]
    p11 = 0.0
    p12 = 0.0
    p22 = 0.0
    q1 = 0.0
    q2 = 0.0
    for t in range(total - 1, -1, -1):
        zt = z[t]
        if ins[t]:
            # c_t is free: minimised out, the cost-to-go keeps only c_{t-1}
            a = 1.0 + p11
            kap = lam - zt - q1
            ra[t] = a
            rp[t] = p12
            rk[t] = kap
            n11 = p22 - p12 * p12 / a
            n12 = 0.0
            n22 = 0.0
            nq1 = q2 + p12 * kap / a + lam * g1
            nq2 = lam * g2
        else:
            n11 = g1 * g1 * (1.0 + p11) + 2.0 * g1 * p12 + p22
            n12 = g1 * g2 * (1.0 + p11) + g2 * p12
            n22 = g2 * g2 * (1.0 + p11)
            nq1 = g1 * (zt + q1) + q2
            nq2 = g2 * (zt + q1)
        p11 = n11
        p12 = n12
        p22 = n22
        q1 = nq1
        q2 = nq2
    c1 = 0.0
    c2 = 0.0
    for t in range(total):
        if ins[t]:
            ct = -(rp[t] * c1 + rk[t]) / ra[t]
        else:
            ct = g1 * c1 + g2 * c2
        c[t] = ct
        c2 = c1
        c1 = ct


def _ar2_spikes(c, g1, g2, s):
    for t in range(c.shape[0]):
        s[t] = c[t] - (g1 * c[t - 1] if t >= 1 else 0.0) - (g2 * c[t - 2] if t >= 2 else 0.0)


def _ar2_exact(z, g1, g2, lam, c, s, ins, cn, sn, w, ra, rp, rk):
    """Refine a feasible AR(2) calcium ``c`` (spikes >= 0) to the exact minimiser of
    ``1/2 |z - c|^2 + lam |s|_1``, s >= 0: an active-set method (Lawson-Hanson,
    warm-started from ``c``'s spikes) whose subproblems :func:`_ar2_support_fit`
    solves exactly. Leaves the support in ``ins``."""
    total = z.shape[0]
    scale = 0.0
    for t in range(total):
        scale = max(scale, abs(z[t]))
    scale += lam + 1e-300
    _ar2_spikes(c, g1, g2, s)
    for t in range(total):
        ins[t] = s[t] > 0.0
        if not ins[t]:
            s[t] = 0.0
    best = np.inf
    single = False
    for _ in range(5000):
        _ar2_support_fit(z, g1, g2, lam, ins, cn, ra, rp, rk)
        _ar2_spikes(cn, g1, g2, sn)
        alpha = 1.0
        neg = False
        for t in range(total):
            if ins[t] and sn[t] < 0.0:
                neg = True
                r = s[t] / (s[t] - sn[t])
                if r < alpha:
                    alpha = r
        if neg:
            # step towards the subproblem's optimum up to the first spike reaching 0
            c1 = 0.0
            c2 = 0.0
            for t in range(total):
                if ins[t]:
                    s[t] += alpha * (sn[t] - s[t])
                    if s[t] <= 1e-13 * scale:
                        s[t] = 0.0
                        ins[t] = False
                ct = g1 * c1 + g2 * c2 + s[t]
                c[t] = ct
                c2 = c1
                c1 = ct
            continue
        obj = 0.0
        for t in range(total):
            c[t] = cn[t]
            s[t] = sn[t] if ins[t] else 0.0
            r = z[t] - c[t]
            obj += 0.5 * r * r + lam * s[t]
        if obj >= best - 1e-13 * abs(best):
            # no progress: frames added together can all be dropped again (a new
            # spike going negative stops the step at once); then add the single
            # best frame, which Lawson-Hanson guarantees to lower the objective
            if single:
                break
            single = True
        else:
            best = obj
            single = False
        # where would a new spike lower the objective: K^T (z - c) - lam > 0
        a1 = 0.0
        a2 = 0.0
        for t in range(total - 1, -1, -1):
            v = (z[t] - c[t]) + g1 * a1 + g2 * a2
            w[t] = v - lam
            a2 = a1
            a1 = v
        added = 0
        if single:
            top = -1
            for t in range(total):
                if not ins[t] and w[t] > 1e-9 * scale and (top < 0 or w[t] > w[top]):
                    top = t
            if top >= 0:
                ins[top] = True
                added = 1
        else:
            for t in range(total):
                if not ins[t] and w[t] > 1e-9 * scale:
                    if (t == 0 or w[t] >= w[t - 1]) and (t == total - 1 or w[t] >= w[t + 1]):
                        ins[t] = True
                        added += 1
        if added == 0:
            break


def _ar2_refine(x, g1, g2, thresh, fix_b, b, lam, c, zz, s, ins, cn, sn, w, ra, rp, rk):
    """From the greedy solution (b, lam, c): the exact solution at lam, then lam (and
    b) moved to meet the constraint, c being affine in lam on a fixed support."""
    total = x.shape[0]
    done = False
    for _ in range(30):
        for t in range(total):
            zz[t] = x[t] - b
        _ar2_exact(zz, g1, g2, lam, c, s, ins, cn, sn, w, ra, rp, rk)
        rss = 0.0
        nb = 0.0
        for t in range(total):
            r = zz[t] - c[t]
            rss += r * r
            nb += x[t] - c[t]
        nb = b if fix_b else nb / total
        if abs(rss - thresh) <= TOL * thresh and abs(nb - b) <= 1e-6 * math.sqrt(thresh / total):
            done = True
            break
        _ar2_support_fit(zz, g1, g2, lam + 1.0, ins, cn, ra, rp, rk)
        a2 = 0.0
        rd = 0.0
        for t in range(total):
            dc = cn[t] - c[t]
            a2 += dc * dc
            rd += (zz[t] - c[t]) * dc
        if a2 <= 0.0:
            break
        disc = rd * rd - a2 * (rss - thresh)
        step = (rd + math.sqrt(disc)) / a2 if disc > 0.0 else rd / a2
        lam = max(0.0, lam + step)
        b = nb
    if not done:
        # the calcium of the (b, lam) returned, not of the previous round's
        for t in range(total):
            zz[t] = x[t] - b
        _ar2_exact(zz, g1, g2, lam, c, s, ins, cn, sn, w, ra, rp, rk)
    return b, lam


# -- parameters from the data ----------------------------------------------------------------
def _ar_estimate(x, p, sn, fudge):
    """AR coefficients from the autocovariance, noise variance removed from lag 0
    (Yule-Walker over ``LAGS + p`` lags, least squares), roots kept in (0, 1) and
    shrunk by ``fudge`` (the paper's bias correction)."""
    total = x.shape[0]
    lags = LAGS + p
    mean = 0.0
    for t in range(total):
        mean += x[t]
    mean /= total
    xc = np.zeros(lags + 1)
    for k in range(lags + 1):
        acc = 0.0
        for t in range(k, total):
            acc += (x[t] - mean) * (x[t - k] - mean)
        xc[k] = acc / total
    out = np.zeros(2)
    # A[i, j] = xc[|i - j|] - sn^2 [i == j], rows i < lags, columns j < p; rhs xc[1:]
    m11 = 0.0
    m12 = 0.0
    m22 = 0.0
    r1 = 0.0
    r2 = 0.0
    for i in range(lags):
        a1 = xc[i] - (sn * sn if i == 0 else 0.0)
        a2 = (xc[abs(i - 1)] - (sn * sn if i == 1 else 0.0)) if p == 2 else 0.0
        m11 += a1 * a1
        m12 += a1 * a2
        m22 += a2 * a2
        r1 += a1 * xc[i + 1]
        r2 += a2 * xc[i + 1]
    if p == 1:
        gg = r1 / m11 if m11 > 0.0 else 0.0
        if gg >= 1.0:
            gg = 0.95
        elif gg <= 0.0:
            gg = 0.15
        out[0] = gg * fudge
        return out
    det = m11 * m22 - m12 * m12
    if det > 0.0:
        g1 = (m22 * r1 - m12 * r2) / det
        g2 = (m11 * r2 - m12 * r1) / det
    else:
        g1, g2 = (r1 / m11 if m11 > 0.0 else 0.0), 0.0
    # roots of z^2 - g1 z - g2: complex pairs keep their real part (as in the paper's code)
    disc = g1 * g1 + 4.0 * g2
    if disc >= 0.0:
        d = (g1 + math.sqrt(disc)) / 2.0
        r = (g1 - math.sqrt(disc)) / 2.0
    else:
        d = g1 / 2.0
        r = g1 / 2.0
    d = 0.95 if d >= 1.0 else (0.15 if d <= 0.0 else d)
    r = 0.95 if r >= 1.0 else (0.15 if r <= 0.0 else r)
    d *= fudge
    r *= fudge
    out[0] = d + r
    out[1] = -d * r
    return out


# -- one trace, and all of them --------------------------------------------------------------
def _one(y, p, g, sn, estimate_g, penalty, fix_b, b_fixed, fudge, c, s):
    """Deconvolve one trace in place (``c``, ``s``); returns (b, lam, g1, g2)."""
    total = y.shape[0]
    if estimate_g:
        est = _ar_estimate(y, p, sn, fudge)
        g1 = est[0]
        g2 = est[1]
    else:
        g1 = g[0]
        g2 = g[1] if p == 2 else 0.0
    thresh = sn * sn * total
    # work relative to a low percentile (the paper's first guess of the baseline):
    # the running sums of squares then stay small
    ref = b_fixed if fix_b else np.percentile(y, 15.0)
    x = np.empty(total)
    for t in range(total):
        x[t] = y[t] - ref
    pt = np.empty(total, np.int64)
    pl = np.empty(total, np.int64)
    lam = 0.0
    if p == 1:
        h = _powers(g1, total)
        s1 = np.zeros(total + 1)
        s2 = np.zeros(total + 1)
        for t in range(total):
            s1[t + 1] = s1[t] + x[t]
            s2[t + 1] = s2[t] + x[t] * x[t]
        pyd = np.empty(total)
        n, b, lam = _ar1_constrained(x, g1, thresh, fix_b, 0.0, pt, pl, pyd, h, s1, s2)
        _ar1_fill(pt, pl, pyd, n, h, g1, b, lam, c)
        if penalty == 0 and not _empty(c):
            # reported in place of lam: the smallest spike size
            n, lam = _ar1_l0(x, g1, thresh, b, pt, pl, pyd, h, s1, s2, n)
            _ar1_fill(pt, pl, pyd, n, h, g1, b, 0.0, c)
    else:
        d, dd, dx, reach = _ar2_response(g1, g2, total)
        z = np.empty(total)
        pv = np.empty(total)
        pe = np.empty(total)
        pe2 = np.empty(total)
        b, lam = _ar2_constrained(
            x, g1, g2, thresh, fix_b, 0.0, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c
        )
        if not _empty(c):
            # the greedy pools are near the optimum; finish exactly
            ins = np.zeros(total, np.bool_)
            b, lam = _ar2_refine(
                x,
                g1,
                g2,
                thresh,
                fix_b,
                b,
                lam,
                c,
                z,
                np.empty(total),
                ins,
                np.empty(total),
                np.empty(total),
                np.empty(total),
                np.empty(total),
                np.empty(total),
                np.empty(total),
            )
        if penalty == 0 and not _empty(c):
            lam = _ar2_l0(x, g1, g2, thresh, b, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c)
    s[0] = 0.0
    for t in range(1, total):
        v = c[t] - g1 * c[t - 1] - (g2 * c[t - 2] if t >= 2 else 0.0)
        # within a pool s is 0 up to rounding; the model has no negative spikes
        s[t] = v if v > 1e-12 * (abs(c[t]) + 1e-300) else 0.0
    return b + ref, lam, g1, g2


def _empty(c):
    for t in range(c.shape[0]):
        if c[t] != 0.0:
            return False
    return True


def _ar1_l0(x, g, thresh, b, pt, pl, pyd, h, s1, s2, n_l1):
    """Greedy l0: the l1 solution's spikes, largest first, as the only places a spike
    may occur; the fewest of them whose unpenalised fit (``lam = 0``, spikes
    non-negative) meets the noise constraint (bisection on their number, the RSS
    falling as places are added). Returns (pool count, smallest spike kept)."""
    total = x.shape[0]
    inv1g = 1.0 / (1.0 - g)
    m = n_l1 - 1
    size = np.empty(max(m, 1))
    where = np.empty(max(m, 1), np.int64)
    prev = 0.0
    for i in range(n_l1):
        hl = h[pl[i]]
        w = (1.0 - hl * hl) / (1.0 - g * g)
        v = pyd[i] - b * (1.0 - hl) * inv1g
        u = v / w
        if i > 0:
            size[i - 1] = u - prev
            where[i - 1] = pt[i]
        prev = (u if u > 0.0 else 0.0) * hl
    order = np.argsort(-size[:m])
    rank = np.full(total, total, np.int64)
    for j in range(m):
        rank[where[order[j]]] = j
    lo = 0
    hi = m
    while lo < hi:
        mid = (lo + hi) // 2
        n = _ar1_places(x, pt, pl, pyd, h, g, b, rank, mid)
        rss, _cs = _ar1_stats(s1, s2, pt, pl, pyd, n, h, g, b, 0.0, total)
        if rss <= thresh:
            hi = mid
        else:
            lo = mid + 1
    n = _ar1_places(x, pt, pl, pyd, h, g, b, rank, lo)
    smallest = size[order[lo - 1]] if lo > 0 else 0.0
    return n, smallest


def _ar1_places(x, pt, pl, pyd, h, g, b, rank, k):
    """Pools that start only at frame 0 and at the frames ranked below ``k``, then
    merged where a spike would be negative."""
    total = x.shape[0]
    n = 0
    for t in range(total):
        if t == 0 or rank[t] < k:
            pt[n] = t
            pl[n] = 1
            pyd[n] = x[t]
            n += 1
        else:
            pyd[n - 1] += x[t] * h[pl[n - 1]]
            pl[n - 1] += 1
    return _ar1_merge(pt, pl, pyd, n, h, g, b, 0.0, 0.0, total)


def _ar2_l0(x, g1, g2, thresh, b, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c):
    hi = 0.0
    for t in range(x.shape[0]):
        hi = max(hi, abs(x[t] - b))
    lo = 0.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        rss = _ar2_fit(x, g1, g2, b, 0.0, mid, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c)
        if rss <= thresh:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-4 * hi:
            break
    _ar2_fit(x, g1, g2, b, 0.0, lo, d, dd, dx, reach, z, pt, pl, pv, pe, pe2, c)
    return lo


def _all(y, p, g, sn, estimate_g, penalty, fix_b, b_fixed, fudge, c, s, b, lam):
    """Every row of ``y`` (in parallel when compiled); ``g`` is filled when estimated."""
    for i in prange(y.shape[0]):
        out = _one(
            y[i], p, g[i], sn[i], estimate_g, penalty, fix_b[i], b_fixed[i], fudge, c[i], s[i]
        )
        b[i] = out[0]
        lam[i] = out[1]
        g[i, 0] = out[2]
        if p == 2:
            g[i, 1] = out[3]


_NAMES = (
    "_powers",
    "_pool_rss",
    "_ar1_merge",
    "_ar1_stats",
    "_ar1_fill",
    "_ar1_constrained",
    "_ar1_tighten",
    "_empty",
    "_ar1_l0",
    "_ar1_places",
    "_ar2_response",
    "_ar2_value",
    "_ar2_ends",
    "_ar2_fit",
    "_ar2_constrained",
    "_ar2_l0",
    "_ar2_support_fit",
    "_ar2_spikes",
    "_ar2_exact",
    "_ar2_refine",
    "_ar_estimate",
    "_one",
    "_all",
)
_solvers: dict[str, Any] = {}


def solver(nb: Any) -> Any:
    """The driver ``_all`` over rows: compiled with ``nb`` (numba), or plain Python
    when ``nb`` is None. Each is built once per process."""
    key = "python" if nb is None else "numba"
    if key in _solvers:
        return _solvers[key]
    # Each variant gets its own globals, so that the compiled functions call the
    # compiled ones and the plain ones never meet numba.
    space: dict[str, Any] = {"np": np, "math": math, "TOL": TOL, "LAGS": LAGS}
    space["prange"] = range if nb is None else nb.prange
    glob = globals()
    for name in _NAMES:
        fn = glob[name]
        copy = types.FunctionType(fn.__code__, space, name, fn.__defaults__, fn.__closure__)
        copy.__qualname__ = fn.__qualname__
        copy.__module__ = fn.__module__
        if nb is not None:
            parallel = name == "_all"
            copy = nb.njit(cache=True, nogil=True, parallel=parallel)(copy)
        space[name] = copy
    _solvers[key] = space["_all"]
    return space["_all"]


prange = range  # the plain module-level functions run as Python
