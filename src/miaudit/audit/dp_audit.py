"""``miaudit dp-audit CONFIG``: check a DP-SGD claim with canaries (docs/dp-audit.md).

The config has ``[data]``, ``[model]`` (``kind = "torch"``, the DP-SGD recipe: epochs, batch_size, lr, ...)
and ``[dp_audit]`` (:data:`DP_AUDIT_KEYS`). The claim (``claimed_epsilon`` at ``delta``, add/remove-one, the
relation Opacus' accountant bounds for Poisson sampling) fixes the noise multiplier through the accountant
(``opacus.accountants.utils.get_noise_multiplier``) unless ``noise_multiplier`` is given, in which case that
noise is trained and audited against the claim. Designs:

* ``runs``: R independent DP-SGD runs (stacked), each with the canary with probability 1/2; Clopper-Pearson
  bound at a threshold fixed before the runs (gradient canary: from the recipe's noise model; input canaries:
  chosen on the first half of the runs and certified on the second), and the Gaussian-DP bound (labelled).
  Gradient canaries: ``canaries_per_run`` canaries per run on isolated coordinates (first-layer weights of
  always-zero features, verified), exactly independent, pooled as R m trials; one per run where none exist.
* ``one_run``: one run with m canaries each included independently with probability 1/2; Steinke et al.'s
  bound on the guesses "in" for the top ``guesses / 2`` scores and "out" for the bottom ``guesses / 2``.

The claim is contradicted when the assumption-free bound of the design (Clopper-Pearson or one-run) exceeds
``claimed_epsilon``; with a correct DP-SGD that happens with probability at most ``1 - confidence``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ConfigError, InputError
from ..metrics import gdp_mu_from_epsilon
from ..metrics._intervals import cp_upper_one
from ..metrics.dp_bounds import (
    NEIGHBOURING_ADD_REMOVE,
    DpBound,
    cp_threshold_bound,
    epsilon_from_rates,
    gdp_bound,
    gdp_epsilon,
    one_run_from_scores,
)

__all__ = ["DP_AUDIT_KEYS", "DpAuditConfig", "load_dp_audit_config", "parse_dp_audit", "run_dp_audit"]

DP_AUDIT_KEYS = ("claimed_epsilon", "delta", "threat", "design", "runs", "canaries", "canaries_per_run", "guesses",
                 "noise_multiplier", "max_grad_norm", "accountant", "confidence", "canary", "init", "group_size",
                 "seed")
#: ``canaries_per_run = "auto"``: every isolated coordinate, at most this many
AUTO_CANARIES_CAP = 64
THREATS = ("input_canary", "whitebox", "gradient_canary")
DESIGNS = ("runs", "one_run")
CANARY_KINDS = ("mislabelled", "ood")
INITS = ("random", "fixed", "pretrained")
THREAT_TEXT = {
    "input_canary": "black-box final model; input canaries (score: minus the canary's loss)",
    "whitebox": "white-box final model and initial weights; input canaries (score: alignment of the parameter "
                "change with the canary's gradient at initialisation)",
    "gradient_canary": "every intermediate model observed; Dirac gradient canaries of norm max_grad_norm, Poisson-"
                       "sampled at the same rate as every example (score: sum over steps of the noisy update's "
                       "projection on the canary direction)",
}


@dataclass(frozen=True)
class DpAuditConfig:
    """The validated ``[dp_audit]`` table (see docs/config.md)."""

    claimed_epsilon: float
    delta: float = 1e-5
    threat: str = "gradient_canary"
    design: str = "runs"
    runs: int = 1000
    canaries: int = 1000
    canaries_per_run: int | str = "auto"
    guesses: int | None = None
    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    confidence: float = 0.95
    canary: str = "mislabelled"
    init: str = "random"
    group_size: int = 50
    seed: int = 0

    @property
    def n_guesses(self) -> int:
        g = self.guesses if self.guesses is not None else max(2, self.canaries // 10)
        return min(g, self.canaries)


def _num(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(float(v))


def _int(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int)


def parse_dp_audit(table: Any) -> DpAuditConfig:
    """Validate ``[dp_audit]``; one :class:`ConfigError` listing every problem (unknown keys included)."""
    if not isinstance(table, Mapping):
        raise ConfigError("[dp_audit]: missing or not a table; add a [dp_audit] section with claimed_epsilon "
                          "(see `miaudit config-help`)")
    problems: list[str] = []
    for key in table:
        if key not in DP_AUDIT_KEYS:
            problems.append(f"unknown key {key!r} (valid keys: {', '.join(DP_AUDIT_KEYS)})")
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "claimed_epsilon": (lambda v: _num(v) and v > 0, "a number > 0 such as 2.0"),
        "delta": (lambda v: _num(v) and 0 < v < 1, "a number in (0, 1) such as 1e-5"),
        "threat": (lambda v: v in THREATS, f"one of {', '.join(THREATS)}"),
        "design": (lambda v: v in DESIGNS, f"one of {', '.join(DESIGNS)}"),
        "runs": (lambda v: _int(v) and v >= 4, "an integer >= 4"),
        "canaries": (lambda v: _int(v) and v >= 2, "an integer >= 2"),
        "canaries_per_run": (lambda v: v == "auto" or (_int(v) and v >= 1), "\"auto\" or an integer >= 1"),
        "guesses": (lambda v: _int(v) and v >= 2, "an integer >= 2 (at most canaries)"),
        "noise_multiplier": (lambda v: _num(v) and v > 0, "a number > 0, or leave it out to derive it from the claim"),
        "max_grad_norm": (lambda v: _num(v) and v > 0, "a number > 0"),
        "accountant": (lambda v: v in ("rdp", "prv"), "'rdp' or 'prv'"),
        "confidence": (lambda v: _num(v) and 0.5 <= v < 1, "a number in [0.5, 1) such as 0.95"),
        "canary": (lambda v: v in CANARY_KINDS, f"one of {', '.join(CANARY_KINDS)}"),
        "init": (lambda v: v in INITS, f"one of {', '.join(INITS)}"),
        "group_size": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
        "seed": (lambda v: _int(v) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
    }
    if "claimed_epsilon" not in table:
        problems.append("claimed_epsilon: required (the epsilon the training claims, at delta)")
    for key, (ok, expected) in checks.items():
        if key in table and not ok(table[key]):
            problems.append(f"{key}: expected {expected}, got {table[key]!r}")
    design = table.get("design", "runs")
    if design == "runs" and "canaries" in table:
        problems.append("canaries: only for design = 'one_run'; the runs design has one canary (set runs)")
    if "canaries_per_run" in table and (design != "runs" or table.get("threat", "gradient_canary")
                                        != "gradient_canary"):
        problems.append("canaries_per_run: only for design = 'runs' with threat = 'gradient_canary' (isolated "
                        "gradient canaries); remove it")
    if design == "one_run" and "runs" in table:
        problems.append("runs: only for design = 'runs'; the one-run design trains once (set canaries)")
    if (_int(table.get("guesses")) and _int(table.get("canaries", 1000))
            and table["guesses"] > table.get("canaries", 1000)):
        problems.append(f"guesses: expected at most canaries ({table.get('canaries', 1000)}), got {table['guesses']}")
    if problems:
        raise ConfigError("[dp_audit] " + "; ".join(problems))
    kw = {k: table[k] for k in DP_AUDIT_KEYS if k in table}
    for k in ("claimed_epsilon", "delta", "noise_multiplier", "max_grad_norm", "confidence"):
        if k in kw:
            kw[k] = float(kw[k])
    return DpAuditConfig(**kw)


def load_dp_audit_config(path: str | Path, *, data_path: str | Path | None = None) -> tuple[Any, DpAuditConfig]:
    """Read CONFIG: ``[data]`` and ``[model]`` as in ``miaudit audit`` (checked by :mod:`miaudit.config`) and
    ``[dp_audit]``; every problem of both in one :class:`ConfigError`, before any data is loaded."""
    from ..config import AuditConfig, read_config_file

    p = Path(path)
    raw = read_config_file(p)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config {p}: expected a table of sections, got {type(raw).__name__}")
    rest = {k: v for k, v in raw.items() if k != "dp_audit"}
    problems: list[str] = []
    for key in rest:
        if key not in ("data", "model"):
            problems.append(f"section [{key}] is not used by dp-audit (sections: data, model, dp_audit)")
    model = rest.get("model")
    if not isinstance(model, Mapping) or model.get("kind") != "torch":
        problems.append("[model] kind: dp-audit trains DP-SGD with torch; set kind = \"torch\" and model = \"mlp\"")
    elif "dp" in model:
        problems.append("[model] dp: not used by dp-audit; the claim and the noise go in [dp_audit]")
    elif "train_fn" in model:
        problems.append("[model] train_fn: dp-audit runs its own DP-SGD loop (stacked); remove train_fn")
    dp_cfg: DpAuditConfig | None = None
    try:
        dp_cfg = parse_dp_audit(raw.get("dp_audit"))
    except ConfigError as exc:
        problems.append(str(exc))
    audit_cfg = None
    try:
        if data_path is not None:
            rest = {**rest, "data": {**dict(rest.get("data") or {}), "path": str(data_path)}}
        audit_cfg = AuditConfig.from_dict({k: v for k, v in rest.items() if k in ("data", "model")},
                                          base_dir=p.parent, source=p)
    except ConfigError as exc:
        problems.append(str(exc))
    if audit_cfg is not None and audit_cfg.model.kind == "torch":
        st = audit_cfg.model.build(n_classes=2).settings
        if (st.optimizer != "sgd" or st.schedule != "constant" or st.augmentation is not None
                or st.weight_decay != 0 or st.label_smoothing != 0):
            problems.append("[model]: dp-audit's DP-SGD supports optimizer = 'sgd', schedule = 'constant', no "
                            "augmentation, weight_decay = 0 and label_smoothing = 0; change those keys")
    if problems:
        raise ConfigError(f"config {p}: " + "; ".join(problems))
    assert dp_cfg is not None and audit_cfg is not None
    return audit_cfg, dp_cfg


# -- the audit --------------------------------------------------------------------------------------------


def accountant_setup(n_train: int, settings: Any, cfg: DpAuditConfig) -> dict[str, Any]:
    """Noise multiplier (from the claim, unless given), sample rate, steps and the accountant's epsilon of the
    noise actually trained, via :func:`miaudit.training.dp.privacy_guarantee` (Opacus)."""
    from ..training.dp import privacy_guarantee

    dp = {"delta": cfg.delta, "max_grad_norm": cfg.max_grad_norm, "accountant": cfg.accountant}
    claim = privacy_guarantee(n_train, settings=settings, dp={**dp, "epsilon": cfg.claimed_epsilon})
    if cfg.noise_multiplier is None:
        used = claim
    else:
        used = privacy_guarantee(n_train, settings=settings, dp={**dp, "noise_multiplier": cfg.noise_multiplier})
    out = {"noise_multiplier": used["noise_multiplier"], "claim_noise_multiplier": claim["noise_multiplier"],
           "accountant_epsilon": used["epsilon"], "accountant": cfg.accountant, "sample_rate": used["sample_rate"],
           "steps": used["steps"]}
    if used["sample_rate"] >= 1.0:  # full batch: T Gaussian mechanisms, exactly (sqrt(T) / sigma)-GDP
        mu = math.sqrt(used["steps"]) / used["noise_multiplier"]
        out["exact_gdp_mu"] = mu
        out["exact_epsilon"] = gdp_epsilon(mu, cfg.delta)
    return out


def _canaries(x: np.ndarray, y: np.ndarray, m: int, kind: str, n_classes: int, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train x, train y, canary x, canary y): mislabelled canaries are m training examples taken out of the
    data with their label moved to the next class; OOD canaries are uniform noise over the data's range with
    random labels."""
    if kind == "mislabelled":
        idx = rng.choice(x.shape[0], size=m, replace=False)
        keep = np.setdiff1d(np.arange(x.shape[0]), idx)
        return x[keep], y[keep], x[idx], (y[idx] + 1) % n_classes
    lo, hi = x.min(axis=0), x.max(axis=0)
    cx = (lo + (hi - lo) * rng.random((m, *x.shape[1:]))).astype(x.dtype)
    return x, y, cx, rng.integers(0, n_classes, size=m)


