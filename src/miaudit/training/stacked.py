"""Train many small PyTorch models of one architecture at once, as one stacked model.

Reference-model attacks (LiRA, Carlini et al. 2022; RMIA, Zarifzadeh et al. 2024) need K models trained
with the target's recipe on K different data halves. For small networks one model cannot keep a CPU busy:
most of the time goes to Python and kernel-launch overhead. Here G models are trained together: their
parameters are stacked along a new leading axis (``torch.func.stack_module_state``), the forward pass is
``torch.vmap`` over ``torch.func.functional_call`` (batched matrix products for linear layers, grouped
convolutions for conv layers), and a hand-written, vectorised SGD / Adam updates every model with its own
learning rate and optimiser state.

Equivalence contract (tested in ``tests/torch/test_stacked.py``): for the same seeds, :func:`train_stacked`
returns the same models, up to floating-point rounding, as :func:`train_one` called model by model, because

* each model is initialised by the same seeded factory call (:func:`init_seed`);
* each model's batch order and augmentation draws come from its own generator (:func:`batch_plan`), the
  same list of batches in both paths, with a smaller last batch (``drop_last=False``);
* models with fewer examples (unequal subsets) have padded batches whose padding weighs 0, so each model's
  loss is the mean over its real examples, exactly like ``F.cross_entropy(reduction="mean")``; a model whose
  batches are used up takes no step at all (no momentum, weight decay or Adam step either);
* the SGD (momentum, dampening 0, L2 weight decay added to the gradient) and Adam updates follow
  ``torch.optim.SGD`` / ``torch.optim.Adam`` step by step, and both paths share :func:`lr_at`.

Dropout draws differ between the two paths (``vmap(randomness="different")``): with dropout the stacked
models are statistically, not numerically, equivalent. Models with buffers (batch norm) are not stacked.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .._errors import ConfigError, InputError, TrainingError
from .._imports import import_optional
from .._seeds import check_seed

torch = import_optional("torch", "torch")
F = torch.nn.functional

__all__ = [
    "TrainSettings",
    "init_seed",
    "order_seed",
    "batch_plan",
    "augment_batch",
    "lr_at",
    "train_one",
    "train_stacked",
    "is_stackable",
    "has_conv",
]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")
AUGMENTATIONS = (None, "flip_shift", "shift")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class TrainSettings:
    """The optimisation part of a recipe, shared by one-by-one, stacked and DP training.

    ``augmentation``: ``None``; ``"shift"`` (random translation by up to ``max_shift`` pixels in x and y,
    zero padding) or ``"flip_shift"`` (plus a horizontal flip with probability 1/2), drawn per example and
    per step from the model's own generator (images only).
    ``schedule``: ``"constant"`` or ``"cosine"`` (per step, ``lr * (1 + cos(pi t / T)) / 2`` over the model's
    T steps).
    """

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 128
    schedule: str = "constant"
    augmentation: str | None = None
    max_shift: int = 2
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule: expected one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.augmentation not in AUGMENTATIONS:
            problems.append(f"augmentation: expected none, 'shift' or 'flip_shift', got {self.augmentation!r}")
        for name, lo in (("epochs", 1), ("batch_size", 1), ("max_shift", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                problems.append(f"{name}: expected an int >= {lo}, got {v!r}")
        for name, low, high in (("lr", 0.0, math.inf), ("momentum", 0.0, 1.0), ("weight_decay", 0.0, math.inf),
                                ("label_smoothing", 0.0, 1.0)):
            v = getattr(self, name)
            ok = not isinstance(v, bool) and isinstance(v, (int, float, np.floating)) and math.isfinite(v)
            if not ok or not (low <= float(v) < high) or (name == "lr" and float(v) <= 0):
                bound = "> 0" if name == "lr" else f"in [{low:g}, {high:g})"
                problems.append(f"{name}: expected a finite number {bound}, got {v!r}")
        if problems:
            raise ConfigError("model: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- seeds and plans ------------------------------------------------------------------------------------


def _derived_seed(seed: int, stream: int) -> int:
    """Stream ``stream`` of a model seed (checked with :func:`miaudit._seeds.check_seed`): a 63-bit int."""
    state = np.random.SeedSequence([check_seed(seed), stream]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> 1)


def init_seed(seed: int) -> int:
    """Seed of ``torch.manual_seed`` before the model factory is called (stream 0 of ``seed``)."""
    return _derived_seed(seed, 0)


def order_seed(seed: int) -> int:
    """Seed of the generator that draws batch order and augmentations (stream 1 of ``seed``)."""
    return _derived_seed(seed, 1)


def dropout_seed(seed: int) -> int:
    """Seed of the global torch RNG during training (dropout, Opacus noise and sampling; stream 2)."""
    return _derived_seed(seed, 2)


Step = tuple[Any, Any, Any]  # (indices (b,) long, flip (b,) bool | None, shifts (b, 2) long | None)


def batch_plan(n: int, settings: TrainSettings, seed: int) -> list[Step]:
    """Every training step of one model: a fresh permutation of ``range(n)`` per epoch cut into batches of
    ``batch_size`` (the last one smaller), with the augmentation draws of each batch.

    Drawn from ``torch.Generator().manual_seed(order_seed(seed))`` in a fixed order (permutation, then per
    batch flips, then shifts), so one-by-one and stacked training see the same batches.
    """
    if n < 1:
        raise InputError(f"training set: expected at least 1 example, got {n}; give every model some data")
    gen = torch.Generator().manual_seed(order_seed(seed))
    s = int(settings.max_shift)
    steps: list[Step] = []
    for _ in range(int(settings.epochs)):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, int(settings.batch_size)):
            idx = perm[start : start + int(settings.batch_size)]
            flip = shifts = None
            if settings.augmentation == "flip_shift":
                flip = torch.rand(idx.shape[0], generator=gen) < 0.5
            if settings.augmentation in ("flip_shift", "shift"):
                shifts = torch.randint(-s, s + 1, (idx.shape[0], 2), generator=gen)
            steps.append((idx, flip, shifts))
    return steps


def augment_batch(x: Any, flip: Any, shifts: Any, *, max_shift: int) -> Any:
    """Apply per-example flips (``flip`` (b,) bool) and translations (``shifts`` (b, 2) = (dx, dy), zero fill)
    to an image batch (b, H, W) or (b, C, H, W). Vectorised; the same function serves both training paths."""
    if flip is None and shifts is None:
        return x
    if x.dim() < 3:
        raise InputError(
            f"augmentation: expected image batches (N, H, W) or (N, C, H, W), got shape {tuple(x.shape)}; "
            "set augmentation = none for tabular data"
        )
    if flip is not None:
        flip = flip.to(x.device)
        x = torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
    if shifts is not None and max_shift > 0:
        b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        s, dev = int(max_shift), x.device
        shifts = shifts.to(dev)
        xp = F.pad(x.reshape(b, -1, h, w), (s, s, s, s))
        rows = (s - shifts[:, 1]).view(b, 1) + torch.arange(h, device=dev).view(1, h)  # out[i] = x[i - dy]
        cols = (s - shifts[:, 0]).view(b, 1) + torch.arange(w, device=dev).view(1, w)
        c = xp.shape[1]
        out = xp[
            torch.arange(b, device=dev).view(b, 1, 1, 1),
            torch.arange(c, device=dev).view(1, c, 1, 1),
            rows.view(b, 1, h, 1),
            cols.view(b, 1, 1, w),
        ]
        x = out.reshape(x.shape)
    return x


def lr_at(settings: TrainSettings, step: int, total: int) -> float:
    """Learning rate of ``step`` (0-based) out of ``total`` steps (python float, shared by both paths)."""
    if settings.schedule == "cosine":
        return float(settings.lr) * 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1)))
    return float(settings.lr)


def is_stackable(module: Any) -> bool:
    """Whether copies of ``module`` can be trained as one stacked model (no buffers such as batch-norm stats)."""
    return not any(True for _ in module.buffers())


def _build(factory: Callable[[], Any], seed: int) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed(seed))
        model = factory()
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model: the factory returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def _prepare(x: Any, mu: Any, sd: Any) -> Any:
    return x if mu is None else (x - mu) / sd


# -- one by one -----------------------------------------------------------------------------------------


def train_one(
    factory: Callable[[], Any],
    X: Any,
    y: Any,
    *,
    seed: int,
    settings: TrainSettings,
    standardize: tuple[Any, Any] | None = None,
    device: Any = "cpu",
) -> Any:
    """Train one model the ordinary way (``torch.optim``, one batch after another).

    ``X`` float32 tensor (n, ...), ``y`` int64 tensor (n,); ``standardize = (mu, sd)`` float32 tensors
    applied to each batch as ``(x - mu) / sd``. Returns the module in eval mode with ``training_info_``,
    on the CPU. ``device``: where it trains (a ``torch.device``; the data, the model and the batches are
    moved there; batch order and augmentation draws are made on the CPU, so they do not depend on it).
    The global torch RNG is left as it was.
    """
    dev = torch.device(device)
    model = _fast_layout(_build(factory, seed).to(dev), dev)
    X, y = X.to(dev), y.to(dev)
    mu, sd = (standardize[0].to(dev), standardize[1].to(dev)) if standardize is not None else (None, None)
    steps = batch_plan(int(X.shape[0]), settings, seed)
    if settings.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                              weight_decay=settings.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=ADAM_BETAS, eps=ADAM_EPS,
                               weight_decay=settings.weight_decay)
    model.train()
    last = float("nan")
    with torch.random.fork_rng(devices=_rng_devices(dev)):
        torch.manual_seed(dropout_seed(seed))
        for t, (idx, flip, shifts) in enumerate(steps):
            idx = idx.to(dev)
            for group in opt.param_groups:
                group["lr"] = lr_at(settings, t, len(steps))
            xb = augment_batch(_prepare(X[idx], mu, sd), flip, shifts, max_shift=settings.max_shift)
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=float(settings.label_smoothing))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = float(loss.detach())
    if not math.isfinite(last):
        raise TrainingError(f"model seed {seed}: the training loss became {last}; lower lr or check the inputs")
    model.eval().to("cpu").to(memory_format=torch.contiguous_format)
    model.training_info_ = {"mode": "one_by_one", "seed": int(seed), "n_train": int(X.shape[0]),
                            "steps": len(steps), "final_batch_loss": last, "device": str(dev)}
    return model


def _fast_layout(model: Any, dev: Any) -> Any:
    """A convolutional model on the CPU trains in the channels-last memory layout: the same network and the
    same arithmetic up to float rounding, ~1.4x faster per step on a CPU (oneDNN's max-pooling and
    convolutions are vectorised over channels in that layout; measured on miaudit's ``small_cnn``: 12.0 ->
    8.3 ms per batch of 64 on one thread). Parameters go back to the ordinary layout after training."""
    if dev.type == "cpu" and has_conv(model):
        return model.to(memory_format=torch.channels_last)
    return model


def has_conv(module: Any) -> bool:
    """Whether ``module`` has a convolution layer (any ``torch.nn.ConvNd``)."""
    return any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in module.modules())


def _rng_devices(dev: Any) -> list[int]:
    """The CUDA devices whose RNG a training run on ``dev`` draws from (restored afterwards)."""
    return [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []


# -- stacked --------------------------------------------------------------------------------------------


def _pack_plans(plans: Sequence[list[Step]], subsets: Sequence[np.ndarray], batch_size: int) -> dict[str, Any]:
    """Pad every model's steps to (G, T, B) tensors of global indices, weights, flips and shifts."""
    g_count = len(plans)
    t_max = max(len(p) for p in plans)
    idx = torch.zeros((g_count, t_max, batch_size), dtype=torch.long)
    weight = torch.zeros((g_count, t_max, batch_size), dtype=torch.float32)
    flip = torch.zeros((g_count, t_max, batch_size), dtype=torch.bool)
    shifts = torch.zeros((g_count, t_max, batch_size, 2), dtype=torch.long)
    has_flip = has_shift = False
    for g, (plan, subset) in enumerate(zip(plans, subsets)):
        sub = torch.from_numpy(np.asarray(subset, dtype=np.int64))
        for t, (i, f, s) in enumerate(plan):
            b = i.shape[0]
            idx[g, t, :b] = sub[i]
            weight[g, t, :b] = 1.0 / b
            if f is not None:
                flip[g, t, :b] = f
                has_flip = True
            if s is not None:
                shifts[g, t, :b] = s
                has_shift = True
    return {"idx": idx, "weight": weight, "flip": flip if has_flip else None,
            "shifts": shifts if has_shift else None, "n_steps": [len(p) for p in plans]}


