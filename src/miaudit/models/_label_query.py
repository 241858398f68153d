"""Label-only queries: ask a model for its predicted class on perturbed copies of each example.

This is the query machinery of the label-only attacks (:mod:`miaudit.attacks.label_only`), kept below the
attacks: it runs where a model's outputs are computed (the training workers for reference models, the
audit for the target) and hands the attacks arrays only.

* **Augmentations** (Choquette-Choo et al. 2021, "Label-Only Membership Inference Attacks", ICML, Sec. 4):
  ``n`` seeded augmented copies of every example. Images (arrays of 3 or more dimensions): translations by
  up to ``shift`` pixels (zero fill) and, with ``flip``, horizontal flips, as in the paper. Tables (2-D
  arrays, DataFrames): Gaussian noise of ``noise`` times each numeric feature's spread (its standard
  deviation over the queried rows); other columns are kept.
* **Boundary distance** (Choquette-Choo et al. 2021, Sec. 5; Li & Zhang 2021, "Membership Leakage in
  Label-Only Exposures", CCS): how far an example is from the decision boundary of its predicted class,
  found under a per-example query budget by a seeded HopSkipJump-style search for images (Chen et al.
  2020: bisection to the boundary, sign-based gradient estimation, geometric step, repeated) and by
  random-direction search with bisection for tables (distances in units of each feature's spread).

Everything is deterministic for a seed: the augmentations and the search directions depend only on the
seed, the example's row and the spread of the queried rows, never on the model, so a target and its
references are asked the same questions (a boundary search then follows each model's answers), and
identical seeded runs give identical answers. Query counts are exact (every row passed
to the model counts once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .._errors import InputError
from .._seeds import check_seed

__all__ = ["LabelQuerySpec", "LabelAnswers", "label_queries", "augment", "is_image"]

PredictLabels = Callable[[Any], np.ndarray]

#: Steps of the geometric scan (table search) and bisection steps per bracket.
_N_EXPAND = 8
_N_BISECT = 10
#: Directions refined by bisection after the scan (tables).
_N_REFINE = 4
#: Smallest per-example boundary budget.
MIN_BOUNDARY_QUERIES = 32


@dataclass(frozen=True)
class LabelQuerySpec:
    """What to ask a label-only model.

    ``augmentations``: augmented queries per example (the example itself is always query 0, so the
    answers have ``1 + augmentations`` columns); ``noise``: table noise in units of each feature's spread;
    ``shift``/``flip``: image translations (pixels) and horizontal flips; ``boundary_queries``: the
    per-example query budget of the boundary search (0: no boundary search); ``seed``: all randomness;
    ``batch_size``: rows per model call.
    """

    augmentations: int = 32
    noise: float = 0.3
    shift: int = 2
    flip: bool = True
    boundary_queries: int = 256
    seed: int = 0
    batch_size: int = 8192

    def __post_init__(self) -> None:
        check_seed(self.seed, "label queries seed")
        for name, lo in (("augmentations", 0), ("shift", 0), ("boundary_queries", 0), ("batch_size", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise InputError(f"{name}: expected an integer >= {lo}, got {v!r}")
        if self.boundary_queries and self.boundary_queries < MIN_BOUNDARY_QUERIES:
            raise InputError(f"boundary_queries: expected 0 (no boundary search) or at least {MIN_BOUNDARY_QUERIES} "
                             f"queries per example, got {self.boundary_queries}")
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float)) or not 0 < self.noise < 10:
            raise InputError(f"noise: expected a number in (0, 10) (fraction of each feature's spread), got {self.noise!r}")
        if not isinstance(self.flip, bool):
            raise InputError(f"flip: expected true or false, got {self.flip!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("batch_size")  # never changes an answer
        return d

    def queries_per_example(self) -> int:
        """Model queries per example: the example, its augmentations and the boundary budget."""
        return 1 + self.augmentations + self.boundary_queries


@dataclass(frozen=True)
class LabelAnswers:
    """A model's label-only answers on N examples: ``pred`` (N, 1 + augmentations) int64 (column 0: the
    example itself), ``distance`` (N,) float64 boundary distance of the predicted class (NaN without a
    boundary search), ``queries`` (N,) int64 queries made per example."""

    pred: np.ndarray
    distance: np.ndarray
    queries: np.ndarray


# ---------------------------------------------------------------------------------------------- inputs


def is_image(X: Any) -> bool:
    """Images are numeric arrays of 3 or more dimensions (N, H, W[, C]) or (N, C, H, W)."""
    return not hasattr(X, "iloc") and np.ndim(X) >= 3


class _Rows:
    """The queried rows as a float block of the perturbable values, and a way back to model inputs."""

    def __init__(self, X: Any) -> None:
        self.frame = hasattr(X, "iloc")
        if self.frame:
            from pandas.api.types import is_bool_dtype, is_numeric_dtype

            self.X = X.reset_index(drop=True)
            self.cols = [c for c in X.columns if is_numeric_dtype(X[c]) and not is_bool_dtype(X[c])]
            if not self.cols:
                raise InputError("label-only queries: the table has no numeric feature column to perturb")
            self.values = self.X[self.cols].to_numpy(np.float64)
        else:
            arr = np.asarray(X)
            if arr.dtype.kind not in "biuf" or arr.ndim < 2:
                raise InputError(f"label-only queries: expected numeric features (N, D) or images (N, H, W[, C]), "
                                 f"got {arr.dtype} {arr.shape}")
            self.dtype = arr.dtype
            self.values = arr.astype(np.float64)
        self.n = self.values.shape[0]
        if not np.all(np.isfinite(self.values)):
            raise InputError("label-only queries: the features hold NaN/inf; impute them before the audit")

    def make(self, idx: np.ndarray, values: np.ndarray) -> Any:
        """Model input: rows ``idx`` with their perturbable values replaced by ``values``."""
        if self.frame:
            out = self.X.iloc[idx].reset_index(drop=True).copy()
            out[self.cols] = values.reshape(len(idx), -1)
            return out
        if self.dtype.kind in "iub":  # keep the values the model sees real-valued (perturbations are small)
            return values
        return values.astype(self.dtype, copy=False)

    def spread(self) -> np.ndarray:
        """Per-value standard deviation over the rows (1 where constant)."""
        s = self.values.std(axis=0)
        return np.where(s > 0, s, 1.0)


def _ask(predict: PredictLabels, rows: _Rows, idx: np.ndarray, values: np.ndarray, batch: int) -> np.ndarray:
    out = np.empty(len(idx), dtype=np.int64)
    for s in range(0, len(idx), batch):
        sl = slice(s, s + batch)
        p = np.asarray(predict(rows.make(idx[sl], values[sl])))
        if p.shape != (len(idx[sl]),):
            raise InputError(f"label-only queries: the model returned shape {p.shape} for {len(idx[sl])} rows, "
                             "expected one predicted class per row")
        out[sl] = p
    return out


# --------------------------------------------------------------------------------------- augmentations


def _image_axes(shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) axes of an image batch: the last two, or 1 and 2 for channel-last (…, C <= 4)."""
    if len(shape) == 4 and shape[-1] <= 4 < shape[1]:
        return 1, 2
    return len(shape) - 2, len(shape) - 1