def gradient_canary_threshold(q: float, steps: int, sigma: float, c: float, n_side: int, *, delta: float,
                              confidence: float) -> tuple[float, float]:
    """Thresholds fixed before the runs for the gradient canary's sum statistic (Clopper-Pearson, Gaussian-DP).

    Model of the statistic: without the canary ``N(0, (sigma c)^2 T)`` (the data have no gradient on the
    canary's coordinate), with it ``c Binomial(T, q)`` plus that noise. The CP threshold maximises the bound
    expected with ``n_side`` runs per side; the GDP one is the midpoint of the two means. Only the recipe's
    settings enter, never the runs' outcomes, so the bound is valid whatever the true distribution."""
    from scipy import stats

    sd = sigma * math.sqrt(steps)
    ks = np.arange(steps + 1)
    pk = stats.binom.pmf(ks, steps, q)
    alpha = 1.0 - confidence
    best, best_t = -1.0, q * steps / 2.0
    for t in np.linspace(0.0, q * steps + 6.0 * sd, 400):
        fpr = float(stats.norm.sf(t / sd)) if sd > 0 else float(t <= 0)
        tpr = float((pk * (stats.norm.sf((t - ks) / sd) if sd > 0 else (ks >= t))).sum())
        e = epsilon_from_rates(cp_upper_one(int(round(fpr * n_side)), n_side, alpha / 2),
                               cp_upper_one(int(round((1 - tpr) * n_side)), n_side, alpha / 2), delta)
        if e > best:
            best, best_t = e, float(t)
    return best_t * c, q * steps / 2.0 * c