def _bcast(v: Any, like: Any) -> Any:
    return v.view(-1, *([1] * (like.dim() - 1)))


def train_stacked(
    factory: Callable[[], Any],
    X: Any,
    y: Any,
    masks: np.ndarray,
    seeds: Sequence[int],
    *,
    settings: TrainSettings,
    standardize: tuple[Any, Any] | None = None,
    device: Any = "cpu",
) -> list[Any]:
    """Train ``G = len(seeds)`` models at once; model g on the rows ``masks[g]`` of ``(X, y)`` with ``seeds[g]``.

    ``X`` float32 tensor (N, ...), ``y`` int64 tensor (N,), ``masks`` bool (G, N); ``standardize = (mu, sd)``
    float32 tensors of shape (G, F), model g's batches mapped to ``(x - mu[g]) / sd[g]``. Returns G modules in
    eval mode on the CPU, each equal (up to rounding) to ``train_one(factory, X[masks[g]], y[masks[g]],
    seed=seeds[g])``. ``device``: where the stacked parameters, the data and every step live (a GPU is
    where stacking pays most); batch plans are drawn on the CPU, so they do not depend on it.
    """
    func = torch.func
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 2 or masks.shape[0] != len(seeds) or masks.shape[1] != X.shape[0]:
        raise InputError(
            f"masks: expected a bool array of shape ({len(seeds)}, {X.shape[0]}) (models x examples), got shape "
            f"{masks.shape}; pass one membership row per seed"
        )
    subsets = [np.flatnonzero(m) for m in masks]
    for g, sub in enumerate(subsets):
        if sub.size == 0:
            raise InputError(f"masks[{g}]: model {g} (seed {seeds[g]}) has no training example; give it some data")
    models = [_build(factory, s) for s in seeds]
    if not is_stackable(models[0]):
        raise ConfigError("model: modules with buffers (e.g. BatchNorm) cannot be stacked; train them one by one")
    plans = [batch_plan(int(sub.size), settings, s) for sub, s in zip(subsets, seeds)]
    dev = torch.device(device)
    pack = {k: (v.to(dev) if isinstance(v, torch.Tensor) else v)
            for k, v in _pack_plans(plans, subsets, int(settings.batch_size)).items()}
    X, y = X.to(dev), y.to(dev)
    n_steps = pack["n_steps"]
    g_count, t_max = len(seeds), max(n_steps)
    names = [n for n, _ in models[0].named_parameters()]
    params, _ = func.stack_module_state([m.to(dev) for m in models])
    mlp_layers = _sequential_linear_layers(models[0])
    if mlp_layers is not None:
        # Built-in MLP: batched matrix products on weights stored transposed, (G, in, out), so every bmm
        # reads contiguous operands; element-wise optimiser steps do not care about the layout.
        params = {n: (params[n].transpose(1, 2) if params[n].dim() == 3 else params[n].unsqueeze(1))
                  .contiguous().detach().requires_grad_(True) for n in names}
        forward_all = _mlp_forward(mlp_layers)
    else:
        params = {n: params[n].detach().clone().requires_grad_(True) for n in names}
        base = copy.deepcopy(models[0]).to("meta")
        base.train()

        def forward(p: dict[str, Any], xb: Any) -> Any:
            return func.functional_call(base, p, (xb,))

        forward_all = torch.vmap(forward, in_dims=(0, 0), randomness="different")
    mu, sd = (standardize[0].to(dev), standardize[1].to(dev)) if standardize is not None else (None, None)
    state: dict[str, dict[str, Any]] = {n: {} for n in names}
    ls = float(settings.label_smoothing)
    last = torch.full((g_count,), float("nan"), device=dev)
    with torch.random.fork_rng(devices=_rng_devices(dev)):
        torch.manual_seed(dropout_seed(seeds[0]))
        for t in range(t_max):
            lr_list = [lr_at(settings, t, n) if t < n else 0.0 for n in n_steps]
            active = torch.tensor([t < n for n in n_steps], device=dev)
            lrs = torch.tensor(lr_list, dtype=torch.float32, device=dev)
            uniform_lr = lr_list[0] if all(t < n for n in n_steps) and len(set(lr_list)) == 1 else None
            idx, w = pack["idx"][:, t], pack["weight"][:, t]
            xb = X[idx]  # (G, B, ...)
            if mu is not None and sd is not None:
                xb = (xb - mu[:, None]) / sd[:, None]
            if pack["flip"] is not None or pack["shifts"] is not None:
                flat = xb.reshape(-1, *xb.shape[2:])
                f = None if pack["flip"] is None else pack["flip"][:, t].reshape(-1)
                s = None if pack["shifts"] is None else pack["shifts"][:, t].reshape(-1, 2)
                xb = augment_batch(flat, f, s, max_shift=settings.max_shift).reshape(xb.shape)
            logits = forward_all(params, xb)  # (G, B, C)
            losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[idx].reshape(-1), reduction="none",
                                     label_smoothing=ls).reshape(w.shape)
            per_model = (losses * w).sum(dim=1)
            grads = torch.autograd.grad(per_model.sum(), [params[n] for n in names])
            with torch.no_grad():
                last = torch.where(active, per_model.detach(), last)
                for n, grad in zip(names, grads):
                    _step(params[n], grad, state[n], settings, t, lrs, active, uniform_lr)
    if not bool(torch.isfinite(last).all()):
        bad = int(torch.nonzero(~torch.isfinite(last))[0, 0])
        raise TrainingError(f"model seed {seeds[bad]}: the training loss became {float(last[bad])}; lower lr")
    if mlp_layers is not None:
        params = {n: (params[n].transpose(1, 2) if "weight" in n else params[n].squeeze(1)) for n in names}
    for g, model in enumerate(models):
        model.to("cpu").load_state_dict({n: params[n][g].detach().to("cpu").clone() for n in names})
        model.eval()
        model.training_info_ = {"mode": "stacked", "seed": int(seeds[g]), "n_train": int(subsets[g].size),
                                "steps": int(n_steps[g]), "final_batch_loss": float(last[g]), "group_size": g_count,
                                "device": str(dev)}
    return models


