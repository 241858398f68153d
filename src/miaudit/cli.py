"""The ``miaudit`` command line. Thin: every command parses options, calls the Python API, prints.

Exit codes: 0 success; 1 a privacy budget (``--fail-above``) is exceeded or a run failed;
2 bad input or configuration (one line on stderr, no traceback).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ._errors import InputError, MiauditError, cli_option_names

app = typer.Typer(
    name="miaudit",
    help="Measure how much a trained model leaks about who was in its training set (membership inference).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out_console = Console()

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Directory for results.json, scores.csv and report.html.")]
AttackOpt = Annotated[
    list[str] | None,
    typer.Option("--attack", "-a", help="Attack to run (repeatable); default: every attack that can run. See `miaudit attacks`."),
]
FailOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-above",
        help="Privacy gate METRIC=VALUE (repeatable), e.g. tpr@0.001=0.01, auc=0.6, epsilon=1: exit 1 if any attack exceeds it.",
    ),
]
DeltaOpt = Annotated[float, typer.Option("--delta", help="delta of the empirical epsilon lower bound.")]
PriorOpt = Annotated[float, typer.Option("--member-prior", help="Member prior for the PPV figures.")]


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn miaudit's errors into one line on stderr and exit code 2 (input) or 1 (runtime)."""
    try:
        yield
    except InputError as exc:
        console.print(f"[bold red]error:[/] {_one_line(exc)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except MiauditError as exc:
        console.print(f"[bold red]error:[/] {_one_line(exc)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]; finished reference models are kept in the cache")
        raise typer.Exit(130) from None


def _one_line(exc: BaseException) -> str:
    from rich.markup import escape

    return escape(" ".join(str(exc).split()))


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _pct_ci(ci: Any) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f},{100 * ci[1]:.1f}]"


def print_summary(result: Any, *, title: str) -> None:
    """A short summary of every attack in the terminal (fits 80 columns), strongest first, and the verdict."""
    from rich import box

    from .metrics import n_needed_for_fpr

    fprs = result.fprs[:2]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("attack", no_wrap=True, max_width=16)
    table.add_column("AUC [95% CI]", justify="right", min_width=17)
    for f in fprs:
        table.add_column(f"TPR@{100 * f:g}% [CI]", justify="right", min_width=15)
    table.add_column("eps LB", justify="right")
    for name in result.ranking:
        m = result.metrics[name]
        row = [name, f"{m.auc:.3f} [{m.auc_ci[0]:.2f},{m.auc_ci[1]:.2f}]"]
        for f in fprs:
            t = m.at(f)
            row.append("n/a" if t.tpr is None else
                       f"{100 * t.tpr:.1f}% [{100 * t.target_ci_low:.1f},{100 * t.target_ci_high:.1f}]")
        row.append(f"{m.epsilon.value:.2f}")
        table.add_row(*row)
    out_console.print(table)
    for f in result.fprs:
        missing = [n for n in result.ranking if result.metrics[n].at(f).tpr is None]
        if missing:
            t = result.metrics[missing[0]].at(f)
            per = " per target" if t.n_strata > 1 else ""
            out_console.print(
                f"n/a: TPR at FPR {100 * f:g}% needs at least {n_needed_for_fpr(f)} non-members{per} "
                f"(have {t.n_nonmembers // max(1, t.n_strata)}); the figure is not reported rather than guessed."
            )
    g = result.game
    n_non = g.get("n_nonmembers")
    if n_non is not None:
        out_console.print(
            f"{g.get('n_members')} members / {n_non} non-members"
            + (f" pooled over {g['n_targets']} targets" if g.get("n_targets", 1) > 1 else "")
            + f"; train acc {_fmt(g.get('train_accuracy'))}, test acc {_fmt(g.get('test_accuracy'))}."
        )
    for name, reason in result.skipped.items():
        out_console.print(f"[dim]skipped {name}: {reason}[/]")
    for w in result.warnings:
        console.print(f"[bold yellow]warning:[/] {_one_line(w)}", highlight=False, soft_wrap=True)
    verdict = result.verdict()
    colour = "red" if verdict.leakage_detected else "green"
    out_console.print(f"[bold {colour}]verdict:[/] {_one_line(verdict.sentence)}", highlight=False, soft_wrap=True)