def _select_threshold(s_in: np.ndarray, s_out: np.ndarray, *, delta: float, confidence: float,
                      gdp: bool) -> float:
    """Threshold maximising the bound on a selection set of runs (certified on other runs)."""
    cand = np.unique(np.r_[s_in, s_out])
    cand = np.quantile(cand, np.linspace(0.0, 1.0, min(200, cand.size)))
    fn = gdp_bound if gdp else cp_threshold_bound
    vals = [fn(s_in, s_out, threshold=float(t), delta=delta, confidence=confidence).epsilon_lower for t in cand]
    return float(cand[int(np.argmax(vals))])


def _runs_bounds(scores: np.ndarray, inc: np.ndarray, *, cfg: DpAuditConfig, acc: dict[str, Any],
                 crosstalk: float | None) -> tuple[list[DpBound], dict[str, Any]]:
    """Bounds of the runs design. With m > 1 (isolated gradient canaries, exactly independent and each
    distributed as a one-canary audit) the R x m (run, canary) pairs are pooled as R m trials."""
    if scores.shape[1] > 1 and (cfg.threat != "gradient_canary" or crosstalk != 0.0):
        raise InputError("[dp_audit] canaries_per_run: several canaries per run need isolated gradient canaries")
    s, b = scores.reshape(-1), inc.reshape(-1)
    info: dict[str, Any] = {}
    if cfg.threat == "gradient_canary":
        t_cp, t_gdp = gradient_canary_threshold(acc["sample_rate"], acc["steps"], acc["noise_multiplier"],
                                                cfg.max_grad_norm, s.size // 2, delta=cfg.delta,
                                                confidence=cfg.confidence)
        cert = np.ones(s.size, dtype=bool)
        info["threshold_rule"] = "fixed before the runs from the recipe's noise model (all runs certify)"
    else:
        sel = np.arange(s.size) < s.size // 2
        cert = ~sel
        if b[sel].sum() < 1 or (~b[sel]).sum() < 1:
            raise InputError("[dp_audit] runs: too few runs to select a threshold; raise runs")
        t_cp = _select_threshold(s[sel & b], s[sel & ~b], delta=cfg.delta, confidence=cfg.confidence, gdp=False)
        t_gdp = _select_threshold(s[sel & b], s[sel & ~b], delta=cfg.delta, confidence=cfg.confidence, gdp=True)
        info["threshold_rule"] = "chosen on the first half of the runs, certified on the second half"
    s_in, s_out = s[cert & b], s[cert & ~b]
    if s_in.size < 1 or s_out.size < 1:
        raise InputError("[dp_audit] runs: every certifying run had the canary (or none did); raise runs")
    cp = cp_threshold_bound(s_in, s_out, threshold=t_cp, delta=cfg.delta, confidence=cfg.confidence)
    g = gdp_bound(s_in, s_out, threshold=t_gdp, delta=cfg.delta, confidence=cfg.confidence)
    exact = cfg.threat == "gradient_canary" and acc["sample_rate"] >= 1.0 and crosstalk == 0.0
    note = ("met if the training is what it claims: full-batch DP-SGD seen through a Dirac gradient canary with no "
            "data gradient on its coordinate is a composition of Gaussian mechanisms (exactly GDP)") if exact else \
        "not verified for this threat model and sampling rate: read as an estimate, not a certificate"
    g.details["assumption_status"] = note
    info.update({"runs_in": int(inc[:, 0].sum()), "runs_out": int((~inc[:, 0]).sum()),
                 "runs_certifying": int(cert.sum()) // scores.shape[1],
                 "trials_per_side": {"in": int(s_in.size), "out": int(s_out.size)}})
    return [cp, g], info


