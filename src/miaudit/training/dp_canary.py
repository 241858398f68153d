"""Canary audits of DP-SGD: many small DP-SGD runs trained at once (``torch.func``), each with or without canaries.

DP-SGD (Abadi et al. 2016) as Opacus runs it with Poisson sampling: at every step each example (canaries
included) joins the batch independently with probability ``q``; per-example gradients are clipped to L2 norm
``C``; their sum gets Gaussian noise ``N(0, (sigma C)^2 I)`` and is divided by the expected batch size
``q n``; the accountant bounds (epsilon, delta) for one example added or removed. Here the same algorithm is
written with ``torch.func`` (per-example gradients by ``vmap(grad)``) and vectorised over ``G`` runs, so a
thousand runs of a small MLP train on a CPU in minutes. ``tests/torch/test_dp_canary.py`` checks one run
against a plain-torch reference and the noise against its stated variance.

Threat models, weakest to strongest (:data:`THREATS`):

* ``input_canary`` -- black-box, final model: the canary is a training example (a mislabelled or
  out-of-distribution input); the score is minus its cross-entropy loss under the final model.
* ``whitebox`` -- final model and initial weights known: the score is the alignment of the total parameter
  change with the canary's descent direction at initialisation, ``<theta_T - theta_0, -g_c(theta_0)> / |g_c|``.
* ``gradient_canary`` -- every intermediate model observed (Nasr et al. 2021, 2023): the canary is a crafted
  per-example gradient ``C u`` (``|u| = 1``, so exactly at the clipping bound) that joins each batch by Poisson
  sampling at the same rate ``q`` as every example (never forced into a step: that would not be covered by
  the amplified claim). The statistic is the sum over steps of the projection of the noisy clipped summed
  gradient onto ``u`` (what consecutive models reveal: ``(theta_t - theta_{t+1}) q n / lr`` with plain SGD).
  ``u`` is a coordinate ("Dirac canary") on which the data's gradients are (nearly) zero, chosen before the
  runs from the data at the initial weights; several canaries get distinct coordinates, so they do not
  interfere with each other. :func:`isolated_coordinates` finds coordinates on which the canaries are
  *exactly* independent: first-layer weights attached to an input feature that is zero in every training
  example (their data gradient is 0 at every step and they never change any output), verified at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import InputError, TrainingError
from .._imports import import_optional

torch = import_optional("torch", "torch")
F = torch.nn.functional

__all__ = ["THREATS", "INITS", "DpSgdSpec", "CanaryRuns", "canary_runs", "gradient_canary_coordinates",
           "initial_weights", "isolated_coordinates"]

THREATS = ("input_canary", "whitebox", "gradient_canary")
INITS = ("random", "fixed", "pretrained")


def initial_weights(factory: Callable[[], Any], X: Any, y: Any, kind: str, *, seed: int) -> Any:
    """The module every run starts from, or None for ``"random"`` (each run its own initialisation).

    ``"fixed"``: one seeded initialisation shared by every run (the initial weights are public: DP holds for
    any fixed one, and the runs no longer differ by their initialisation). ``"pretrained"``: that model
    trained without DP on the data (no canary) for 30 epochs of SGD: the data's gradients are then small and
    the canary's stand out, the worst-case-initialisation idea of Annamalai & De Cristofaro (2024), who craft
    the initial weights (here: a simple pre-training, not their construction).
    """
    if kind not in INITS:
        raise InputError(f"init: expected one of {', '.join(INITS)}, got {kind!r}")
    if kind == "random":
        return None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_derived_seed(seed, 11))
        module = factory()
    if kind == "pretrained":
        from .stacked import TrainSettings, train_one

        module = train_one(lambda: module, X, y, seed=int(seed),
                           settings=TrainSettings(lr=0.05, momentum=0.9, epochs=30, batch_size=64))
    return module


@dataclass(frozen=True)
class DpSgdSpec:
    """DP-SGD as the accountant sees it: Poisson rate ``sample_rate``, ``steps``, ``noise_multiplier``,
    clipping bound ``max_grad_norm``; ``lr`` and ``momentum`` of the SGD update (no effect on privacy)."""

    sample_rate: float
    steps: int
    noise_multiplier: float
    max_grad_norm: float = 1.0
    lr: float = 0.1
    momentum: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.sample_rate <= 1.0:
            raise InputError(f"sample_rate: expected a number in (0, 1], got {self.sample_rate!r}")
        if self.steps < 1:
            raise InputError(f"steps: expected an int >= 1, got {self.steps!r}")
        if not self.noise_multiplier >= 0.0 or not self.max_grad_norm > 0.0:
            raise InputError("noise_multiplier: expected >= 0 and max_grad_norm > 0")


@dataclass
class CanaryRuns:
    """Scores (R, m) of m canaries in R runs with their inclusion flags (R, m); ``crosstalk``: largest
    |data gradient| on the canary coordinates at initialisation (gradient canaries only; 0 = none)."""

    scores: np.ndarray
    included: np.ndarray
    threat: str
    crosstalk: float | None = None


def _derived_seed(seed: int, stream: int) -> int:
    """Stream ``stream`` of ``seed``: a 32-bit seed (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, dtype=np.uint32)[0])