def _image_moves(spec: LabelQuerySpec) -> list[tuple[int, int, bool]]:
    """Every (dy, dx, flip) but the identity, nearest first; seeded order within equal sizes."""
    s = int(spec.shift)
    moves = [(dy, dx, f) for f in ((False, True) if spec.flip else (False,))
             for dy in range(-s, s + 1) for dx in range(-s, s + 1) if (dy, dx, f) != (0, 0, False)]
    rng = np.random.default_rng([spec.seed, 1])
    keys = rng.random(len(moves))
    return sorted(moves, key=lambda m: (abs(m[0]) + abs(m[1]) + int(m[2]), keys[moves.index(m)]))


def _shift(x: np.ndarray, dy: int, dx: int, flip: bool, axes: tuple[int, int]) -> np.ndarray:
    ay, ax = axes
    out = np.flip(x, axis=ax) if flip else x
    out = np.roll(out, (dy, dx), axis=(ay, ax))
    idx: list[Any] = [slice(None)] * x.ndim
    if dy:
        idx[ay] = slice(0, dy) if dy > 0 else slice(dy, None)
        out[tuple(idx)] = 0
        idx[ay] = slice(None)
    if dx:
        idx[ax] = slice(0, dx) if dx > 0 else slice(dx, None)
        out[tuple(idx)] = 0
    return out


def augment(rows: _Rows, spec: LabelQuerySpec, j: int, image: bool) -> np.ndarray:
    """Augmented copy ``j`` (0-based, not the identity) of every row's perturbable values."""
    v = rows.values
    if image:
        moves = _image_moves(spec)
        dy, dx, f = moves[j % len(moves)]
        return _shift(v, dy, dx, f, _image_axes(v.shape))
    z = np.random.default_rng([spec.seed, 2, j]).standard_normal(v.shape)
    out: np.ndarray = v + spec.noise * rows.spread() * z
    return out


# ------------------------------------------------------------------------------------ boundary searches


