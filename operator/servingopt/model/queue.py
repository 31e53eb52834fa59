"""Queueing model of one replica behind a dynamic batcher (Poisson arrivals).

Question answered: a replica receives Poisson traffic at ``rate_rps``; its batcher
takes at most ``B`` requests per batch and lets the oldest request wait at most ``D``
ms for a batch to fill; a batch of ``b`` takes ``t(b)`` ms (the
:class:`~servingopt.model.profile.LatencyProfile`).  What are the mean and the p99 of
the request latency (queueing + batching delay + service), the mean batch size, the
utilisation, and the largest sustainable rate?

Batcher semantics are those of :mod:`servingopt.model.des` (Triton-style: when the
server is free and requests wait, dispatch ``min(queue, B)`` as soon as the queue
reaches ``B`` or the oldest request has waited ``D``).

Method
------
1. **Embedded Markov chain at dispatch epochs.**  ``X`` = number of requests waiting
   when a batch is dispatched (``X >= 1``).  The batch has ``b = min(X, B)``
   requests, ``Y = X - b`` stay behind and ``A ~ Poisson(lambda t(b))`` arrive during
   service, so ``n = Y + A`` wait at completion.  Then

   * ``n >= B``: the next batch leaves at once: ``X' = n``;
   * ``1 <= n < B``: the batcher waits for the oldest request's timer ``r``:
     ``X' = min(B, n + Poisson(lambda r))``;
   * ``n = 0``: the server idles until the next arrival, which starts a fresh timer:
     ``X' = min(B, 1 + Poisson(lambda D))``.

   The only approximation is the timer ``r = max(0, D - age of the oldest)``: when
   the ``n`` waiting requests all arrived during the service (``Y = 0``) they are
   uniform on it, so the oldest's age is ``t(b) * (1 - U)`` with
   ``U ~ Beta(1, n)`` (integrated with a 4-point quantile rule); when leftovers
   exist (``Y > 0``) their age is taken as ``t(B)``, a lower bound (so ``r`` is
   slightly too long).  This is the classic bulk-service queue M/G^(1,B)/1 with
   batch-size-dependent service (Bailey 1954; Chaudhry & Templeton, *A First Course
   in Bulk Queues*, 1983), extended with the batcher's timeout.  The chain is
   truncated where the excess queue ``X - B`` has a tail below ~1e-7, using the
   geometric decay ``z^-x`` of that tail, where ``z > 1`` solves
   ``exp(lambda t(B) (z - 1)) = z^B`` (the bulk queue's Cramer-Lundberg root).  The
   stationary vector comes from Grassmann-Taksar-Heyman elimination (Grassmann,
   Taksar & Heyman, Operations Research 33, 1985), banded because a batch removes at
   most ``B`` requests.

2. **Latency of a tagged request**, by PASTA (Poisson arrivals see time averages).
   Every arrival is described by ``(R, E, q)``: ``R`` is when the server becomes free
   for its batch (residual service of the batch in progress plus full batches ahead
   of it), ``E`` when its batch's timer expires (``D`` minus the age of the oldest
   request in its batch) and ``q`` its position in its batch.  With ``T_K`` the
   arrival time of the ``K = B - q``-th later request (Erlang(K, lambda)), it is
   dispatched at

       W = max(R, min(max(E, R), T_K))

   with ``min(B, q + N(W))`` requests, so its latency is ``W + t(batch)``.  Given
   ``(R, E, q)`` that law is closed form: atoms ``E + t(q + k)`` weighted
   ``P(N(E) = k)`` for ``k < K`` (the timer fires), an atom ``R + t(B)`` weighted
   ``P(N(R) >= K)`` (full before the server is free), and ``T_K + t(B)`` on ``(R, E]``
   (Erlang CDF at nodes placed around its mean, linear in between).  The mixture over
   ``(R, E, q)`` comes from the chain: arrivals during a service (offset ``u`` by
   Gauss-Legendre, ``j = Y + N(u)`` requests ahead), during a timer wait after a
   service, and at an idle server.  Ages of the oldest in a batch are replaced by
   their conditional means (uniform arrivals within ``u``, or ``(q - 1) / lambda``) —
   the second approximation.  Every quadrature atom is spread over its cell, and the
   CDF is accumulated exactly on a 4096-point grid, from which the mean and the
   quantile are read (the quantile to ~0.03 % of the latency range).

Accuracy (against :func:`servingopt.model.des.simulate_batching`; figures and method
in ``docs/performance-model.md``, asserted in ``tests/unit/model/test_queue_vs_des.py``):
p99 within 2.5 % of the simulation for loads of 10-90 % of the stability limit,
``B`` in {1, 4, 16, 32}, ``D`` in {0, 2, 10} ms on GPU-like, CPU-like and curved
profiles, and within the simulation's own noise (2-4 %) at 95-98 %; exact for
``B = 1`` (M/D/1).  Service-time jitter is optional (``service_cv``, lognormal):
within 9 % of the simulation up to CV 0.4, while ignoring a CV of 0.2 is 4-23 %
optimistic.  Not modelled: non-Poisson arrivals, several model instances per replica.

Cost: ~1 ms for ``B <= 4``, ~4 ms for ``B = 16``, ~9 ms for ``B = 32`` (one busy core;
more near saturation, where the chain is longer).  :func:`predict` is memoised on its
arguments, so repeated grids are cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from servingopt.model.profile import LatencyProfile

__all__ = [
    "MAX_BATCH",
    "QueuePrediction",
    "p99_at",
    "predict",
    "predict_table",
    "stability_limit_rps",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Largest ``B`` :func:`predict` accepts (cost grows ~B^2; 256 already takes ~0.1 s).
MAX_BATCH = 1024

_TAIL_EPS = 1e-7  # truncation of the chain's excess-queue tail
_MAX_EXCESS_STATES = 1500  # hard cap on chain length (only reached within ~0.5 % of saturation)
_TIMER_NODES = 4  # quantile rule for the oldest request's age
_SERVICE_NODES = 5  # Gauss-Legendre nodes over the service period
_WAIT_NODES = 5  # Gauss-Legendre nodes over a timer wait
_ERLANG_Z = np.array(
    [-2.5, -1.5, -0.75, 0.0, 0.75, 1.5, 2.5, 3.5, 5.0, 7.0]
)  # Erlang CDF nodes, in sd
_PRUNE = 1e-10  # arrival situations lighter than this (of all arrivals) are dropped
_GRID = 4096  # CDF grid points for the quantile
_ATOM_EPS = 1e-12  # atoms lighter than this (of all arrivals) are dropped
_WINDOW_EPS = 1e-9  # fill windows lighter than this get one segment, not Erlang nodes

_JITTER_NODES_CHAIN = 5  # Gauss-Hermite nodes for the service-time jitter in the chain
_JITTER_NODES = 3  # ... and for the service in progress when a request arrives
_SQRT3 = math.sqrt(3.0)
# quantile bins for the jitter a latency value carries (edges as normal quantiles)
_JIT_EDGES_P = (0.0005, 0.05, 0.3, 0.7, 0.95, 0.99, 0.999, 0.9998)
_JIT_Z = np.array([NormalDist().inv_cdf(p) for p in _JIT_EDGES_P])
_JIT_P = np.diff(np.array(_JIT_EDGES_P)) / (_JIT_EDGES_P[-1] - _JIT_EDGES_P[0])

_GL_S = np.polynomial.legendre.leggauss(_SERVICE_NODES)
_GL_W = np.polynomial.legendre.leggauss(_WAIT_NODES)


@dataclass(frozen=True)
class QueuePrediction:
    """Steady-state prediction for one replica.  Times in ms, rates in requests/s.

    Attributes:
        rate_rps: offered load per replica.
        max_batch: ``B``.
        max_delay_ms: ``D``.
        stable: ``rate_rps < stability_limit_rps``; when false every latency is ``inf``.
        stability_limit_rps: ``1000 * B / t(B)``: with full batches back to back the
            replica serves exactly this much; at or above it the queue grows forever.
        mean_latency_ms: mean of queueing + batching delay + service time.
        p99_latency_ms: 99th percentile of the same (or the quantile asked for).
        mean_batch: mean size of dispatched batches.
        utilisation: fraction of time the replica is executing a batch.  With batching
            this reaches ~1 well below the stability limit (batches grow instead).
        quantile: which quantile ``p99_latency_ms`` holds (0.99 unless asked).
    """

    rate_rps: float
    max_batch: int
    max_delay_ms: float
    stable: bool
    stability_limit_rps: float
    mean_latency_ms: float
    p99_latency_ms: float
    mean_batch: float
    utilisation: float
    quantile: float = 0.99


# ----------------------------------------------------------------------------- helpers

_K_FLOAT = np.arange(8192, dtype=np.float64)
_LGAMMA = np.array([math.lgamma(k + 1.0) for k in range(8192)], dtype=np.float64)


def _poisson_pmf(mu: FloatArray, kmax: int) -> FloatArray:
    """``P(Poisson(mu) = k)`` for ``k = 0..kmax``; shape ``mu.shape + (kmax + 1,)``.

    Recurrence ``p_k = p_{k-1} mu / k`` as a cumulative product (no ``exp`` per
    element); ``mu`` stays below ``B`` here, far from overflow.
    """
    m = np.asarray(mu, dtype=np.float64)[..., None]
    if m.size and float(m.max()) > 700.0:  # exp(-mu) underflows: log space
        k = _K_FLOAT[: kmax + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            logp = k * np.log(m) - m - _LGAMMA[: kmax + 1]
        out = np.exp(logp)
        out[..., 0] = np.exp(-m[..., 0])
        return np.asarray(out, dtype=np.float64)
    ratios = np.empty((*m.shape[:-1], kmax + 1), dtype=np.float64)
    ratios[..., 0] = np.exp(-m[..., 0])
    if kmax > 0:
        np.divide(m, _K_FLOAT[1 : kmax + 1], out=ratios[..., 1:])
    return np.asarray(np.cumprod(ratios, axis=-1), dtype=np.float64)


def _lognormal_nodes(cv: float, n: int) -> tuple[FloatArray, FloatArray]:
    """Gauss-Hermite nodes/weights of a lognormal factor with mean 1 and CV ``cv``."""
    if cv <= 0.0:
        return np.ones(1), np.ones(1)
    s2 = math.log1p(cv * cv)
    z, wz = np.polynomial.hermite.hermgauss(n)
    x = np.exp(-0.5 * s2 + math.sqrt(2.0 * s2) * z)
    return np.asarray(x, dtype=np.float64), np.asarray(wz / math.sqrt(math.pi), dtype=np.float64)


def _mixed_arrivals(lam: float, times: FloatArray, kmax: int, cv: float) -> FloatArray:
    """``P(A = k)``, ``A`` the arrivals during a service of length ``times * X``
    (``X`` lognormal, mean 1, CV ``cv``): a Poisson mixture; plain Poisson for cv = 0."""
    x, wx = _lognormal_nodes(cv, _JITTER_NODES_CHAIN)
    out = np.zeros((times.size, kmax + 1), dtype=np.float64)
    for xi, wi in zip(x.tolist(), wx.tolist(), strict=True):
        out += wi * _poisson_pmf(lam * times * xi, kmax)
    return out


def _capped_shift(n: IntArray, mu: FloatArray, big_b: int) -> FloatArray:
    """Distribution of ``min(B, n + Poisson(mu))`` over ``0..B``; shape ``n.shape + (B+1,)``.

    ``n`` must be in ``0..B``.
    """
    pmf = _poisson_pmf(mu, big_b)  # (..., B+1), index = number of arrivals
    x = np.arange(big_b + 1)
    k = x - np.asarray(n)[..., None]  # arrivals needed to land on x
    valid = k >= 0
    kk = np.clip(k, 0, big_b)
    body = np.where(valid, np.take_along_axis(pmf, kk, axis=-1), 0.0)
    body[..., big_b] = 0.0
    tail = 1.0 - body.sum(axis=-1)
    body[..., big_b] = np.maximum(tail, 0.0)
    return np.asarray(body, dtype=np.float64)


def _excess_decay(mu_b: float, big_b: int) -> float:
    """``ln z`` for the root ``z > 1`` of ``exp(mu_b (z - 1)) = z^B`` (``mu_b < B``).

    The stationary excess queue ``X - B`` of a saturated bulk server decays like
    ``z^-x``; used only to size the truncated chain.
    """
    # g(y) = mu_b (e^y - 1) - B y, y = ln z > 0: convex, g(0) = 0, g'(0) = mu_b - B < 0,
    # so Newton started right of the positive root decreases monotonically onto it.
    mu_b = max(mu_b, 1e-300)

    def g(y: float) -> float:
        return mu_b * math.expm1(y) - big_b * y

    hi = 1.0
    while g(hi) <= 0.0:
        if hi >= 256.0:  # vanishing load: the excess queue is (numerically) empty
            return hi
        hi *= 2.0
    y = hi
    for _ in range(100):
        step = g(y) / (mu_b * math.exp(y) - big_b)
        y -= step
        if step < 1e-12 * y:
            break
    return max(y, 1e-9)


def stability_limit_rps(profile: LatencyProfile, max_batch: int) -> float:
    """``1000 * B / t(B)``: the throughput of full batches back to back (requests/s).

    The batching queue is stable iff the offered rate is strictly below this.  For a
    CPU-like profile (``t(b) ~ b t(1)``) it hardly depends on ``B``.
    """
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    return float(profile.throughput_rps(max_batch))


# ----------------------------------------------------------------------------- chain


def _chain(lam: float, table: FloatArray, big_b: int, delay: float, cv: float = 0.0) -> FloatArray:
    """Stationary distribution of ``X`` (index ``X - 1``) at dispatch epochs."""
    s_b = float(table[big_b])
    y = _excess_decay(lam * s_b, big_b)
    excess = math.ceil(-math.log(_TAIL_EPS) / y) + 2
    n_states = big_b + min(excess, _MAX_EXCESS_STATES)  # states X = 1..n_states

    pmf_a = _mixed_arrivals(lam, table[1:], n_states, cv)  # (B, n_states+1): arrivals in t(b)

    p = np.zeros((n_states + 1, n_states + 1), dtype=np.float64)  # rows/cols = X (0 unused)
    xs = np.arange(1, n_states + 1)
    ys = np.maximum(xs - big_b, 0)
    bs = np.minimum(xs, big_b)
    # n >= B: X' = n = Y + a
    cols = np.arange(n_states + 1)
    a_needed = cols[None, :] - ys[:, None]  # (n_states, n_states+1)
    ok = (a_needed >= 0) & (cols[None, :] >= big_b)
    vals = np.where(
        ok, pmf_a[bs - 1][np.arange(n_states)[:, None], np.clip(a_needed, 0, None)], 0.0
    )
    p[1:, :] += vals

    if big_b > 1:
        # 1 <= n < B with Y = 0 (X = b <= B): n = a, timer r = max(0, D - t(b) * y_g)
        ns = np.arange(1, big_b)
        g = (np.arange(_TIMER_NODES) + 0.5) / _TIMER_NODES
        yq = (1.0 - g)[None, :] ** (1.0 / ns[:, None])  # (B-1, G): 1 - U quantiles
        r = np.maximum(delay - table[1:][:, None, None] * yq[None, :, :], 0.0)  # (B, B-1, G)
        w = pmf_a[:, 1:big_b]  # (B, B-1): P(n = a) for X = b
        rows = slice(1, big_b + 1)
        waits = np.nonzero(r.max(axis=(0, 2)) > 0.0)[0] + 1  # n whose timer can still run
        stay = np.ones(big_b - 1, dtype=bool)
        stay[waits - 1] = False
        # timer already expired for every b: dispatched at once, X' = n
        p[rows, ns[stay]] += w[:, stay]
        for n in waits.tolist():
            # min(B, n + Poisson(lam r)): k < B - n lands on n + k, the rest on B
            pm = _poisson_pmf(lam * r[:, n - 1, :], big_b - n - 1).mean(axis=1)  # (B, B-n)
            wn = w[:, n - 1][:, None]
            p[rows, n:big_b] += wn * pm
            p[rows, big_b] += wn[:, 0] * np.maximum(1.0 - pm.sum(axis=1), 0.0)

        # 1 <= n < B with Y > 0 (B < X < 2B): r = max(0, D - t(B))
        r1 = max(delay - s_b, 0.0)
        x_left = np.arange(big_b + 1, min(2 * big_b, n_states + 1))
        if x_left.size:
            shift1 = _capped_shift(ns, np.full(ns.shape, lam * r1), big_b)  # (B-1, B+1)
            yy = x_left - big_b
            a_n = ns[None, :] - yy[:, None]
            w1 = np.where(a_n >= 0, pmf_a[big_b - 1][np.clip(a_n, 0, None)], 0.0)
            p[x_left, : big_b + 1] += (w1[:, :, None] * shift1[None, :, :]).sum(axis=1)

    # n = 0 (X = b <= B, no arrival during service): idle, then a fresh timer
    idle = _capped_shift(np.array([1]), np.array([lam * delay]), big_b)[0]
    p[1 : big_b + 1, : big_b + 1] += pmf_a[:, 0][:, None] * idle[None, :]

    # truncation: the mass of X' > n_states goes to the last state
    deficit = 1.0 - p[1:, :].sum(axis=1)
    p[1:, n_states] += np.maximum(deficit, 0.0)
    return _stationary(p[1:, 1:], big_b)


def _stationary(q: FloatArray, band: int) -> FloatArray:
    """Stationary distribution of the stochastic matrix ``q``.

    Grassmann-Taksar-Heyman elimination (censoring the highest state first; no
    subtractions, so it is accurate even for nearly reducible chains).  Row ``k``
    of this chain reaches no state below ``k - band`` (a batch removes at most
    ``B``), and censoring preserves that, so each step only updates a ``k x band``
    block: O(n^2 B) element operations, and no multithreaded BLAS call (which,
    on a busy machine, made LAPACK's solve 100x slower for n >= 100).
    """
    a = np.array(q, dtype=np.float64)
    n = a.shape[0]
    base = 0
    for k in range(n - 1, 0, -1):
        lo = max(0, k - band)
        row = a[k, lo:k]
        s = row.sum()
        if s <= 0.0:
            # {k, k+1, ...} never returns below k: states 0..k-1 are transient (e.g. a
            # timer so long that every batch fills: fewer than B waiting never recurs)
            base = k
            break
        col = a[:k, k] / s
        a[:k, k] = col
        a[:k, lo:k] += col[:, None] * row[None, :]
    pi = np.zeros(n, dtype=np.float64)
    pi[base] = 1.0
    for k in range(base + 1, n):
        pi[k] = (pi[base:k] * a[base:k, k]).sum()
    pi = np.maximum(pi, 0.0)
    return np.asarray(pi / pi.sum(), dtype=np.float64)


# ----------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class _Situations:
    """Arrival situations: weight, server-free time ``R``, timer expiry ``E``, position."""

    w: FloatArray
    r: FloatArray
    e: FloatArray
    q: IntArray
    spread_r: FloatArray  # width of the quadrature cell, in R (values anchored on R)
    spread_e: FloatArray  # width of the quadrature cell, in E (values anchored on E)
    ahead: IntArray  # full batches between the service in progress and this batch


def _situations(
    lam: float, table: FloatArray, big_b: int, delay: float, pi: FloatArray, cv: float = 0.0
) -> _Situations:
    n_states = pi.size
    s_b = float(table[big_b])
    ws: list[FloatArray] = []
    rs: list[FloatArray] = []
    es: list[FloatArray] = []
    qs: list[IntArray] = []
    srs: list[FloatArray] = []
    ses: list[FloatArray] = []
    aheads: list[IntArray] = []

    # (A) arrivals during a service at offset u; j = Y + N(u) requests ahead.
    #     b < B: X = b, Y = 0; b = B: Y = X - B.  With jitter, the service in progress
    #     lasts t(b) * X; integrating u over [0, t(b) X] weights long services more
    #     (length bias), as it should.
    xg, wg = _GL_S
    jmax = n_states + big_b
    jit_x, jit_w = _lognormal_nodes(cv, _JITTER_NODES)
    # b < B (Y = 0), all (b, jitter node) pairs at once
    live = np.nonzero(pi[: big_b - 1] > _PRUNE)[0]  # b - 1
    if live.size:
        sb = (table[live + 1][:, None] * jit_x[None, :]).ravel()  # (C,) service lengths
        wb = (pi[live][:, None] * jit_w[None, :]).ravel()
        u = 0.5 * sb[:, None] * (xg[None, :] + 1.0)  # (C, M)
        du = 0.5 * sb[:, None] * wg[None, :]
        w = _poisson_pmf(lam * u, min(jmax, 4 * big_b + 20)) * (wb[:, None] * lam * du)[:, :, None]
        cc, mm, jj = np.nonzero(w > _PRUNE)
        uu = u[cc, mm]
        q = jj % big_b + 1
        ws.append(w[cc, mm, jj])
        rs.append((sb[cc] - uu) + (jj // big_b) * s_b)
        # age of the oldest request in the tagged request's batch, at its arrival: the
        # j arrivals of this service are uniform on [0, u]
        es.append(delay - (q - 1) * uu / (jj + 1))
        qs.append(q.astype(np.int64))
        # each node stands for a cell of width du in u: R moves 1:1 with u, E by dage/du
        cell = du[cc, mm]
        srs.append(cell)
        ses.append(cell * (q - 1) / (jj + 1))
        aheads.append((jj // big_b).astype(np.int64))
    # b = B: Y = X - B leftovers ahead too
    ydist = pi[big_b - 1 :]
    for xf, wf in zip(jit_x.tolist(), jit_w.tolist(), strict=True):
        s = s_b * xf
        u1 = 0.5 * s * (xg + 1.0)  # (M,)
        du1 = 0.5 * s * wg
        poi = _poisson_pmf(lam * u1, jmax)  # (M, jmax+1)
        jd = np.stack([np.convolve(ydist * wf, poi[m])[: jmax + 1] for m in range(u1.size)])
        w1 = jd * (lam * du1)[:, None]
        mm, jj = np.nonzero(w1 > _PRUNE)
        if mm.size == 0:
            continue
        uu = u1[mm]
        q = jj % big_b + 1
        ws.append(w1[mm, jj])
        rs.append((s - uu) + (jj // big_b) * s_b)
        es.append(delay - (q - 1) / lam)  # requests in this batch ~1/lambda apart
        qs.append(q.astype(np.int64))
        srs.append(du1[mm])
        ses.append(np.zeros(mm.size))
        aheads.append((jj // big_b).astype(np.int64))

    # (B) arrivals while the free server waits for a batch timer after a service,
    # (C) arrivals to an idle server (the first starts the timer) and during its window.
    pmf_a = _mixed_arrivals(lam, table[1:], big_b, cv)  # (B, B+1)
    group_r: list[FloatArray] = []
    group_w: list[FloatArray] = []
    group_n: list[IntArray] = []
    if big_b > 1:
        ns = np.arange(1, big_b)
        g = (np.arange(_TIMER_NODES) + 0.5) / _TIMER_NODES
        yq = (1.0 - g)[None, :] ** (1.0 / ns[:, None])
        r = np.maximum(delay - table[1:][:, None, None] * yq[None, :, :], 0.0)  # (B,B-1,G)
        wn = pi[:big_b, None] * pmf_a[:, 1:big_b]  # (B, B-1): Y = 0, n = a
        wsum = wn.sum(axis=0)
        rbar = (wn[:, :, None] * r).sum(axis=(0, 2)) / _TIMER_NODES / np.maximum(wsum, 1e-300)
        group_n.append(ns)
        group_r.append(rbar)
        group_w.append(wsum)
        r1 = max(delay - s_b, 0.0)
        x_left = np.arange(big_b + 1, min(2 * big_b, n_states + 1))
        if r1 > 0.0 and x_left.size:
            # Y = X - B >= 1 leftovers (age ~ t(B)), n = Y + a < B
            yy = x_left - big_b
            a_n = ns[None, :] - yy[:, None]
            w1 = np.where(a_n >= 0, pmf_a[big_b - 1][np.clip(a_n, 0, big_b)], 0.0)
            group_n.append(ns)
            group_r.append(np.full(ns.shape, r1))
            group_w.append((pi[x_left - 1][:, None] * w1).sum(axis=0))
    p_idle = float((pi[:big_b] * pmf_a[:, 0]).sum())
    if p_idle > 0.0:
        # the first arrival: alone, timer D, server free
        ws.append(np.array([p_idle]))
        rs.append(np.zeros(1))
        es.append(np.array([delay]))
        qs.append(np.ones(1, dtype=np.int64))
        srs.append(np.zeros(1))
        ses.append(np.zeros(1))
        aheads.append(np.zeros(1, dtype=np.int64))
        if big_b > 1:
            group_n.append(np.ones(1, dtype=np.int64))
            group_r.append(np.array([delay]))
            group_w.append(np.array([p_idle]))

    if group_n:
        gn = np.concatenate(group_n)
        gr = np.concatenate(group_r)
        gw = np.concatenate(group_w)
        keep = (gw > _PRUNE) & (gr > 0.0)
        gn, gr, gw = gn[keep], gr[keep], gw[keep]
        if gn.size:
            xv, wv = _GL_W
            # integrate only while the batch can still be short: B - n more arrivals take
            # ~(B - n) / lam; beyond mean + 7 sd the wait is over with certainty
            need = (big_b - gn).astype(np.float64)
            span = np.minimum(gr, (need + 7.0 * np.sqrt(need) + 7.0) / lam)
            v = 0.5 * span[:, None] * (xv[None, :] + 1.0)  # (G, M2) time since the wait began
            dv = 0.5 * span[:, None] * wv[None, :]
            poi = _poisson_pmf(lam * v, big_b)  # (G, M2, B+1): k arrivals since then
            k = np.arange(big_b + 1)
            fits = (gn[:, None, None] + k[None, None, :]) <= big_b - 1
            w = gw[:, None, None] * lam * dv[:, :, None] * poi * fits
            gi, mi, ki = np.nonzero(w > _PRUNE)
            ws.append(w[gi, mi, ki])
            rs.append(np.zeros(gi.size))
            es.append(gr[gi] - v[gi, mi])
            qs.append((gn[gi] + ki + 1).astype(np.int64))
            srs.append(np.zeros(gi.size))
            ses.append(dv[gi, mi])
            aheads.append(np.zeros(gi.size, dtype=np.int64))

    w_all = np.concatenate(ws)
    w_all = w_all / w_all.sum()
    r_all = np.concatenate(rs)
    e_raw = np.concatenate(es)
    e_all = np.maximum(e_raw, r_all)
    q_all = np.concatenate(qs)
    sr_all = np.concatenate(srs)
    se_all = np.where(e_raw > r_all, np.concatenate(ses), sr_all)
    keep = w_all > _PRUNE
    return _Situations(
        w=w_all[keep],
        r=r_all[keep],
        e=e_all[keep],
        q=q_all[keep],
        spread_r=sr_all[keep],
        spread_e=se_all[keep],
        ahead=np.concatenate(aheads)[keep],
    )


def _distribution(
    sit: _Situations, lam: float, table: FloatArray, big_b: int, cv: float = 0.0
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Latency law as atoms ``(value, mass)`` plus uniform segments ``(lo, hi, mass)``.

    Given ``(R, E >= R, q)`` and ``K = B - q`` (``N(x)``: later arrivals by ``x``):

    * ``k < K`` arrivals by ``E``: timer fires, latency ``E + t(q + k)`` (atom);
    * ``N(R) >= K``: full before the server is free, latency ``R + t(B)`` (atom);
    * ``R < T_K <= E``: dispatched full at ``T_K``, latency ``T_K + t(B)`` (continuous;
      the Erlang CDF is interpolated linearly between nodes, so uniform segments).

    With service jitter (CV ``cv``), every value also carries the jitter of its own
    batch's service and, when it is anchored on ``R``, of the full batches ahead;
    that normal-ish noise is represented by three points at ``0, +-sqrt(3) sd`` with
    weights ``2/3, 1/6, 1/6`` (exact up to the fifth moment of a normal).
    """
    w, r, e, q = sit.w, sit.r, sit.e, sit.q
    k_need = big_b - q
    s_full = float(table[big_b])
    kk = np.arange(big_b)
    pmf_e = _poisson_pmf(lam * e, big_b - 1)  # (n, B)
    atom_m1 = pmf_e * w[:, None]
    use = (kk[None, :] < k_need[:, None]) & (atom_m1 > _ATOM_EPS)
    sizes1 = np.minimum(q[:, None] + kk[None, :], big_b)
    atom_v1 = e[:, None] + table[sizes1]
    rows = np.arange(q.size)
    kidx = np.clip(k_need - 1, 0, big_b - 1)
    # F(x) = P(T_K <= x) = P(N(x) >= K); at E from the same pmf
    f_e = np.where(k_need > 0, 1.0 - np.cumsum(pmf_e, axis=1)[rows, kidx], 1.0)
    f_e = np.clip(f_e, 0.0, 1.0)
    f_r = f_e.copy()  # when E == R there is no fill window: F(R) = F(E)
    win = np.nonzero((e - r > 1e-9) & (k_need > 0))[0]
    seg_lo = np.zeros(0)
    seg_hi = np.zeros(0)
    seg_m = np.zeros(0)
    if win.size:
        # F(R): the fill window (R, E] carries w * (F(E) - F(R))
        rows_w = np.arange(win.size)
        cdf_r = np.cumsum(_poisson_pmf(lam * r[win], big_b - 1), axis=1)[rows_w, kidx[win]]
        f_r[win] = np.clip(1.0 - cdf_r, 0.0, f_e[win])
        wmass = w[win] * (f_e[win] - f_r[win])
        fine = wmass > _WINDOW_EPS
        # light windows: one uniform segment is plenty
        cw = win[~fine]
        seg_lo = r[cw] + s_full
        seg_hi = e[cw] + s_full
        seg_m = wmass[~fine]
        fw = win[fine]
        if fw.size:
            rw, ew = r[fw], e[fw]
            # interior nodes where the Erlang(K, lam) mass is (mean + z sd), so that
            # long windows (D >> fill time) are resolved where it matters
            kw = k_need[fw].astype(np.float64)
            centre = kw / lam
            sd = np.sqrt(kw) / lam
            inner = np.sort(
                np.clip(
                    centre[:, None] + sd[:, None] * _ERLANG_Z[None, :], rw[:, None], ew[:, None]
                ),
                axis=1,
            )
            cdf = np.cumsum(_poisson_pmf(lam * inner, big_b - 1), axis=2)
            below = cdf[np.arange(fw.size), :, kidx[fw]]  # P(N(x) <= K - 1) at inner nodes
            f_nodes = np.concatenate([f_r[fw][:, None], 1.0 - below, f_e[fw][:, None]], axis=1)
            f_nodes = np.maximum.accumulate(np.clip(f_nodes, 0.0, 1.0), axis=1)
            f_nodes[:, -1] = np.maximum(f_nodes[:, -1], f_nodes[:, -2])
            x_nodes = np.concatenate([rw[:, None], inner, ew[:, None]], axis=1)
            seg_lo = np.concatenate([seg_lo, (x_nodes[:, :-1] + s_full).ravel()])
            seg_hi = np.concatenate([seg_hi, (x_nodes[:, 1:] + s_full).ravel()])
            seg_m = np.concatenate([seg_m, (np.diff(f_nodes, axis=1) * w[fw][:, None]).ravel()])
    if cv > 0.0 and seg_m.size:
        # fill windows (T_K + t(B)): the full batch's own jitter, three points
        off = cv * s_full * np.array([-_SQRT3, 0.0, _SQRT3])
        pw = np.array([1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0])
        seg_lo = (seg_lo[:, None] + off[None, :]).ravel()
        seg_hi = (seg_hi[:, None] + off[None, :]).ravel()
        seg_m = (seg_m[:, None] * pw[None, :]).ravel()
    vals = np.concatenate([atom_v1[use], r + s_full])
    mass = np.concatenate([atom_m1[use], w * f_r])
    # atoms stand for quadrature cells: spread each uniformly over its cell's width
    width = np.concatenate([np.broadcast_to(sit.spread_e[:, None], use.shape)[use], sit.spread_r])
    floor = float(table[1])  # nobody is faster than a lone request
    if cv > 0.0:
        s2c = math.log1p(cv * cv)
        floor *= math.exp(-0.5 * s2c + math.sqrt(s2c) * float(_JIT_Z[0]))
        # the service time a value carries: its own batch, plus the full batches ahead
        # when the value is anchored on R (server free) rather than on the timer
        on_r = np.broadcast_to((e <= r)[:, None], use.shape)[use]
        ahead = np.concatenate([np.broadcast_to(sit.ahead[:, None], use.shape)[use], sit.ahead])
        t_own = np.concatenate([table[sizes1][use], np.full(q.size, s_full)])
        queued = np.concatenate([on_r, np.ones(q.size, dtype=bool)]) * ahead
        # values sharing the same jitter law (own batch size, batches ahead) and the same
        # quantile-grid cell are merged first (their spread would be identical): this
        # keeps the expansion below small (cell: 1/_GRID of the largest latency)
        own = np.concatenate([sizes1[use], np.full(q.size, big_b)]).astype(np.int64)
        key = own * (int(queued.max()) + 1) + queued
        top = float(vals.max()) + float(table[big_b]) * (1.0 + int(queued.max())) * 2.0
        cell = np.floor(vals / (top / _GRID)).astype(np.int64)
        _, first, inv = np.unique(key * (_GRID + 2) + cell, return_index=True, return_inverse=True)
        mass_g = np.bincount(inv, weights=mass)
        keep_g = mass_g > 0.0
        vals = (np.bincount(inv, weights=mass * vals)[keep_g]) / mass_g[keep_g]
        mass = mass_g[keep_g]
        t_own = t_own[first][keep_g]
        queued = queued[first][keep_g]
        mu_s = t_own + queued * s_full
        sd = cv * np.sqrt(t_own**2 + queued * s_full**2)
        # that sum is ~lognormal with this mean and sd (Fenton-Wilkinson): spread each
        # value over quantile bins of it, uniform within a bin (tails resolved to 1e-3)
        s2 = np.log1p((sd / mu_s) ** 2)
        edges = mu_s[:, None] * np.expm1(
            -0.5 * s2[:, None] + np.sqrt(s2)[:, None] * _JIT_Z[None, :]
        )
        seg_lo = np.concatenate([seg_lo, (vals[:, None] + edges[:, :-1]).ravel()])
        seg_hi = np.concatenate([seg_hi, (vals[:, None] + edges[:, 1:]).ravel()])
        seg_m = np.concatenate([seg_m, (mass[:, None] * _JIT_P[None, :]).ravel()])
        vals = np.zeros(0)
        mass = np.zeros(0)
        width = np.zeros(0)
    vals = np.maximum(vals, floor)
    wide = width > 0.0
    if np.any(wide):
        half = 0.5 * width[wide]
        seg_lo = np.concatenate([seg_lo, np.maximum(vals[wide] - half, floor)])
        seg_hi = np.concatenate([seg_hi, vals[wide] + half])
        seg_m = np.concatenate([seg_m, mass[wide]])
        vals, mass = vals[~wide], mass[~wide]
    return vals, mass, np.maximum(seg_lo, floor), np.maximum(seg_hi, floor), seg_m


def _summarise(
    vals: FloatArray,
    mass: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    seg_m: FloatArray,
    level: float,
) -> tuple[float, float]:
    """``(mean, quantile)`` of a law given as atoms plus uniform segments.

    The CDF is accumulated exactly on a uniform grid of ``_GRID`` points (atoms by
    counting, segments as ramps via second differences), then the quantile is
    interpolated linearly within its grid cell (error below one cell, ~0.1 % of the
    range).
    """
    total = float(mass.sum() + seg_m.sum())
    # (elementwise sums, not dot products: BLAS threads thrash on a busy machine)
    mean = float(((vals * mass).sum() + ((lo + hi) * 0.5 * seg_m).sum()) / total)
    live = seg_m > 0.0
    lo, hi, seg_m = lo[live], hi[live], seg_m[live]
    top = max(float(vals[mass > 0.0].max(initial=0.0)), float(hi.max(initial=0.0)))
    n = _GRID
    h = top / n if top > 0.0 else 1.0
    # atoms: counted in the CDF at every grid point >= value
    ia = np.minimum(np.ceil(vals / h - 1e-9).astype(np.int64), n + 1)
    cdf = np.cumsum(np.bincount(ia, weights=mass, minlength=n + 2).astype(np.float64))
    # segments: m * clip((g - lo) / (hi - lo), 0, 1) = c * (ramp(g - lo) - ramp(g - hi))
    short = (hi - lo) <= 1e-9 * max(top, 1.0)
    if np.any(short):
        ib = np.minimum(np.ceil(hi[short] / h - 1e-9).astype(np.int64), n + 1)
        cdf += np.cumsum(np.bincount(ib, weights=seg_m[short], minlength=n + 2))
    long_ = ~short
    if np.any(long_):
        c = seg_m[long_] / (hi[long_] - lo[long_])
        pts = np.concatenate([lo[long_], hi[long_]]) / h
        coef = np.concatenate([c, -c]) * h
        j = np.floor(pts).astype(np.int64)
        th = pts - j
        dd = np.bincount(np.minimum(j + 1, n + 1), weights=coef * (1.0 - th), minlength=n + 3)
        dd += np.bincount(np.minimum(j + 2, n + 2), weights=coef * th, minlength=n + 3)
        cdf += np.cumsum(np.cumsum(dd))[: n + 2]
    cdf = np.maximum.accumulate(cdf / total)
    target = level
    k = int(np.searchsorted(cdf, target, side="left"))
    if k <= 0:
        return mean, 0.0
    if k > n:
        return mean, top
    c0, c1 = float(cdf[k - 1]), float(cdf[k])
    frac_ = (target - c0) / (c1 - c0) if c1 > c0 else 1.0
    return mean, (k - 1 + frac_) * h


# ----------------------------------------------------------------------------- public


@lru_cache(maxsize=65536)
def _predict_cached(
    times: tuple[float, ...],
    rate_rps: float,
    big_b: int,
    delay: float,
    level: float,
    cv: float,
) -> QueuePrediction:
    table = np.asarray(times, dtype=np.float64)
    limit = 1000.0 * big_b / float(table[big_b])
    if rate_rps >= limit:
        return QueuePrediction(
            rate_rps=rate_rps,
            max_batch=big_b,
            max_delay_ms=delay,
            stable=False,
            stability_limit_rps=limit,
            mean_latency_ms=math.inf,
            p99_latency_ms=math.inf,
            mean_batch=float(big_b),
            utilisation=1.0,
            quantile=level,
        )
    if rate_rps <= 1e-9:  # (numerically) no traffic
        # no traffic: a lone request waits out the timer (unless B = 1) and runs alone
        wait = delay if big_b > 1 else 0.0
        s2 = math.log1p(cv * cv)
        factor = math.exp(-0.5 * s2 + math.sqrt(s2) * NormalDist().inv_cdf(level))
        return QueuePrediction(
            rate_rps=rate_rps,
            max_batch=big_b,
            max_delay_ms=delay,
            stable=True,
            stability_limit_rps=limit,
            mean_latency_ms=wait + float(table[1]),
            p99_latency_ms=wait + float(table[1]) * factor,
            mean_batch=1.0,
            utilisation=0.0,
            quantile=level,
        )
    lam = rate_rps / 1000.0  # per ms
    pi = _chain(lam, table, big_b, delay, cv)
    bsz = np.minimum(np.arange(1, pi.size + 1), big_b)
    mean_batch = min(max(float((pi * bsz).sum()), 1.0), float(big_b))
    busy = float((pi * table[bsz]).sum())
    utilisation = min(lam * busy / mean_batch, 1.0)
    sit = _situations(lam, table, big_b, delay, pi, cv)
    mean, quant = _summarise(*_distribution(sit, lam, table, big_b, cv), level)
    if cv == 0.0:
        quant = max(quant, float(table[1]))
    return QueuePrediction(
        rate_rps=rate_rps,
        max_batch=big_b,
        max_delay_ms=delay,
        stable=True,
        stability_limit_rps=limit,
        mean_latency_ms=mean,
        p99_latency_ms=quant,
        mean_batch=mean_batch,
        utilisation=utilisation,
        quantile=level,
    )


def predict(
    profile: LatencyProfile,
    rate_rps: float,
    max_batch: int,
    max_delay_ms: float,
    *,
    quantile: float = 0.99,
    service_cv: float = 0.0,
) -> QueuePrediction:
    """Predict latency, batch size and utilisation of one replica.

    Args:
        profile: service time per batch size.
        rate_rps: Poisson arrival rate at this replica (requests/s, >= 0).
        max_batch: ``B`` in ``[1, MAX_BATCH]`` (1 disables batching; ``D`` is then
            irrelevant).
        max_delay_ms: ``D`` >= 0, the longest the oldest request waits for a batch to fill.
        quantile: the latency quantile to report in ``p99_latency_ms`` (0.5-0.9999).
        service_cv: coefficient of variation of the service time of a batch around
            ``t(b)`` (lognormal, mean ``t(b)``); 0 (default) for deterministic service.
            Real servers typically show 0.05-0.3; ignoring it makes the p99
            optimistic (by ~5-20 % at CV 0.2).  This extension is approximate (see
            docs/performance-model.md for its validation).

    Returns:
        A :class:`QueuePrediction`; latencies are ``inf`` when ``rate_rps`` is at or
        above the stability limit.
    """
    if not 1 <= max_batch <= MAX_BATCH:
        raise ValueError(f"max_batch must be in [1, {MAX_BATCH}]")
    if not (max_delay_ms >= 0.0 and math.isfinite(max_delay_ms)):
        raise ValueError("max_delay_ms must be finite and >= 0")
    if not (rate_rps >= 0.0 and math.isfinite(rate_rps)):
        raise ValueError("rate_rps must be finite and >= 0")
    if not 0.5 <= quantile < 1.0:
        raise ValueError("quantile must be in [0.5, 1)")
    if not 0.0 <= service_cv <= 1.0:
        raise ValueError("service_cv must be in [0, 1]")
    table = profile.service_time_table(int(max_batch))
    return _predict_cached(
        tuple(float(v) for v in table),
        float(rate_rps),
        int(max_batch),
        float(max_delay_ms),
        float(quantile),
        float(service_cv),
    )


def p99_at(
    profile: LatencyProfile,
    rate_rps: float,
    max_batch: int,
    max_delay_ms: float,
    *,
    service_cv: float = 0.0,
) -> float:
    """Predicted p99 latency (ms) at ``rate_rps`` per replica; ``inf`` when unstable."""
    return predict(profile, rate_rps, max_batch, max_delay_ms, service_cv=service_cv).p99_latency_ms


def predict_table(
    profile: LatencyProfile,
    rates_rps: npt.ArrayLike,
    max_batches: npt.ArrayLike,
    max_delays_ms: npt.ArrayLike,
    *,
    quantile: float = 0.99,
    service_cv: float = 0.0,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Vectorised :func:`predict` over broadcast arrays of ``(rate, B, D)``.

    Returns ``(p99_ms, mean_ms, mean_batch, utilisation)`` arrays of the broadcast
    shape.  A convenience for optimizers sweeping grids; each point costs one
    :func:`predict` call (memoised).
    """
    r, bb, dd = np.broadcast_arrays(
        np.asarray(rates_rps, dtype=np.float64),
        np.asarray(max_batches, dtype=np.int64),
        np.asarray(max_delays_ms, dtype=np.float64),
    )
    out = np.empty((4, *r.shape), dtype=np.float64)
    for idx in np.ndindex(r.shape):
        pr = predict(
            profile,
            float(r[idx]),
            int(bb[idx]),
            float(dd[idx]),
            quantile=quantile,
            service_cv=service_cv,
        )
        out[(0, *idx)] = pr.p99_latency_ms
        out[(1, *idx)] = pr.mean_latency_ms
        out[(2, *idx)] = pr.mean_batch
        out[(3, *idx)] = pr.utilisation
    return out[0], out[1], out[2], out[3]
