"""``miaudit demo``: the whole membership game on scikit-learn's embedded digits data.

1. Draw members and non-members at random (seeded) from the 1,797 digits: half of them train the
   target model, the other half are held out.
2. Train K reference models with the same recipe on balanced random halves of the same pool, so
   every example is IN for exactly K/2 of them (LiRA's design).
3. Compute the signals and run every attack, measure it, and return an :class:`AuditResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import InputError
from .api import AuditSettings, evaluate_bundle
from .data import SignalBundle, balanced_membership, draw_membership, load_dataset
from .report import AuditResult

__all__ = ["DEMO_MODELS", "run_demo"]

#: Built-in demo recipes: name -> (estimator import path, parameters).
DEMO_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    # Wide, lightly regularised MLP trained to zero training error: it memorises visibly.
    "mlp": (
        "sklearn.neural_network.MLPClassifier",
        {"hidden_layer_sizes": [256], "alpha": 1e-5, "max_iter": 200, "tol": 1e-6},
    ),
    "rf": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 100}),
    "logreg": ("sklearn.linear_model.LogisticRegression", {"C": 10.0, "max_iter": 2000}),
    "gb": ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 100}),
}


def demo_recipe(model: str) -> Any:
    from .training import SklearnRecipe

    if model not in DEMO_MODELS:
        raise InputError(f"--model {model!r}: expected one of {', '.join(DEMO_MODELS)}")
    estimator, params = DEMO_MODELS[model]
    return SklearnRecipe(estimator=estimator, params=params, preprocessing="auto", n_classes=10)


def run_demo(
    *,
    model: str = "mlp",
    seed: int = 0,
    n_references: int = 8,
    jobs: int | None = None,
    run_dir: str | Path | None = None,
    attacks: Sequence[str] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    progress: Callable[..., Any] | None = None,
) -> AuditResult:
    """Run the demo audit and return its result (nothing is written unless ``run_dir`` caches models).

    ``n_references = 0`` skips the reference models (population and trained attacks only).
    """
    from .training import train_models

    if n_references != 0 and (n_references < 2 or n_references % 2):
        raise InputError(
            f"--references {n_references}: expected 0 or an even number >= 2 "
            "(every example must be IN for exactly half of the reference models)"
        )
    if n_references and run_dir is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="miaudit-demo-") as tmp:
            return run_demo(model=model, seed=seed, n_references=n_references, jobs=jobs, run_dir=tmp,
                            attacks=attacks, settings=settings, progress=progress)
    recipe = demo_recipe(model)
    data = load_dataset({"kind": "digits"})
    X, y = data.X, data.y
    is_member = draw_membership(len(y), seed=seed)
    seq = np.random.SeedSequence(seed)
    target_seed, ref_seed = (int(s.generate_state(1)[0]) for s in seq.spawn(2))
    target = recipe.train(X[is_member], y[is_member], seed=target_seed)
    target_logits = recipe.predict_logits(target, X)

    ref_logits = ref_is_member = None
    if n_references:
        ref_is_member = balanced_membership(len(y), n_references, seed=ref_seed)
        ref_seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(ref_seed).spawn(n_references)]
        trained = train_models(
            recipe,
            X,
            y,
            ref_is_member,
            seeds=ref_seeds,
            run_dir=Path(run_dir),
            jobs=jobs,
            progress=progress,
        )
        ref_logits = trained.logits

    bundle = SignalBundle.from_arrays(
        labels=y,
        target_logits=target_logits,
        is_member=is_member,
        ref_logits=ref_logits,
        ref_is_member=ref_is_member,
    )
    game = {
        "source": "demo",
        "dataset": data.name,
        "model": "{estimator} {params}".format(**recipe.spec()),
        "seed": seed,
    }
    return evaluate_bundle(bundle, attacks=attacks, settings=settings, game=game)
