"""DP claim audits on digits (``miaudit dp-audit``'s code path): honest claims, too little noise, black box.

Each scenario writes a dp-audit config and runs :func:`miaudit.audit.dp_audit.run_dp_audit` (what the CLI
runs), then prints one row: the claim, the noise trained (as a fraction of what the claim needs), the
accountant's epsilon, each bound with its ceiling, and whether the claim is contradicted.

Model: miaudit's MLP 64 -> 16 -> 10 on 500 digits (``max_examples = 500``), 2 epochs; gradient canaries with
full batches (batch_size = 500, sample rate 1) unless the scenario says otherwise. Gradient canaries in the
runs design use ``canaries_per_run = "auto"`` (the default: up to 64 isolated canaries per run, pooled as
runs x canaries independent trials) unless the scenario sets ``canaries_per_run = 1`` (``*_single``).

Usage::

    nice python benchmarks/bench_dp_audit.py [--only NAME ...] [--seeds N] [--out benchmarks/results/dp_audit_table.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from miaudit.audit.dp_audit import load_dp_audit_config, run_dp_audit

MODEL = """[data]
kind = "digits"
max_examples = 500
[model]
kind = "torch"
model = "mlp"
model_kwargs = {{ hidden = [{hidden}] }}
epochs = {epochs}
batch_size = {batch}
lr = {lr}
momentum = 0.0
"""

#: name -> (model settings, [dp_audit] table, noise as a fraction of the claim's; None: the claim's own)
SCENARIOS: dict[str, tuple[dict[str, object], str, float | None]] = {
    "honest_eps8_gc_1000": ({}, 'claimed_epsilon = 8.0\nruns = 1000\n', None),
    "honest_eps8_gc_1000_single": ({}, 'claimed_epsilon = 8.0\nruns = 1000\ncanaries_per_run = 1\n', None),
    "quarter_noise_eps1_gc_1000_single": ({}, 'claimed_epsilon = 1.0\nruns = 1000\ncanaries_per_run = 1\n', 0.25),
    "honest_eps8_gc_1000_prv": ({}, 'claimed_epsilon = 8.0\nruns = 1000\naccountant = "prv"\n', None),
    "honest_eps8_gc_4000": ({}, 'claimed_epsilon = 8.0\nruns = 4000\ngroup_size = 500\n', None),
    "quarter_noise_eps1_gc_1000": ({}, 'claimed_epsilon = 1.0\nruns = 1000\n', 0.25),
    "quarter_noise_eps1_gc_4000": ({}, 'claimed_epsilon = 1.0\nruns = 4000\ngroup_size = 500\n', 0.25),
    "honest_eps2_gc_1000": ({}, 'claimed_epsilon = 2.0\nruns = 1000\n', None),
    "honest_eps2_gc_10000": ({}, 'claimed_epsilon = 2.0\nruns = 10000\ngroup_size = 500\n', None),
    "half_noise_eps2_gc_1000": ({}, 'claimed_epsilon = 2.0\nruns = 1000\n', 0.5),
    "half_noise_eps2_gc_4000": ({}, 'claimed_epsilon = 2.0\nruns = 4000\ngroup_size = 500\n', 0.5),
    "half_noise_eps2_gc_60000": ({}, 'claimed_epsilon = 2.0\nruns = 60000\ngroup_size = 500\n', 0.5),
    "honest_eps8_gc_1000_q0.2": ({"batch": 100}, 'claimed_epsilon = 8.0\nruns = 1000\n', None),
    "honest_eps8_gc_one_run_1000": ({"hidden": 32}, 'claimed_epsilon = 8.0\ndesign = "one_run"\ncanaries = 1000\n'
                                    'guesses = 100\n', None),
    "honest_eps10_input_mislabelled_1000": ({"batch": 100, "epochs": 4, "lr": 1.0},
                                            'claimed_epsilon = 10.0\nthreat = "input_canary"\nruns = 1000\n', None),
    "honest_eps10_whitebox_1000": ({"batch": 100, "epochs": 4, "lr": 1.0},
                                   'claimed_epsilon = 10.0\nthreat = "whitebox"\nruns = 1000\n', None),
    "honest_eps10_input_mislabelled_fixed_1000": ({"batch": 100, "epochs": 4, "lr": 1.0},
                                                  'claimed_epsilon = 10.0\nthreat = "input_canary"\nruns = 1000\n'
                                                  'init = "fixed"\n', None),
    "honest_eps10_input_mislabelled_pretrained_1000": ({"batch": 100, "epochs": 4, "lr": 1.0},
                                                       'claimed_epsilon = 10.0\nthreat = "input_canary"\n'
                                                       'runs = 1000\ninit = "pretrained"\n', None),
    "honest_eps10_input_ood_pretrained_1000": ({"batch": 100, "epochs": 4, "lr": 1.0},
                                               'claimed_epsilon = 10.0\nthreat = "input_canary"\nruns = 1000\n'
                                               'init = "pretrained"\ncanary = "ood"\n', None),
    "honest_eps10_whitebox_pretrained_1000": ({"batch": 100, "epochs": 4, "lr": 1.0},
                                              'claimed_epsilon = 10.0\nthreat = "whitebox"\nruns = 1000\n'
                                              'init = "pretrained"\n', None),
}


def run(name: str, folder: Path, seed: int = 0) -> dict[str, object]:
    model, table, fraction = SCENARIOS[name]
    table += f"seed = {seed}\n"
    settings = {"hidden": 16, "epochs": 2, "batch": 500, "lr": 0.5, **model}
    text = MODEL.format(**settings) + "[dp_audit]\n" + table
    path = folder / f"{name}.toml"
    path.write_text(text)
    if fraction is not None:  # the claim's noise, then a fraction of it given explicitly
        audit_cfg, cfg = load_dp_audit_config(path)
        from miaudit.audit.dp_audit import accountant_setup
        from miaudit.training.torch_recipe import TorchRecipe

        recipe = audit_cfg.model.build(n_classes=10)
        assert isinstance(recipe, TorchRecipe)
        sigma = accountant_setup(500, recipe.settings, cfg)["noise_multiplier"]
        path.write_text(text + f"noise_multiplier = {sigma * fraction}\n")
    audit_cfg, cfg = load_dp_audit_config(path)
    t0 = time.perf_counter()
    rec = run_dp_audit(audit_cfg, cfg)
    rec["wall_s"] = time.perf_counter() - t0
    rec["name"] = name if seed == 0 else f"{name} (seed {seed})"
    rec["fraction"] = fraction
    return rec


def row(rec: dict[str, object]) -> str:
    bounds = rec["bounds"]
    assert isinstance(bounds, dict)
    cells = []
    for meth in ("clopper_pearson", "gaussian_dp", "one_run_steinke2023"):
        b = bounds.get(meth)
        cells.append("-" if b is None else f"{b['epsilon_lower']:.2f} (ceil {b['ceiling']:.2f})")
    frac = "claim's" if rec["fraction"] is None else f"{rec['fraction']:g} x"
    exact = rec.get("exact_epsilon")
    return (f"| {rec['name']} | {rec['claimed_epsilon']:g} | {frac} ({rec['noise_multiplier']:.3g}) | "
            f"{rec['accountant_epsilon']:.2f} | {'-' if exact is None else f'{exact:.2f}'} | {rec['sample_rate']:.2g} | "
            f"{rec['runs']} x {rec['canaries']}{' iso' if rec.get('isolated') else ''} | {_trials(rec)} | "
            f"{' | '.join(cells)} | "
            f"{'yes' if rec['claim_contradicted'] else 'no'} | {rec['wall_s']:.0f} |")


def _trials(rec: dict[str, object]) -> str:
    t = rec.get("trials_per_side")
    return f"{t['in']} / {t['out']}" if isinstance(t, dict) else "-"


HEADER = ("| scenario | claimed eps | noise (sigma) | accountant eps | exact eps | q | runs x canaries | trials in / out | "
          "CP bound | GDP bound (assumes GDP) | one-run bound | contradicted | s |\n" + "|---" * 13 + "|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="scenario names (default: all)")
    ap.add_argument("--seeds", type=int, default=1, help="repeat each scenario with seeds 0 .. N-1")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    names = args.only or list(SCENARIOS)
    lines = [HEADER]
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for seed in range(args.seeds):
                line = row(run(name, Path(tmp), seed))
                print(line, flush=True)
                lines.append(line)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