def _flat_params(module: Any) -> tuple[Any, list[tuple[str, tuple[int, ...]]]]:
    names = [(n, tuple(p.shape)) for n, p in module.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for _, p in module.named_parameters()])
    return flat, names


def _unflatten(theta: Any, names: list[tuple[str, tuple[int, ...]]]) -> dict[str, Any]:
    out, i = {}, 0
    for name, shape in names:
        k = int(np.prod(shape)) if shape else 1
        out[name] = theta[i : i + k].reshape(shape)
        i += k
    return out


class _FuncBackend:
    """Any module: per-example gradients with ``torch.func`` (``vmap(grad)`` over examples and runs)."""

    def __init__(self, module: Any, names: list[tuple[str, tuple[int, ...]]]) -> None:
        from torch.func import functional_call, grad, vmap

        def loss(theta: Any, x: Any, yy: Any) -> Any:
            logits = functional_call(module, _unflatten(theta, names), (x.unsqueeze(0),))
            return F.cross_entropy(logits, yy.unsqueeze(0))

        def losses(theta: Any, x: Any, yy: Any) -> Any:
            return F.cross_entropy(functional_call(module, _unflatten(theta, names), (x,)), yy, reduction="none")

        self._grads = vmap(vmap(grad(loss), in_dims=(None, 0, 0)), in_dims=(0, None, None))
        self._losses = vmap(losses, in_dims=(0, None, None))

    def grads(self, theta: Any, x: Any, yy: Any) -> Any:
        """(G, P), (M, ...), (M,) -> (G, M, P) per-example gradients of the cross-entropy."""
        return self._grads(theta, x, yy)

    def clipped_sum(self, theta: Any, x: Any, yy: Any, weight: Any, c: float) -> Any:
        """sum_i weight[g, i] clip_c(grad_i) for each run g: (G, P)."""
        g = self._grads(theta, x, yy)
        factor = torch.clamp(c / (g.norm(dim=2) + 1e-12), max=1.0) * weight
        return torch.einsum("gn,gnp->gp", factor, g)

    def losses(self, theta: Any, x: Any, yy: Any) -> Any:
        return self._losses(theta, x, yy)