def _step(p: Any, grad: Any, st: dict[str, Any], s: TrainSettings, t: int, lrs: Any, active: Any,
          uniform_lr: float | None) -> None:
    """One vectorised optimiser step on stacked parameter ``p`` (G, ...), in place, following
    ``torch.optim.SGD`` / ``torch.optim.Adam`` (single-tensor code path); inactive models are left untouched."""
    g = grad
    if s.weight_decay != 0:
        g = g.add(p, alpha=float(s.weight_decay))
    if uniform_lr is not None:  # every model active with the same learning rate: plain in-place updates
        _step_uniform(p, g, st, s, t, uniform_lr)
        return
    keep = _bcast(active, p)
    if s.optimizer == "sgd":
        if s.momentum != 0:
            if "buf" not in st:
                st["buf"] = torch.where(keep, g, torch.zeros_like(g))
            else:
                st["buf"] = torch.where(keep, st["buf"] * float(s.momentum) + g, st["buf"])
            g = st["buf"]
        p.copy_(torch.where(keep, p - _bcast(lrs, p) * g, p))
        return
    b1, b2 = ADAM_BETAS
    if "m" not in st:
        st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
    step = t + 1  # every active model has taken exactly t steps before this one
    st["m"] = torch.where(keep, st["m"].lerp(g, 1 - b1), st["m"])
    st["v"] = torch.where(keep, st["v"] * b2 + (1 - b2) * g * g, st["v"])
    bc1, bc2 = 1 - b1**step, 1 - b2**step
    denom = st["v"].sqrt() / math.sqrt(bc2) + ADAM_EPS
    p.copy_(torch.where(keep, p - _bcast(lrs / bc1, p) * st["m"] / denom, p))


