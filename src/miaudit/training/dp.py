"""DP-SGD training with Opacus, one model at a time, with the accountant's epsilon recorded.

DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy") clips every per-example gradient to
L2 norm ``max_grad_norm``, adds Gaussian noise of standard deviation ``noise_multiplier * max_grad_norm`` to
their sum, and samples batches by Poisson sampling with rate ``q = batch_size / n``. The privacy accountant
(RDP, Mironov 2017; or PRV, Gopi et al. 2021) turns (q, noise multiplier, steps) into an (epsilon, delta)
guarantee. Opacus' ``PrivacyEngine.make_private_with_epsilon`` picks the noise multiplier that reaches a
target epsilon after ``epochs`` epochs.

An audit's empirical epsilon lower bound (Jagielski et al. 2020) must never exceed the accountant's epsilon:
the two side by side are the soundness check of both the training and the audit.

Stacking does not apply (per-example clipping is Opacus' job); DP models train one by one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import ConfigError, TrainingError
from .._imports import import_optional
from .stacked import TrainSettings, _build, _prepare, augment_batch, dropout_seed, lr_at

torch = import_optional("torch", "torch")
F = torch.nn.functional

__all__ = ["DP_KEYS", "ACCOUNTANTS", "check_dp", "train_dp", "dp_info", "privacy_guarantee"]

#: Accepted keys of a recipe's ``dp`` table.
DP_KEYS = ("epsilon", "delta", "noise_multiplier", "max_grad_norm", "accountant")
ACCOUNTANTS = ("rdp", "prv")


def _required_dp(dp: Mapping[str, Any] | None) -> dict[str, Any]:
    """:func:`check_dp` for callers that need DP settings: ``None`` is a :class:`ConfigError` too."""
    cfg = check_dp(dp)
    if cfg is None:
        raise ConfigError("model.dp: expected a table with epsilon or noise_multiplier, got None; "
                          "pass e.g. dp={'epsilon': 8.0}")
    return cfg


def _finite_positive(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def check_dp(dp: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Validate and normalise a ``dp`` table; :class:`ConfigError` listing every problem at once.

    Either ``{"epsilon": e, "delta": d, "max_grad_norm": c}`` (noise calibrated to reach epsilon e at delta d)
    or ``{"noise_multiplier": s, "max_grad_norm": c, "delta": d}`` (epsilon reported by the accountant at d).
    ``delta`` defaults to 1e-5, ``max_grad_norm`` to 1.0, ``accountant`` to ``"rdp"``.
    """
    if dp is None:
        return None
    if not isinstance(dp, Mapping):
        raise ConfigError(f"model.dp: expected a table with epsilon or noise_multiplier, got {type(dp).__name__}")
    problems = []
    unknown = sorted(set(dp) - set(DP_KEYS))
    if unknown:
        problems.append(f"unknown key {unknown[0]!r} (valid keys: {', '.join(DP_KEYS)})")
    out = {"delta": 1e-5, "max_grad_norm": 1.0, "accountant": "rdp", **dict(dp)}
    has_eps = out.get("epsilon") is not None
    has_sigma = out.get("noise_multiplier") is not None
    if has_eps == has_sigma:
        problems.append("give exactly one of epsilon (target) or noise_multiplier")
    if has_eps and not _finite_positive(out["epsilon"]):
        problems.append(f"epsilon: expected a finite number > 0, got {out['epsilon']!r} (omit dp for no DP)")
    if has_sigma and not _finite_positive(out["noise_multiplier"]):
        problems.append(f"noise_multiplier: expected a number > 0, got {out['noise_multiplier']!r}")
    if not _finite_positive(out["max_grad_norm"]):
        problems.append(f"max_grad_norm: expected a number > 0, got {out['max_grad_norm']!r}")
    if not (_finite_positive(out["delta"]) and out["delta"] < 1):
        problems.append(f"delta: expected a number in (0, 1), got {out['delta']!r}")
    if out["accountant"] not in ACCOUNTANTS:
        problems.append(f"accountant: expected one of {', '.join(ACCOUNTANTS)}, got {out['accountant']!r}")
    if problems:
        raise ConfigError("model.dp: " + "; ".join(problems))
    return {k: (float(v) if k not in ("accountant",) else v) for k, v in out.items() if v is not None}