def _bisect(predict: PredictLabels, rows: _Rows, idx: np.ndarray, x0: np.ndarray, x1: np.ndarray,
            p0: np.ndarray, steps: int, batch: int) -> tuple[np.ndarray, int]:
    """Bisection on the segment x0 (label p0) -> x1 (label != p0): the fraction ``hi`` of the segment where
    the label has changed (an upper bound on the boundary within ``2**-steps``), and the queries per row."""
    lo = np.zeros(len(idx))
    hi = np.ones(len(idx))
    shape = (-1,) + (1,) * (x0.ndim - 1)
    for _ in range(steps):
        mid = (lo + hi) / 2
        pm = _ask(predict, rows, idx, x0 + mid.reshape(shape) * (x1 - x0), batch)
        adv = pm != p0
        hi = np.where(adv, mid, hi)
        lo = np.where(adv, lo, mid)
    return hi, steps


def _table_distance(predict: PredictLabels, rows: _Rows, p0: np.ndarray, spec: LabelQuerySpec) -> tuple[np.ndarray, int]:
    """Random-direction search: scan ``n_dirs`` seeded directions geometrically, bisect the best brackets.

    Distance in units of each feature's spread (the Euclidean norm of the standardised perturbation); an
    example whose label does not change within the scan gets the largest radius scanned, doubled
    (censored, the same for every model)."""
    n, batch = rows.n, spec.batch_size
    budget = spec.boundary_queries
    n_dirs = max(1, (budget - _N_REFINE * _N_BISECT) // _N_EXPAND)
    d = rows.values.shape[1]
    scale = rows.spread()
    u = np.random.default_rng([spec.seed, 3]).standard_normal((n_dirs, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    radii = 0.05 * 2.0 ** np.arange(_N_EXPAND)  # 0.05 .. 6.4 spreads
    first = np.full((n, n_dirs), _N_EXPAND, dtype=np.int64)  # first radius index where the label changed
    idx_all = np.arange(n)
    used = 0
    for k, r in enumerate(radii):
        for j in range(n_dirs):
            pk = _ask(predict, rows, idx_all, rows.values + r * scale * u[j], batch)
            used += 1
            hit = (pk != p0) & (first[:, j] == _N_EXPAND)
            first[hit, j] = k
    censored = 2.0 * radii[-1]
    dist = np.full(n, censored)
    order = np.argsort(first, axis=1, kind="stable")[:, :_N_REFINE]
    for q in range(min(_N_REFINE, n_dirs)):
        jj = order[:, q]
        kk = first[idx_all, jj]
        ok = kk < _N_EXPAND
        lo_r = np.where(kk > 0, radii[np.maximum(kk - 1, 0)], 0.0)
        hi_r = radii[np.minimum(kk, _N_EXPAND - 1)]
        x0 = rows.values + lo_r[:, None] * scale * u[jj]
        x1 = rows.values + hi_r[:, None] * scale * u[jj]
        frac, steps = _bisect(predict, rows, idx_all, x0, x1, p0, _N_BISECT, batch)
        used += steps
        # a radius below the bracket's lower end that already changed the label cannot happen: the scan
        # saw p0 at lo_r (or lo_r = 0); the boundary lies in (lo_r, lo_r + frac * (hi_r - lo_r)]
        cand = lo_r + frac * (hi_r - lo_r)
        dist = np.where(ok, np.minimum(dist, cand), dist)
    return dist, used


def _image_distance(predict: PredictLabels, rows: _Rows, p0: np.ndarray, spec: LabelQuerySpec) -> tuple[np.ndarray, int]:
    """HopSkipJump-style search (Chen et al. 2020), batched over examples, in the [0, 1]-scaled pixel space.

    Start: a seeded draw among the other queried examples that the model labels differently (their labels are
    known from query 0, so this costs no query), else the first of a few seeded uniform-noise images the model
    labels differently; bisected toward the example. Then, while the budget lasts: estimate the boundary's normal at the current boundary point by
    the signs of ``m`` seeded probes, step along it (geometric step size, halved until the label differs),
    bisect back toward the example. Distance: L2 norm of (boundary point - example) in [0, 1] pixels. An
    example for which no start is found gets the distance to the farthest noise image (censored)."""
    n, batch = rows.n, spec.batch_size
    budget = spec.boundary_queries
    x = rows.values
    top = float(x.max()) if x.size else 1.0
    unit = top if top > 1.0 else 1.0  # uint8-like images: 0..255 -> 0..1
    xs = x / unit
    shape = (-1,) + (1,) * (x.ndim - 1)
    idx_all = np.arange(n)
    rng = np.random.default_rng([spec.seed, 4])
    n_init = 4
    used = 0

    def ask(z: np.ndarray) -> np.ndarray:
        return _ask(predict, rows, idx_all, z * unit, batch)

    # start from another queried example the model labels differently (no query needed: its label is known)
    cand = rng.integers(0, n, size=(n, 32))
    differs = p0[cand] != p0[:, None]
    first = np.argmax(differs, axis=1)
    found = differs[idx_all, first]
    start = np.where(found.reshape(shape), xs[cand[idx_all, first]], xs)
    far = np.where(found, np.sqrt(((start - xs) ** 2).reshape(n, -1).sum(axis=1)), 0.0)
    for _ in range(n_init if not found.all() else 0):  # else: seeded uniform-noise images
        noise = rng.random(xs.shape[1:])[None] * np.ones_like(xs)
        pk = ask(noise)
        used += 1
        new = (pk != p0) & ~found
        start[new] = noise[new]
        far = np.maximum(far, np.sqrt(((noise - xs) ** 2).reshape(n, -1).sum(axis=1)))
        found |= new
    frac, steps = _bisect(predict, rows, idx_all, xs * unit, start * unit, p0, _N_BISECT, batch)
    used += steps
    xb = xs + frac.reshape(shape) * (start - xs)
    dist = np.where(found, np.sqrt(((xb - xs) ** 2).reshape(n, -1).sum(axis=1)), far)
    m = 24
    n_step = 3
    per_iter = m + n_step + _N_BISECT
    dim = xs[0].size
    n_iter = max(0, (budget - n_init - _N_BISECT) // per_iter)  # the same search depth for every model
    for it in range(1, n_iter + 1):
        delta = np.maximum(np.sqrt(dim) * 1e-3 * dist, 1e-6)  # probe radius, relative to the distance
        grad = np.zeros_like(xs)
        signs = np.zeros((m, n))
        probes = rng.standard_normal((m, *xs.shape[1:]))
        probes /= np.sqrt((probes.reshape(m, -1) ** 2).sum(axis=1)).reshape((m,) + (1,) * (xs.ndim - 1))
        for b in range(m):
            pk = ask(np.clip(xb + delta.reshape(shape) * probes[b][None], 0.0, 1.0))
            signs[b] = np.where(pk != p0, 1.0, -1.0)
        used += m
        signs -= signs.mean(axis=0, keepdims=True)  # HopSkipJump's baseline correction
        for b in range(m):
            grad += signs[b].reshape(shape) * probes[b][None]
        gnorm = np.sqrt((grad.reshape(n, -1) ** 2).sum(axis=1))
        grad = grad / np.maximum(gnorm, 1e-12).reshape(shape)
        eps = dist / np.sqrt(it)
        cand = xb.copy()
        moved = np.zeros(n, dtype=bool)
        for _ in range(n_step):
            trial = np.clip(xb + eps.reshape(shape) * grad, 0.0, 1.0)
            pk = ask(trial)
            ok = (pk != p0) & ~moved
            cand[ok] = trial[ok]
            moved |= ok
            eps = eps / 2
        used += n_step
        frac, steps = _bisect(predict, rows, idx_all, xs * unit, cand * unit, p0, _N_BISECT, batch)
        used += steps
        new_b = xs + frac.reshape(shape) * (cand - xs)
        new_d = np.sqrt(((new_b - xs) ** 2).reshape(n, -1).sum(axis=1))
        better = found & moved & (new_d < dist)
        xb[better] = new_b[better]
        dist = np.where(better, new_d, dist)
    return dist, used


# ------------------------------------------------------------------------------------------ entry point


def label_queries(predict: PredictLabels, X: Any, spec: LabelQuerySpec) -> LabelAnswers:
    """Ask ``predict`` (rows -> predicted class per row) for its labels on X, its augmentations and (with a
    boundary budget) along the boundary search. Deterministic for ``spec.seed``."""
    rows = _Rows(X)
    image = is_image(X)
    n, batch = rows.n, spec.batch_size
    idx = np.arange(n)
    cols = [_ask(predict, rows, idx, rows.values, batch)]
    for j in range(spec.augmentations):
        cols.append(_ask(predict, rows, idx, augment(rows, spec, j, image), batch))
    pred = np.stack(cols, axis=1)
    used = 1 + spec.augmentations
    distance = np.full(n, np.nan)
    if spec.boundary_queries:
        search = _image_distance if image else _table_distance
        distance, b_used = search(predict, rows, pred[:, 0], spec)
        used += b_used
    return LabelAnswers(pred=pred, distance=distance, queries=np.full(n, used, dtype=np.int64))
