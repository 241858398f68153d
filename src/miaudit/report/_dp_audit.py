"""The ``miaudit dp-audit`` report page: the claim's trade-off region, the Gaussian-DP curve, certified points.

Every user-provided string goes through jinja2's autoescape. The figure is the (FPR, TPR) plane on log-log
axes: the largest TPR the claimed (epsilon, delta) allows at each FPR (Kairouz et al. 2015), the mu-GDP curve
of the noise actually trained (exact for full-batch DP-SGD) or of the claim, and each bound's certified point
``(FPR upper bound, 1 - FNR upper bound)``.
"""

from __future__ import annotations

import math
from typing import Any

import jinja2
import numpy as np
from matplotlib.figure import Figure

from ..metrics import dp_tpr_bound, gdp_tradeoff_tpr
from ._plots import figure_to_data_uri

__all__ = ["render_dp_audit", "plot_dp_audit"]

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>miaudit dp-audit: {{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.bad{color:#b00;font-weight:bold}.ok{color:#070;font-weight:bold}small{color:#555}</style></head><body>
<h1>DP claim audit: {{ title }}</h1>
<p class="{{ 'bad' if rec.claim_contradicted else 'ok' }}">{{ verdict }}</p>
<table>
<tr><th>claimed</th><td>epsilon {{ fmt(rec.claimed_epsilon) }} at delta {{ rec.delta }} ({{ rec.neighbouring_text }})</td></tr>
<tr><th>trained noise</th><td>noise multiplier {{ fmt(rec.noise_multiplier) }} ({{ rec.noise_source }}); the claim needs
{{ fmt(rec.claim_noise_multiplier) }}; sample rate {{ fmt(rec.sample_rate) }}, {{ rec.steps }} steps, clipping {{ rec.max_grad_norm }}</td></tr>
<tr><th>accountant</th><td>{{ rec.accountant }}: epsilon {{ fmt(rec.accountant_epsilon) }} at delta {{ rec.delta }}
{% if rec.exact_epsilon is defined %}(exact for full batch: {{ fmt(rec.exact_epsilon) }}, mu = {{ fmt(rec.exact_gdp_mu) }}){% endif %}</td></tr>
<tr><th>threat model</th><td>{{ rec.threat }}: {{ rec.threat_text }}</td></tr>
<tr><th>design</th><td>{{ rec.design }}: {{ rec.runs }} run(s), {{ rec.canaries }} canary(ies){% if rec.guesses %}, {{ rec.guesses }} guesses{% endif %}
{% if rec.canaries_per_run %}<br><small>{{ rec.canaries_per_run }} gradient canary(ies) per run, {% if rec.isolated %}on isolated coordinates (first-layer weights of always-zero features, verified): exactly independent, pooled{% else %}not isolated ({{ rec.isolation_note }}){% endif %}{% if rec.trials_per_side %}; trials {{ rec.trials_per_side["in"] }} in / {{ rec.trials_per_side["out"] }} out{% endif %}</small>{% endif %}
{% if rec.threshold_rule is defined %}<br><small>threshold {{ rec.threshold_rule }}</small>{% endif %}</td></tr>
</table>
<h2>Bounds (confidence {{ rec.confidence }})</h2>
<table><tr><th>method</th><th>epsilon lower bound</th><th>ceiling of this sample size</th><th>assumption</th></tr>
{% for name, b in rec.bounds.items() %}<tr><td>{{ name }}</td><td>{{ fmt(b.epsilon_lower) }}</td><td>{{ fmt(b.ceiling) }}</td>
<td>{{ b.assumption or "none: valid for every (epsilon, delta)-DP training" }}{% if b.details.assumption_status %}<br><small>{{ b.details.assumption_status }}</small>{% endif %}</td></tr>
{% endfor %}</table>
<p><small>The claim is contradicted only by {{ rec.decided_by | join(", ") }} (no assumption). A bound at its ceiling
means "at least this": more runs or canaries could certify more.</small></p>
<img alt="trade-off curves" src="{{ figure }}">
</body></html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.3g}"
    return str(v)


def plot_dp_audit(rec: dict[str, Any]) -> Figure:
    """The claim's (epsilon, delta) trade-off region, the GDP curve and each bound's certified point."""
    fig = Figure(figsize=(5.5, 4.5), dpi=90)
    ax = fig.add_subplot(1, 1, 1)
    fpr = np.logspace(-5, 0, 300)
    ax.plot(fpr, dp_tpr_bound(fpr, rec["claimed_epsilon"], rec["delta"]), color="#1f4e79",
            label=f"claimed ({rec['claimed_epsilon']:.3g}, {rec['delta']:g})-DP region")
    mu = rec.get("exact_gdp_mu") or rec.get("claim_gdp_mu")
    if mu:
        ax.plot(fpr, gdp_tradeoff_tpr(fpr, mu), color="#27ae60", ls="--", label=f"{mu:.3g}-GDP curve")
    ax.plot(fpr, fpr, color="#999", lw=0.8, label="chance")
    decisive = [b for b in rec["bounds"].values() if b["assumption"] is None and b["epsilon_lower"]]
    if decisive:
        e = max(b["epsilon_lower"] for b in decisive)
        ax.plot(fpr, dp_tpr_bound(fpr, e, rec["delta"]), color="#c0392b", ls=":",
                label=f"certified: not ({e:.3g}, {rec['delta']:g})-DP below this")
    for i, (name, b) in enumerate(rec["bounds"].items()):
        d = b.get("details", {})
        if d.get("fpr_upper") is not None:
            ax.plot([d["fpr_upper"]], [max(1e-5, 1 - d["fnr_upper"])], "o", color=["#c0392b", "#8e44ad"][i % 2],
                    label=f"{name}: certified point")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(1e-5, 1.05)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def render_dp_audit(rec: dict[str, Any], *, title: str) -> str:
    """The HTML page of a ``"dp_audit"`` record (results.json)."""
    best = max((b["epsilon_lower"] or 0.0 for b in rec["bounds"].values() if b["assumption"] is None), default=0.0)
    if rec["claim_contradicted"]:
        verdict = (f"Claim contradicted: the audit certifies epsilon >= {best:.3g} > claimed {rec['claimed_epsilon']:.3g} "
                   f"(confidence {rec['confidence']}).")
    else:
        verdict = (f"Not contradicted: the audit certifies epsilon >= {best:.3g}, within the claimed "
                   f"{rec['claimed_epsilon']:.3g} (an audit can refute a claim, never prove it).")
    page = _ENV.from_string(_TEMPLATE)
    return page.render(rec=rec, title=title, verdict=verdict, fmt=_fmt, figure=figure_to_data_uri(plot_dp_audit(rec)))