def _step_uniform(p: Any, g: Any, st: dict[str, Any], s: TrainSettings, t: int, lr: float) -> None:
    """The same update as :func:`_step` when all models step with one learning rate (in place, fewer passes)."""
    if s.optimizer == "sgd":
        if s.momentum != 0:
            if "buf" not in st:
                st["buf"] = g.clone()
            else:
                st["buf"].mul_(float(s.momentum)).add_(g)
            g = st["buf"]
        p.add_(g, alpha=-lr)
        return
    b1, b2 = ADAM_BETAS
    if "m" not in st:
        st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
    step = t + 1
    st["m"].lerp_(g, 1 - b1)
    st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
    bc1, bc2 = 1 - b1**step, 1 - b2**step
    denom = (st["v"].sqrt() / math.sqrt(bc2)).add_(ADAM_EPS)
    p.addcdiv_(st["m"], denom, value=-lr / bc1)


def _sequential_linear_layers(model: Any) -> list[Any] | None:
    """The layers of a built-in :class:`~miaudit.models._nets.MLP` (Linear / ReLU / Dropout), else None."""
    from ..models._nets import MLP

    if type(model) is not MLP:
        return None
    layers = list(model.net)
    ok = (torch.nn.Linear, torch.nn.ReLU, torch.nn.Dropout)
    return layers if all(isinstance(m, ok) for m in layers) else None


def _mlp_forward(layers: list[Any]) -> Callable[[dict[str, Any], Any], Any]:
    """Forward of G stacked MLPs: ``h <- b + h @ W^T`` as one ``baddbmm`` per layer on (G, B, width)."""

    def forward(p: dict[str, Any], xb: Any) -> Any:
        h = xb.reshape(xb.shape[0], xb.shape[1], -1)
        for i, layer in enumerate(layers):
            if isinstance(layer, torch.nn.Linear):
                h = torch.baddbmm(p[f"net.{i}.bias"], h, p[f"net.{i}.weight"])
            elif isinstance(layer, torch.nn.ReLU):
                h = torch.relu(h)
            else:
                h = F.dropout(h, layer.p, training=True)
        return h

    return forward