class _MlpBackend:
    """``Linear -> ReLU -> ... -> Linear`` (miaudit's MLP without dropout): per-example gradients in closed
    form, never materialised for the clipped sum: layer l's gradient of example i is ``delta_i a_i^T`` (and
    ``delta_i`` for the bias), so ``|g_i|^2 = sum_l |delta_il|^2 (|a_il|^2 + 1)`` and the clipped sum is one
    batched matrix product per layer (the "ghost clipping" identity; Goodfellow 2015, Li et al. 2022).
    Same flat parameter order as ``named_parameters`` (weight, bias per layer); equal to :class:`_FuncBackend`
    up to rounding (tested)."""

    def __init__(self, module: Any) -> None:
        self.shapes = [(lin.out_features, lin.in_features) for lin in module.net if isinstance(lin, torch.nn.Linear)]

    @staticmethod
    def supports(module: Any) -> bool:
        net = getattr(module, "net", None)
        if not isinstance(net, torch.nn.Sequential) or len(net) % 2 != 1:
            return False
        return all(isinstance(layer, torch.nn.Linear if i % 2 == 0 else torch.nn.ReLU) for i, layer in enumerate(net))

    def _split(self, theta: Any) -> list[tuple[Any, Any]]:
        out, i = [], 0
        for o, k in self.shapes:
            w = theta[:, i : i + o * k].reshape(-1, o, k)
            i += o * k
            out.append((w, theta[:, i : i + o]))
            i += o
        return out

    def _forward_backward(self, theta: Any, x: Any, yy: Any) -> tuple[list[Any], list[Any], Any]:
        layers = self._split(theta)
        G = theta.shape[0]
        a = x.reshape(x.shape[0], -1).unsqueeze(0).expand(G, -1, -1)
        acts = []
        for j, (w, b) in enumerate(layers):
            acts.append(a)
            z = torch.baddbmm(b.unsqueeze(1), a, w.transpose(1, 2))
            a = torch.relu(z) if j < len(layers) - 1 else z
        logits = a
        delta = torch.softmax(logits, dim=2)
        delta[:, torch.arange(x.shape[0]), yy] -= 1.0
        deltas: list[Any] = [None] * len(layers)
        for j in range(len(layers) - 1, -1, -1):
            deltas[j] = delta
            if j:
                delta = torch.bmm(delta, layers[j][0]) * (acts[j] > 0)
        return acts, deltas, logits

    def grads(self, theta: Any, x: Any, yy: Any) -> Any:
        acts, deltas, _ = self._forward_backward(theta, x, yy)
        parts = []
        for a, d in zip(acts, deltas):
            parts.append(torch.einsum("gno,gni->gnoi", d, a).flatten(2))
            parts.append(d)
        return torch.cat(parts, dim=2)

    def clipped_sum(self, theta: Any, x: Any, yy: Any, weight: Any, c: float) -> Any:
        acts, deltas, _ = self._forward_backward(theta, x, yy)
        sq = sum((d * d).sum(2) * ((a * a).sum(2) + 1.0) for a, d in zip(acts, deltas))
        factor = torch.clamp(c / (torch.sqrt(sq) + 1e-12), max=1.0) * weight  # (G, N)
        parts = []
        for a, d in zip(acts, deltas):
            fd = d * factor.unsqueeze(2)
            parts.append(torch.bmm(fd.transpose(1, 2), a).flatten(1))
            parts.append(fd.sum(1))
        return torch.cat(parts, dim=1)

    def losses(self, theta: Any, x: Any, yy: Any) -> Any:
        _, _, logits = self._forward_backward(theta, x, yy)
        return -torch.log_softmax(logits, dim=2)[:, torch.arange(x.shape[0]), yy]


def _backend(module: Any, names: list[tuple[str, tuple[int, ...]]], fast: bool = True) -> Any:
    return _MlpBackend(module) if fast and _MlpBackend.supports(module) else _FuncBackend(module, names)


def gradient_canary_coordinates(factory: Callable[[], Any], X: Any, y: Any, m: int, *, seed: int,
                                init: Any = None) -> tuple[np.ndarray, float]:
    """The ``m`` parameter coordinates whose largest |per-example gradient| over the data at the initial
    weights (``init``, or a fresh initialisation from ``seed``) is smallest (ties by index), and that largest
    value over the chosen ones."""
    if init is not None:
        module = init
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_derived_seed(seed, 10))
            module = factory()
    theta, names = _flat_params(module)
    if m > theta.numel():
        raise InputError(f"canaries: the model has {theta.numel()} parameters, fewer than the {m} gradient canaries "
                         "(each needs its own coordinate); lower [dp_audit] canaries or widen the model")
    grads = _backend(module, names).grads(theta.unsqueeze(0), X, y)[0]
    worst = grads.abs().amax(dim=0).numpy()
    order = np.argsort(worst, kind="stable")[:m]
    return order, float(worst[order].max())


def _first_linear(module: Any, n_features: int) -> Any:
    """The plain ``Linear`` that reads the flattened input, when the module is verifiably
    ``net = Sequential(Linear(n_features, ...), ...)`` with ``net.0.weight`` its first parameter; else None."""
    net = getattr(module, "net", None)
    if not isinstance(net, torch.nn.Sequential) or len(net) < 1:
        return None
    first = net[0]
    if type(first) is not torch.nn.Linear or first.in_features != n_features:
        return None
    params = list(module.parameters())
    return first if params and params[0] is first.weight else None