def _finish(result: Any, out: Path, budgets: list[Any], *, title: str, started: float) -> None:
    from .api import check_budget

    paths = result.save(out)
    print_summary(result, title=title)
    out_console.print(f"report: {paths['report']}  ({time.perf_counter() - started:.1f} s)")
    if budgets:
        violations = check_budget(result, budgets)
        if violations:
            for v in violations:
                console.print(f"[bold red]privacy budget exceeded:[/] {v}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        out_console.print("[green]privacy budget met[/]")


def _check_budgets(fail_above: list[str] | None, fprs: Any = None) -> list[Any]:
    """Parse every --fail-above (and check its FPR is computed) before any work: a typo fails fast with exit 2."""
    from .audit.budget import check_budget_fprs
    from .metrics import DEFAULT_FPRS

    return check_budget_fprs(fail_above or [], tuple(fprs) if fprs is not None else DEFAULT_FPRS)


def _settings(delta: float, member_prior: float, seed: int = 0) -> Any:
    from .metrics import AuditSettings

    return AuditSettings(delta=delta, member_prior=member_prior, seed=seed)


@app.command()
def demo(
    out: OutOpt = Path("miaudit-report"),
    seed: Annotated[int, typer.Option(help="Seed of the member/non-member draw and of training.")] = 0,
    model: Annotated[str, typer.Option(help="Target recipe: mlp, rf, logreg or gb (scikit-learn).")] = "mlp",
    references: Annotated[int, typer.Option("--references", "-k", help="Reference models per target (even, >= 2); the demo trains references + 2 models.")] = 8,
    jobs: Annotated[int | None, typer.Option(help="Parallel training processes (default: all cores).")] = None,
    attack: AttackOpt = None,
    fail_above: FailOpt = None,
    delta: DeltaOpt = 1e-5,
    member_prior: PriorOpt = 0.5,
) -> None:
    """Run a full audit on scikit-learn's embedded digits data and write a report."""
    started = time.perf_counter()
    with _errors():
        from .audit import run_demo
        from .training import rich_progress

        budgets = _check_budgets(fail_above)
        settings = _settings(delta, member_prior, seed)
        with rich_progress("training reference models", console=console) as progress:
            result = run_demo(
                model=model,
                seed=seed,
                n_references=references,
                jobs=jobs,
                run_dir=out / "cache",
                attacks=attack,
                settings=settings,
                progress=progress,
            )
        _finish(result, out, budgets, title=f"miaudit demo: digits, {model}, seed {seed}", started=started)


@app.command()
def score(
    bundle: Annotated[Path, typer.Argument(help="Signal bundle: .npz, or a CSV/parquet table of per-example outputs.")],
    out: OutOpt = Path("miaudit-report"),
    attack: AttackOpt = None,
    fail_above: FailOpt = None,
    label_column: Annotated[str, typer.Option(help="Table bundles: the label column (optional: without labels only label-free attacks run).")] = "label",
    member_column: Annotated[str, typer.Option(help="Table bundles: the membership column (optional).")] = "is_member",
    group_column: Annotated[str | None, typer.Option(help="Table bundles: a column to slice results by.")] = None,
    outputs: Annotated[str | None, typer.Option(help="Table bundles: the output columns in class order, comma-separated (p_cat,p_dog) or a pattern (p_*); default logit_0.. or prob_0...")] = None,
    outputs_kind: Annotated[str | None, typer.Option(help="Table bundles: what the output columns hold: logits, probs or scores (raw values used as given); inferred from logit_*/prob_* names.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for cross-fitting and threshold selection.")] = 0,
    delta: DeltaOpt = 1e-5,
    member_prior: PriorOpt = 0.5,
) -> None:
    """Score precomputed model outputs (a signal bundle) and write the same outputs as the demo."""
    started = time.perf_counter()
    with _errors(), cli_option_names():
        from .api import audit_bundle

        budgets = _check_budgets(fail_above)
        kwargs: dict[str, Any] = {"outputs": outputs, "outputs_kind": outputs_kind}
        if bundle.suffix.lower() != ".npz":
            kwargs |= {"label_column": label_column, "member_column": member_column, "group_column": group_column}
        with console.status("running attacks"):
            result = audit_bundle(
                str(bundle), attacks=attack, settings=_settings(delta, member_prior, seed), **kwargs
            )
        _finish(result, out, budgets, title=f"miaudit score: {bundle.name}", started=started)


@app.command()
def audit(
    config: Annotated[Path, typer.Argument(help="Audit config (TOML or YAML); see docs/config.md.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Override the config's output directory.")] = None,
    jobs: Annotated[int | None, typer.Option(help="Parallel training processes (default: all cores).")] = None,
    fail_above: FailOpt = None,
) -> None:
    """Run the full game: train K reference models with your recipe and evaluate each as a target."""
    started = time.perf_counter()
    with _errors():
        from .audit import run_audit
        from .config import load_config
        from .training import rich_progress

        cfg = load_config(config)
        budgets = _check_budgets(fail_above, cfg.metrics.fprs)
        out_dir = out if out is not None else Path(cfg.output.dir)
        with rich_progress("training models", console=console) as progress:
            result = run_audit(cfg, jobs=jobs, progress=progress)
        _finish(result, out_dir, budgets, title=f"miaudit audit: {config.name}", started=started)


@app.command()
def levers(
    config: Annotated[Path, typer.Argument(help="Levers config: an audit config plus a [levers] section (docs/levers.md).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Override the config's output directory.")] = None,
    jobs: Annotated[int | None, typer.Option(help="Parallel training processes (default: all cores).")] = None,
    budget: Annotated[
        str | None,
        typer.Option(help="Privacy budget METRIC=VALUE, e.g. tpr@0.001=0.005: the report names the settings that meet it."),
    ] = None,
) -> None:
    """Sweep training-set size, capacity, regularisation or DP-SGD and show how each moves the risk."""
    started = time.perf_counter()
    with _errors():
        import pandas as pd

        from .levers import run_levers
        from .training import rich_progress

        def on_point(info: dict[str, Any]) -> None:
            row = info["row"]
            levers_txt = ", ".join(f"{k[6:]}={v}" for k, v in row.items() if k.startswith("lever:"))
            risk = row.get("tpr@0.01")
            console.print(
                f"[{info['index']}/{info['total']}] {levers_txt} (seed {row.get('seed')}): "
                f"test acc {_fmt(row.get('test_accuracy'))}, TPR@1% {_fmt(risk)}, AUC {_fmt(row.get('auc'))}",
                highlight=False,
            )

        with rich_progress("training models", console=console, transient=True) as progress:
            result = run_levers(config, jobs=jobs, progress=progress, budget=budget, out_dir=out, on_point=on_point)
        out_dir = Path(result.meta["out_dir"])
        paths = result.save(out_dir)
        summary = result.summary()
        table = Table(title=f"miaudit levers: {config.name}", title_justify="left")
        show = [c for c in summary.columns if c.startswith("lever:")] + [
            c for c in ("test_accuracy", "generalisation_gap", "auc", "tpr@0.001", "tpr@0.01",
                        "epsilon_lower_bound", "accountant_epsilon", "pareto") if c in summary.columns
        ]
        for c in show:
            table.add_column(c.removeprefix("lever:"), justify="right")
        for _, row in summary[show].iterrows():
            table.add_row(*[_fmt(v) if isinstance(v, float) else str(v) for v in row])
        out_console.print(table)
        recs = result.recommendations()
        if budget:
            if len(recs):
                first = recs.iloc[0]
                txt = ", ".join(f"{c[6:]}={first[c]}" for c in recs.columns if c.startswith("lever:") and pd.notna(first[c]))
                out_console.print(f"[green]best setting within {budget}:[/] {txt} (test acc {_fmt(first['test_accuracy'])})")
            else:
                out_console.print(f"[red]no setting meets {budget}[/]")
        out_console.print(f"report: {paths['levers.html']}  ({time.perf_counter() - started:.1f} s)")


@app.command("attacks")
def list_attacks() -> None:
    """List the registered attacks and what each needs."""
    from .attacks import attack_class, available_attacks

    table = Table()
    table.add_column("attack")
    table.add_column("needs")
    table.add_column("description")
    for name in available_attacks():
        cls = attack_class(name)
        table.add_row(name, ", ".join(sorted(cls.requires)) or "-", cls.description or (cls.__doc__ or "").strip().split("\n")[0])
    out_console.print(table)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if ctx.invoked_subcommand is None and not version:
        out_console.print(ctx.get_help())
        raise typer.Exit(0)
    if version:
        from . import __version__

        out_console.print(f"miaudit {__version__}")
        raise typer.Exit(0)


def main() -> None:  # console script entry point
    try:
        app()
    except MiauditError as exc:  # pragma: no cover - commands already handle these
        console.print(f"[bold red]error:[/] {_one_line(exc)}", soft_wrap=True)
        sys.exit(2 if isinstance(exc, InputError) else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