def _isolated_plan(recipe: Any, x: np.ndarray, yy: np.ndarray, cfg: DpAuditConfig) -> tuple[np.ndarray | None, str]:
    """The isolated gradient-canary coordinates for ``canaries_per_run`` (None: one canary on the old
    coordinate choice) and, when there are none or ``1`` was asked for, a sentence saying why."""
    import torch

    from ..training.dp_canary import _derived_seed, isolated_coordinates

    want = cfg.canaries_per_run
    if want == 1:
        return None, "canaries_per_run = 1"
    factory = recipe.factory(x)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_derived_seed(cfg.seed, 10))
        module = factory()
    coords, why = isolated_coordinates(module, torch.from_numpy(x), torch.from_numpy(yy))
    if want == "auto":
        if coords.size == 0:
            return None, f"fallback: no isolated coordinate ({why})"
        return coords[:AUTO_CANARIES_CAP], ""
    assert isinstance(want, int)
    if coords.size < want:
        raise InputError(f"[dp_audit] canaries_per_run: {want} requested but the model has only {coords.size} "
                         f"isolated coordinates{f' ({why})' if why else ''}; lower canaries_per_run or use \"auto\"")
    return coords[:want], ""


def _one_run_bound(scores: np.ndarray, inc: np.ndarray, cfg: DpAuditConfig) -> DpBound:
    k = cfg.n_guesses
    return one_run_from_scores(scores[0], inc[0], k_pos=k - k // 2, k_neg=k // 2, delta=cfg.delta,
                               confidence=cfg.confidence)