def isolated_coordinates(module: Any, X: Any, y: Any, *, limit: int | None = None) -> tuple[np.ndarray, str]:
    """Flat parameter coordinates of first-layer weights attached to input features that are exactly zero in
    every row of ``X`` (as trained: after preprocessing), with a sentence saying why there are none.

    For such a weight ``W[o, i]`` the data's per-example gradient is ``delta_o x_i = 0`` at every step, and
    ``W[o, i] x_i = 0`` whatever its value, so it never changes an output or another gradient: a Dirac
    canary there sees only its own contribution and its own i.i.d. noise. Checked, not assumed: the
    features are zero over all of ``X``, the per-example gradients (``torch.func``) on the coordinates are
    exactly 0 at ``module``'s weights, and setting the coordinates to large random values leaves every
    output bit-identical. Order: by feature, then output unit; ``limit`` keeps the first ones spread over
    features (round-robin)."""
    X = torch.as_tensor(X, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.int64)
    flat_x = X.reshape(X.shape[0], -1)
    first = _first_linear(module, int(flat_x.shape[1]))
    if first is None:
        return np.zeros(0, dtype=np.int64), ("the model's first layer is not a plain Linear on the input "
                                             "(net.0), so no coordinate can be verified isolated")
    zero = torch.nonzero((flat_x == 0).all(dim=0)).flatten().numpy()
    if zero.size == 0:
        return np.zeros(0, dtype=np.int64), "no input feature is exactly zero in every training example"
    k = int(flat_x.shape[1])
    # round-robin over features: unit 0 of every zero feature, then unit 1, ...
    coords = np.array([o * k + int(i) for o in range(first.out_features) for i in zero], dtype=np.int64)
    if limit is not None:
        coords = coords[: int(limit)]
    theta, names = _flat_params(module)
    grads = _FuncBackend(module, names).grads(theta.unsqueeze(0), X, y)[0]
    if not bool((grads[:, torch.as_tensor(coords)] == 0).all()):
        return np.zeros(0, dtype=np.int64), "the data's gradients on the zero features' weights are not exactly 0"
    from torch.func import functional_call

    bumped = theta.clone()
    gen = torch.Generator().manual_seed(12345)
    bumped[torch.as_tensor(coords)] = 100.0 * torch.randn(coords.size, generator=gen)
    with torch.no_grad():
        out0 = functional_call(module, _unflatten(theta, names), (X,))
        out1 = functional_call(module, _unflatten(bumped, names), (X,))
    if not torch.equal(out0, out1):
        return np.zeros(0, dtype=np.int64), "changing the zero features' weights changed the model's outputs"
    return coords, ""


def canary_runs(
    factory: Callable[[], Any],
    X: Any,
    y: Any,
    *,
    spec: DpSgdSpec,
    threat: str,
    included: np.ndarray,
    seed: int,
    canary_x: Any = None,
    canary_y: Any = None,
    group_size: int = 50,
    fast: bool = True,
    init: Any = None,
    on_group: Callable[[int, int], None] | None = None,
    coords: np.ndarray | None = None,
) -> CanaryRuns:
    """Train ``R = included.shape[0]`` DP-SGD runs of ``factory`` on ``(X, y)`` (float32 (N, ...), int64 (N,))
    with canary j in run r when ``included[r, j]``; return every canary's score in every run.

    ``canary_x`` / ``canary_y``: the m canary examples (``input_canary``, ``whitebox``); ignored for
    ``gradient_canary``. Runs are independent (own initial weights, sampling and noise, all from ``seed``);
    ``group_size`` runs train together. ``fast``: closed-form per-example gradients for miaudit's MLP
    (:class:`_MlpBackend`); other modules (or ``fast=False``) use ``torch.func``. ``init``: a module whose
    weights every run starts from (fixed or worst-case initial weights, :func:`initial_weights`); default:
    each run's own random initialisation. ``coords`` (gradient canaries): the m coordinates to use, verified
    isolated by :func:`isolated_coordinates` (every step then checks that the data's clipped gradient sum is
    exactly 0 on them, else :class:`TrainingError`); default: :func:`gradient_canary_coordinates`.
    """
    if threat not in THREATS:
        raise InputError(f"threat: expected one of {', '.join(THREATS)}, got {threat!r}")
    inc = np.asarray(included, dtype=bool)
    if inc.ndim != 2 or inc.shape[0] < 1 or inc.shape[1] < 1:
        raise InputError(f"included: expected (runs, canaries) flags, got shape {inc.shape}")
    n_runs, m = inc.shape
    X = torch.as_tensor(X, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.int64)
    n = int(X.shape[0])
    crosstalk = None
    isolated = coords is not None
    if threat == "gradient_canary":
        if coords is None:
            coords, crosstalk = gradient_canary_coordinates(factory, X, y, m, seed=seed, init=init)
        else:
            coords = np.asarray(coords, dtype=np.int64)
            if coords.shape != (m,) or np.unique(coords).size != m:
                raise InputError(f"coords: expected {m} distinct coordinates, got {coords.tolist()}")
            crosstalk = 0.0
    else:
        coords, isolated = None, False
        if canary_x is None or canary_y is None or int(canary_x.shape[0]) != m:
            raise InputError(f"canaries: expected {m} canary examples for threat {threat!r}")
        canary_x = torch.as_tensor(canary_x, dtype=torch.float32)
        canary_y = torch.as_tensor(canary_y, dtype=torch.int64)
        X = torch.cat([X, canary_x])
        y = torch.cat([y, canary_y])
    scores = np.zeros((n_runs, m))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for g0 in range(0, n_runs, int(group_size)):
            g1 = min(n_runs, g0 + int(group_size))
            scores[g0:g1] = _train_group(factory, X, y, n, spec=spec, threat=threat, inc=inc[g0:g1], coords=coords,
                                         seeds=[_derived_seed(seed, 1000 + r) for r in range(g0, g1)], fast=fast,
                                         init=None if init is None else _flat_params(init)[0],
                                         check_isolated=isolated)
            if on_group is not None:
                on_group(g1, n_runs)
    if not np.all(np.isfinite(scores)):
        raise TrainingError("dp-audit: a canary score became NaN or infinite; lower the learning rate")
    return CanaryRuns(scores=scores, included=inc, threat=threat, crosstalk=crosstalk)