def train_dp(
    factory: Callable[[], Any],
    X: Any,
    y: Any,
    *,
    seed: int,
    settings: TrainSettings,
    dp: Mapping[str, Any],
    standardize: tuple[Any, Any] | None = None,
) -> Any:
    """Train one model with DP-SGD (Opacus, Poisson sampling, flat clipping) and record the privacy spent.

    Returns the plain module (unwrapped from Opacus) in eval mode; ``module.training_info_["dp"]`` holds
    ``{"epsilon", "delta", "noise_multiplier", "max_grad_norm", "accountant", "sample_rate", "steps"}`` where
    ``epsilon`` is the accountant's epsilon after training. The global torch RNG is left as it was.
    """
    opacus = import_optional("opacus", "dp")
    cfg = _required_dp(dp)
    n = int(X.shape[0])
    model = _build(factory, seed)
    mu, sd = standardize if standardize is not None else (None, None)
    xs = _prepare(X, mu, sd)
    dataset = torch.utils.data.TensorDataset(xs, y)
    batch = min(int(settings.batch_size), n)
    if settings.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                              weight_decay=settings.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"opacus.*")
        warnings.filterwarnings("ignore", message=r".*(secure_mode|Secure RNG|full_backward_hook).*")
        torch.manual_seed(dropout_seed(seed))
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True)
        engine = opacus.PrivacyEngine(accountant=cfg["accountant"])
        common = dict(module=model, optimizer=opt, data_loader=loader, max_grad_norm=cfg["max_grad_norm"],
                      poisson_sampling=True)
        try:
            if "epsilon" in cfg:
                pmodel, popt, ploader = engine.make_private_with_epsilon(
                    **common, target_epsilon=cfg["epsilon"], target_delta=cfg["delta"], epochs=int(settings.epochs))
            else:
                pmodel, popt, ploader = engine.make_private(**common, noise_multiplier=cfg["noise_multiplier"])
        except ValueError as exc:
            raise ConfigError(f"model.dp: Opacus cannot set up DP-SGD ({exc}); raise epsilon or check the model") from None
        total = int(settings.epochs) * max(1, len(ploader))
        t = 0
        gen = torch.Generator().manual_seed(dropout_seed(seed) + 1)
        pmodel.train()
        last = float("nan")
        for _ in range(int(settings.epochs)):
            for xb, yb in ploader:
                for group in popt.param_groups:
                    group["lr"] = lr_at(settings, t, total)
                t += 1
                if xb.shape[0] == 0:  # an empty Poisson batch: no step (accounting still counts it)
                    continue
                if settings.augmentation is not None:
                    b = xb.shape[0]
                    s = int(settings.max_shift)
                    flip = torch.rand(b, generator=gen) < 0.5 if settings.augmentation == "flip_shift" else None
                    shifts = torch.randint(-s, s + 1, (b, 2), generator=gen)
                    xb = augment_batch(xb, flip, shifts, max_shift=s)
                loss = F.cross_entropy(pmodel(xb), yb, label_smoothing=float(settings.label_smoothing))
                popt.zero_grad(set_to_none=True)
                loss.backward()
                popt.step()
                last = float(loss.detach())
        epsilon = float(engine.accountant.get_epsilon(delta=cfg["delta"]))
    if not math.isfinite(last):
        raise TrainingError(f"model seed {seed}: the DP-SGD loss became {last}; lower lr or raise max_grad_norm")
    module = _strip_opacus(pmodel)
    module.eval()
    module.training_info_ = {
        "mode": "dp",
        "seed": int(seed),
        "n_train": n,
        "steps": t,
        "final_batch_loss": last,
        "dp": {
            "epsilon": epsilon,
            "target_epsilon": cfg.get("epsilon"),
            "delta": cfg["delta"],
            "noise_multiplier": float(popt.noise_multiplier),
            "max_grad_norm": cfg["max_grad_norm"],
            "accountant": cfg["accountant"],
            "sample_rate": float(1.0 / len(ploader)) if len(ploader) else None,
            "steps": t,
        },
    }
    return module


def _strip_opacus(pmodel: Any) -> Any:
    """Detach Opacus from a trained model: remove its hooks and per-sample gradients; return the plain module."""
    if hasattr(pmodel, "_close"):
        pmodel._close()  # removes hooks and grad_sample attributes
    module = pmodel._module if hasattr(pmodel, "_module") else pmodel
    for p in module.parameters():
        for attr in ("grad_sample", "_forward_counter", "_current_grad_sample", "summed_grad"):
            if hasattr(p, attr):
                delattr(p, attr)
        p.grad = None
    return module


def privacy_guarantee(n_train: int, *, settings: TrainSettings, dp: Mapping[str, Any]) -> dict[str, Any]:
    """The accountant's guarantee of :func:`train_dp` on ``n_train`` examples, computed without training.

    Same calibration as ``PrivacyEngine.make_private_with_epsilon`` (``get_noise_multiplier``) and the same
    accounting as a run: Poisson sampling rate ``q = 1 / ceil(n / batch_size)`` for ``epochs / q`` steps.
    Returns ``{"epsilon", "delta", "noise_multiplier", "max_grad_norm", "accountant", "sample_rate",
    "steps"}`` -- what the pipeline puts in ``game["dp"]`` when models are trained in other processes.
    """
    import_optional("opacus", "dp")
    from opacus.accountants import create_accountant
    from opacus.accountants.utils import get_noise_multiplier

    cfg = _required_dp(dp)
    n_batches = max(1, math.ceil(int(n_train) / min(int(settings.batch_size), int(n_train))))
    q = 1.0 / n_batches
    steps = int(settings.epochs) * n_batches
    with warnings.catch_warnings():  # "optimal order is the largest alpha": the bound stays valid (conservative)
        warnings.filterwarnings("ignore", module=r"opacus.*")
        if "epsilon" in cfg:
            sigma = float(get_noise_multiplier(target_epsilon=cfg["epsilon"], target_delta=cfg["delta"],
                                               sample_rate=q, epochs=int(settings.epochs),
                                               accountant=cfg["accountant"]))
        else:
            sigma = float(cfg["noise_multiplier"])
        acc = create_accountant(cfg["accountant"])
        acc.history = [(sigma, q, steps)]
        epsilon = float(acc.get_epsilon(delta=cfg["delta"]))
    return {"epsilon": epsilon, "delta": cfg["delta"], "noise_multiplier": sigma,
            "max_grad_norm": cfg["max_grad_norm"], "accountant": cfg["accountant"], "sample_rate": q, "steps": steps}


def dp_info(model: Any) -> dict[str, Any] | None:
    """The DP record of a model trained by :func:`train_dp` (``None`` for non-DP models): the fields the
    pipeline puts in ``game["dp"]``: ``epsilon`` (accountant), ``delta``, ``noise_multiplier``, ``max_grad_norm``."""
    info = getattr(model, "training_info_", None)
    if not isinstance(info, dict):
        return None
    dp = info.get("dp")
    return dict(dp) if isinstance(dp, dict) else None