def training_arrays(audit_cfg: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """(recipe, features, labels 0..C-1, classes): the data as DP-SGD sees it, after the recipe's encoding
    and standardisation (an always-zero numeric column stays exactly zero: mean 0, std 0 -> 1)."""
    from ..data import load_dataset

    ds = load_dataset(audit_cfg.data.spec())
    y_all = np.asarray(ds.y)
    classes = np.unique(y_all)
    yy = np.searchsorted(classes, y_all).astype(np.int64)
    recipe = audit_cfg.model.build(n_classes=int(classes.size))
    x, enc = recipe._encode(ds.X)
    st = recipe._standardize(x, enc)
    if st is not None:
        x = (x - st[0]) / st[1]
    return recipe, np.ascontiguousarray(x, dtype=np.float32), yy, classes


def run_dp_audit(audit_cfg: Any, cfg: DpAuditConfig, *, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the canary runs and compute the bounds; returns the ``"dp_audit"`` record of results.json plus
    ``"_scores"`` / ``"_included"`` arrays (for the report and scores file)."""
    from ..training.dp_canary import DpSgdSpec, canary_runs, initial_weights

    say = log or (lambda _m: None)
    started = time.monotonic()
    recipe, x, yy, classes = training_arrays(audit_cfg)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    m = 1 if cfg.design == "runs" else cfg.canaries
    coords, isolated, isolation_note = None, False, ""
    if cfg.design == "runs" and cfg.threat == "gradient_canary":
        coords, isolation_note = _isolated_plan(recipe, x, yy, cfg)
        isolated = coords is not None
        m = 1 if coords is None else int(coords.size)
        say(f"gradient canaries: {m} per run on isolated coordinates (first-layer weights of always-zero "
            "features; exactly independent, pooled)" if isolated else
            f"gradient canaries: 1 per run ({isolation_note})")
    cx = cy = None
    if cfg.threat != "gradient_canary":
        if cfg.canary == "mislabelled" and m >= x.shape[0]:
            raise InputError(f"[dp_audit] canaries: {m} mislabelled canaries need more than the {x.shape[0]} examples")
        x, yy, cx, cy = _canaries(x, yy, m, cfg.canary, int(classes.size), rng)
    settings = recipe.settings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"opacus.*")
        acc = accountant_setup(int(x.shape[0]), settings, cfg)
    spec = DpSgdSpec(sample_rate=acc["sample_rate"], steps=acc["steps"], noise_multiplier=acc["noise_multiplier"],
                     max_grad_norm=cfg.max_grad_norm, lr=float(settings.lr), momentum=float(settings.momentum))
    n_runs = cfg.runs if cfg.design == "runs" else 1
    inc = rng.random((n_runs, m)) < 0.5
    say(f"training {n_runs} DP-SGD run(s), {m} canary(ies) each, {acc['steps']} steps, sample rate "
        f"{acc['sample_rate']:.3g}, noise multiplier {acc['noise_multiplier']:.4g}")
    factory = recipe.factory(x)
    import torch

    init = initial_weights(factory, torch.from_numpy(x), torch.from_numpy(yy), cfg.init, seed=cfg.seed)
    res = canary_runs(factory, torch.from_numpy(x), torch.from_numpy(yy), spec=spec, threat=cfg.threat, init=init,
                      included=inc, seed=cfg.seed, canary_x=None if cx is None else torch.from_numpy(cx),
                      canary_y=None if cy is None else torch.from_numpy(cy), group_size=cfg.group_size,
                      on_group=lambda done, total: say(f"  {done}/{total} runs"), coords=coords)
    if cfg.design == "runs":
        bounds, info = _runs_bounds(res.scores, inc, cfg=cfg, acc=acc, crosstalk=res.crosstalk)
    else:
        bounds, info = [_one_run_bound(res.scores, inc, cfg)], {"canaries_in": int(inc.sum())}
    decisive = [bd for bd in bounds if bd.assumption is None]
    contradicted = any(bd.epsilon_lower > cfg.claimed_epsilon for bd in decisive)
    record: dict[str, Any] = {
        "claimed_epsilon": cfg.claimed_epsilon,
        "accountant_epsilon": acc["accountant_epsilon"],
        "delta": cfg.delta,
        "noise_multiplier": acc["noise_multiplier"],
        "claim_noise_multiplier": acc["claim_noise_multiplier"],
        "noise_source": "config" if cfg.noise_multiplier is not None else "accountant (from the claim)",
        "accountant": acc["accountant"],
        "sample_rate": acc["sample_rate"],
        "steps": acc["steps"],
        "max_grad_norm": cfg.max_grad_norm,
        "neighbouring": NEIGHBOURING_ADD_REMOVE,
        "neighbouring_text": "one canary added or removed (add/remove-one), as the accountant bounds",
        "threat": cfg.threat,
        "threat_text": THREAT_TEXT[cfg.threat],
        "canary": cfg.canary if cfg.threat != "gradient_canary" else "dirac_gradient",
        "design": cfg.design,
        "init": cfg.init,
        "runs": n_runs,
        "canaries": m,
        "canaries_per_run": m if cfg.design == "runs" else None,
        "isolated": isolated,
        "isolation_note": isolation_note or None,
        "guesses": cfg.n_guesses if cfg.design == "one_run" else None,
        "n_train": int(x.shape[0]),
        "confidence": cfg.confidence,
        "bounds": {bd.method: bd.to_dict() for bd in bounds},
        "decided_by": [bd.method for bd in decisive],
        "claim_contradicted": bool(contradicted),
        "crosstalk": res.crosstalk,
        "seed": cfg.seed,
        "seconds": round(time.monotonic() - started, 2),
        **info,
    }
    for k in ("exact_gdp_mu", "exact_epsilon"):
        if k in acc:
            record[k] = acc[k]
    record["claim_gdp_mu"] = gdp_mu_from_epsilon(cfg.claimed_epsilon, cfg.delta)
    record["_scores"] = res.scores
    record["_included"] = inc
    return record


def config_dict(cfg: DpAuditConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if v is not None}


def save_dp_audit(record: dict[str, Any], out: str | Path, *, title: str, config: DpAuditConfig) -> dict[str, Path]:
    """Write ``results.json`` (``{"dp_audit": ..., "config": ...}``), ``scores.csv`` (run, canary, included,
    score) and ``report.html`` into ``out``, each atomically."""
    import json

    from .._atomic import atomic_write
    from ..report._dp_audit import render_dp_audit

    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    scores, inc = record["_scores"], record["_included"]
    public = {k: v for k, v in record.items() if not k.startswith("_")}
    doc = {"dp_audit": public, "config": {"dp_audit": config_dict(config)}}
    paths = {"results": out / "results.json", "scores": out / "scores.csv", "report": out / "report.html"}
    rows = ["run,canary,included,score"]
    for r in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            rows.append(f"{r},{j},{int(inc[r, j])},{scores[r, j]:.9g}")
    atomic_write(paths["scores"], ("\n".join(rows) + "\n").encode())
    atomic_write(paths["report"], render_dp_audit(public, title=title).encode())
    atomic_write(paths["results"], (json.dumps(doc, indent=2, allow_nan=False) + "\n").encode())
    return paths