def _train_group(factory: Callable[[], Any], X: Any, y: Any, n: int, *, spec: DpSgdSpec, threat: str, inc: np.ndarray,
                 coords: np.ndarray | None, seeds: list[int], fast: bool = True, init: Any = None,
                 check_isolated: bool = False) -> np.ndarray:
    G, m = inc.shape
    modules = []
    for s in seeds:
        torch.manual_seed(_derived_seed(s, 0))
        modules.append(factory())
    flats = [_flat_params(mod) for mod in modules]
    names = flats[0][1]
    theta = torch.stack([f for f, _ in flats])  # (G, P)
    if init is not None:
        theta = init.unsqueeze(0).expand_as(theta).clone()
    theta0 = theta.clone()
    backend = _backend(modules[0], names, fast)
    gen = torch.Generator().manual_seed(_derived_seed(seeds[0], 7))
    c, q, sigma = float(spec.max_grad_norm), float(spec.sample_rate), float(spec.noise_multiplier)
    n_all = int(X.shape[0])
    # Which examples may be sampled in each run: the data always, canary example j only where included.
    present = torch.ones(G, n_all, dtype=torch.bool)
    inc_t = torch.as_tensor(inc)
    if threat != "gradient_canary":
        present[:, n:] = inc_t
    coords_t = torch.as_tensor(coords) if coords is not None else None
    stat = torch.zeros(G, m, dtype=torch.float64)
    velocity = torch.zeros_like(theta)
    denom = q * n  # Opacus: the noisy sum is divided by the expected batch size
    for _ in range(int(spec.steps)):
        sampled = (torch.rand(G, n_all, generator=gen) < q) & present
        summed = backend.clipped_sum(theta, X, y, sampled.to(theta.dtype), c)
        if coords_t is not None:  # gradient canaries: C u_j, u_j the unit vector of coordinate coords[j]
            if check_isolated and not bool((summed[:, coords_t] == 0).all()):
                raise TrainingError("dp-audit: the data's gradient on an isolated canary coordinate is not 0 "
                                    "(a bug: the canaries would not be independent)")
            canary_in = (torch.rand(G, m, generator=gen) < q) & inc_t
            summed[:, coords_t] += c * canary_in.to(summed.dtype)
        noisy = summed + sigma * c * torch.randn(summed.shape, generator=gen)
        if coords_t is not None:
            stat += noisy[:, coords_t].double()
        update = noisy / denom
        if spec.momentum > 0:
            velocity = spec.momentum * velocity + update
            update = velocity
        theta = theta - spec.lr * update
    if threat == "gradient_canary":
        return np.asarray(stat.numpy())
    if threat == "input_canary":
        return np.asarray((-backend.losses(theta, X[n:], y[n:])).double().numpy())
    g0 = backend.grads(theta0, X[n:], y[n:])  # (G, m, P): each canary's gradient at the initial weights
    direction = -g0 / (g0.norm(dim=2, keepdim=True) + 1e-12)
    return np.asarray(torch.einsum("gp,gmp->gm", theta - theta0, direction).double().numpy())
