"""The ``miaudit`` command line. Thin: every command parses options, calls the Python API, prints.

Exit codes (also in ``miaudit --help`` and the README):

* 0: success (and every ``--fail-above`` budget met);
* 1: a privacy budget (``--fail-above``) is exceeded;
* 2: bad input or configuration, including an unusable ``--out`` (one line on stderr, nothing written);
* 3: miaudit failed at run time (a model did not train, a missing optional dependency, ...);
* 4: an unexpected crash, a bug in miaudit (one line; the traceback with ``--debug`` or ``MIAUDIT_DEBUG=1``);
* 130: interrupted (Ctrl-C).

Everything that can be checked without training or scoring (options, budgets, the config, ``--out``) is
checked first, so a typo fails in a second with exit 2 instead of after the whole run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ._errors import InputError, MiauditError, cli_option_names
from ._timing import RunClock

EXIT_OK, EXIT_BUDGET, EXIT_INPUT, EXIT_RUNTIME, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 a privacy budget (--fail-above) is exceeded; 2 bad input or configuration "
    "(one line on stderr, nothing written); 3 a training or runtime failure; 4 an unexpected crash (a bug: "
    "rerun with --debug or MIAUDIT_DEBUG=1 for the traceback); 130 interrupted."
)

def _plain_help_types() -> None:
    """Help that names each value by its metavar only.

    typer 0.2x prints a type column of its own beside every parameter (``<bool>`` for flags such as
    ``--help``, ``<path>`` beside an argument already named CONFIG) and writes a required argument as
    ``{CONFIG}`` in the usage line. miaudit's options carry their own metavars (DIR, N, METRIC=VALUE), so
    flags and arguments get no type and a required argument reads ``CONFIG``. A typer without these hooks is
    left as it is.
    """
    from typer import core

    option, argument = getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)
    if option is not None and hasattr(option, "display_type_rich") and not hasattr(option, "_miaudit_plain"):
        original = option.display_type_rich

        def option_type(self: Any, ctx: Any) -> str | None:
            if getattr(self, "is_flag", False) and self.metavar is None:
                return None
            return original(self, ctx)  # type: ignore[no-any-return]

        option.display_type_rich = option_type
        option._miaudit_plain = True
    if argument is not None and hasattr(argument, "display_type_rich"):
        argument.display_type_rich = lambda self, ctx: None
    if argument is not None and hasattr(argument, "_usage_display_name"):
        def usage_name(self: Any) -> str:
            name = str(self.display_name_raw)
            name = name if self.required else f"[{name}]"
            return name + ("..." if self.nargs != 1 else "")

        argument._usage_display_name = usage_name


_plain_help_types()

app = typer.Typer(
    name="miaudit",
    help="Measure how much a trained model leaks about who was in its training set (membership inference).\n\n"
    "The config reference (every key of an audit config): `miaudit config-help`.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out_console = Console()
_STATE: dict[str, bool] = {"debug": False}

#: What demo, score and audit write into --out; an earlier run is recognised by the first two.
RESULT_FILES = ("results.json", "scores.csv", "report.html")
RESULT_MARKERS = ("results.json", "report.html")
LEVERS_FILES = ("levers.csv", "levers.json", "levers.html")
LEVERS_MARKERS = ("levers.json", "levers.html")
_ADD_FPR = "compute it with --fpr {fpr} (repeat --fpr for every FPR to report)"
BUNDLE_SUFFIXES = (".npz", ".csv", ".tsv", ".parquet", ".pq", ".gz", ".bz2", ".xz")

OutOpt = Annotated[
    Path,
    typer.Option("--out", "-o", metavar="DIR", help="Folder for results.json, scores.csv and report.html."),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite", metavar="", help="Replace the outputs of an earlier run in --out (refused otherwise)."),
]
AttackOpt = Annotated[
    list[str] | None,
    typer.Option("--attack", "-a", metavar="NAME",
                 help="Attack to run (repeatable); default: every attack that can run. See `miaudit attacks`."),
]
FailOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-above",
        metavar="METRIC=VALUE",
        help="Privacy gate (repeatable), e.g. tpr@0.001=0.01, auc=0.6, advantage=0.1, epsilon=1: exit 1 if any "
        "attack exceeds it. A tpr@FPR budget needs that FPR among the computed ones.",
    ),
]
FprOpt = Annotated[
    list[float] | None,
    typer.Option("--fpr", metavar="FPR",
                 help="Target false-positive rate to report TPR at (repeatable, in (0, 1)); default 0.001, 0.01, 0.1."),
]
DeltaOpt = Annotated[float, typer.Option("--delta", metavar="DELTA", help="delta of the empirical epsilon lower bound.")]
PriorOpt = Annotated[float, typer.Option("--member-prior", metavar="P", help="Member prior for the PPV figures.")]
JobsOpt = Annotated[
    int | None, typer.Option("--jobs", metavar="N", help="Parallel training processes (default: all cores).")
]
ExecutorOpt = Annotated[
    str | None,
    typer.Option("--executor", metavar="NAME",
                 help="Where the models train: process (this machine) or ray; overrides \\[execution] executor."),
]
AddressOpt = Annotated[
    str | None,
    typer.Option("--address", metavar="ADDR",
                 help="Ray cluster to train on: HOST:PORT, ray://HOST:PORT or auto (RAY_ADDRESS); without it "
                 "--executor ray starts a local Ray. Overrides \\[execution] address."),
]
ConfigArg = Annotated[
    Path,
    typer.Argument(metavar="CONFIG",
                   help="Audit config (TOML or YAML); `miaudit config-help` prints the reference of every key."),
]


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn every way a command can end badly into one line on stderr and its exit code (module docstring)."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # the command's own exit code, or a usage error (exit 2)
    except InputError as exc:
        _error_line(_one_line(exc))
        raise typer.Exit(EXIT_INPUT) from None
    except MiauditError as exc:
        _error_line(_one_line(exc))
        raise typer.Exit(EXIT_RUNTIME) from None
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]; finished reference models are kept in the cache")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # noqa: BLE001 - anything else is a bug: one line, the traceback on request
        _crash(exc)
        raise typer.Exit(EXIT_BUG) from None


def _debug() -> bool:
    return _STATE["debug"] or os.environ.get("MIAUDIT_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def _error_line(text: str) -> None:
    console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)


def _crash(exc: BaseException) -> None:
    import traceback

    from rich.markup import escape

    if _debug():
        sys.stderr.write("".join(traceback.format_exception(exc)))
        sys.stderr.flush()
    hint = "" if _debug() else "; rerun with --debug (or MIAUDIT_DEBUG=1) for the traceback"
    _error_line(
        f"unexpected crash ({escape(type(exc).__name__)}: {_one_line(exc)}): this is a bug in miaudit, please "
        f"report it{hint}"
    )


#: How the registry begins the reason of an attack that needs another access to the model than the run has.
_OTHER_ACCESS = ("label-only attack:", "needs raw per-class scores", "needs the model's outputs",
                 "needs logits or probabilities")


def _is_other_access(reason: str) -> bool:
    return reason.startswith(_OTHER_ACCESS)


def _one_line(exc: BaseException) -> str:
    from rich.markup import escape

    return escape(" ".join(str(exc).split()))


def check_out(out: Path, files: Sequence[str] = RESULT_FILES, markers: Sequence[str] = RESULT_MARKERS, *,
              overwrite: bool = False) -> None:
    """Check before any work that the outputs can be written into ``out``; :class:`InputError` otherwise.

    ``out`` (or, when it does not exist yet, its nearest existing parent) must be a writable folder, none
    of ``files`` there may be a folder, and an earlier run's ``markers`` are only replaced with
    ``overwrite``. A cache folder (``out/cache``) alone is not an earlier run. Nothing is created.
    """
    out = out.expanduser()
    shown = str(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {shown!r}: exists and is not a folder; choose a folder for the outputs")
    if out.is_dir():
        for name in files:
            p = out / name
            if p.exists() and not p.is_file():
                raise InputError(f"--out {shown!r}: {name!r} in it is not a file (a folder?), so the output "
                                 "cannot be written; remove it or choose another --out")
        found = [name for name in markers if (out / name).exists()]
        if found and not overwrite:
            raise InputError(f"--out {shown!r}: holds an earlier run's {' and '.join(found)}; pass --overwrite "
                             "to replace it, or choose another --out")
        probe = out
    else:
        probe = out.absolute().parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise InputError(f"--out {shown!r}: cannot be created because {str(probe)!r} is a file; "
                             "choose another --out")
    try:  # the one sure test of writability (read-only mounts, ACLs, root): create and remove a file
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".miaudit-write-test-", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise InputError(f"--out {shown!r}: the folder {str(probe)!r} is not writable "
                         f"({exc.strerror or exc}); choose a writable --out") from None


def _check_attacks(names: Sequence[str] | None) -> list[str] | None:
    """Attack names given on the command line, checked against the registry before any work."""
    if not names:
        return None
    from .attacks import available_attacks

    valid = available_attacks()
    for n in names:
        if n not in valid:
            raise InputError(f"--attack: unknown attack {n!r}; expected one of: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def _check_not_bundle(config: Path) -> None:
    name = config.name.lower()
    if any(name.endswith(s) for s in BUNDLE_SUFFIXES):
        raise InputError(f"{config.name!r} looks like a signal bundle (model outputs), not an audit config; "
                         f"score it with `miaudit score {config}`")


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
    if result.metrics:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=0)
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
    else:
        out_console.print(f"[bold]{title}[/]: no attack was evaluated, so there is no table of figures", highlight=False)
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
            + (f"; train loss {_fmt(g.get('train_loss'))}, test loss {_fmt(g.get('test_loss'))}." if "train_loss" in g
               else f"; train acc {_fmt(g.get('train_accuracy'))}, test acc {_fmt(g.get('test_accuracy'))}.")
        )
        blind = result.baselines.get("blind") if result.baselines else None
        if blind:
            lo, hi = blind["auc_interval"]
            out_console.print(f"blind baseline (texts only, no model): AUC {_fmt(blind['auc'])} [{_fmt(lo)}, {_fmt(hi)}], "
                              f"p = {blind['p_value']:.2g}{' (SIGNIFICANT: the sets differ)' if blind['significant'] else ''}")
    other_access = [n for n, r in result.skipped.items() if _is_other_access(str(r))]
    for name, reason in result.skipped.items():
        if name not in other_access:
            out_console.print(f"[dim]skipped {name}: {_one_line(Exception(reason))}[/]", highlight=False)
    if other_access:
        out_console.print(f"[dim]not run, they need another access to the model: {', '.join(other_access)} "
                          "(`miaudit attacks` lists each attack's access; results.json skipped says why)[/]",
                          highlight=False, soft_wrap=True)
    for w in result.warnings:
        console.print(f"[bold yellow]warning:[/] {_one_line(w)}", highlight=False, soft_wrap=True)
    verdict = result.verdict()
    colour = "red" if verdict.leakage_detected else "green"
    out_console.print(f"[bold {colour}]verdict:[/] {_one_line(verdict.sentence)}", highlight=False, soft_wrap=True)


def _finish(result: Any, out: Path, budgets: list[Any], *, title: str, started: float, clock: Any = None) -> None:
    from .api import check_budget

    result.run_clock = clock  # results.json "run": where the time went (save adds the report's time)
    paths = result.save(out)
    print_summary(result, title=title)
    out_console.print(f"report: {paths['report']}  ({time.perf_counter() - started:.1f} s)")
    if budgets:
        violations = check_budget(result, budgets)
        if violations:
            for v in violations:
                console.print(f"[bold red]privacy budget exceeded:[/] {v}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BUDGET)
        out_console.print("[green]privacy budget met[/]")


def _check_budgets(fail_above: list[str] | None, fprs: Sequence[float], *,
                   add_fpr: str = "add it to [metrics] fprs") -> list[Any]:
    """Parse every --fail-above and check its FPR is computed, before any work: a typo fails fast with exit 2."""
    from .audit.budget import check_budget_fprs

    return check_budget_fprs(fail_above or [], tuple(fprs), add_fpr=add_fpr)


def _settings(delta: float, member_prior: float, seed: int = 0, fprs: Sequence[float] | None = None) -> Any:
    from .metrics import AuditSettings

    kw: dict[str, Any] = {"delta": delta, "member_prior": member_prior, "seed": seed}
    if fprs:
        if len({format(f, "g") for f in fprs}) != len(fprs):
            raise InputError(f"--fpr: expected distinct values, got {list(fprs)}; give each FPR once")
        kw["fprs"] = tuple(sorted(float(f) for f in fprs))
    try:
        return AuditSettings(**kw)
    except InputError as exc:
        raise InputError(f"--fpr/--delta/--member-prior: {exc}") from None


@app.command()
def demo(
    out: OutOpt = Path("miaudit-report"),
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the member/non-member draw and of training.")] = 0,
    model: Annotated[str, typer.Option(metavar="NAME", help="Target recipe: mlp, rf, logreg or gb (scikit-learn).")] = "mlp",
    references: Annotated[int, typer.Option("--references", "-k", metavar="K", help="Reference models per target (even, >= 2); the demo trains references + 2 models.")] = 8,
    jobs: JobsOpt = None,
    attack: AttackOpt = None,
    fpr: FprOpt = None,
    fail_above: FailOpt = None,
    delta: DeltaOpt = 1e-5,
    member_prior: PriorOpt = 0.5,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run a full audit on scikit-learn's embedded digits data and write a report."""
    started = time.perf_counter()
    with _errors():
        from .audit import run_demo
        from .audit.demo import demo_config
        from .report._fonts import warm_font_cache
        from .training import rich_progress

        with RunClock().active() as clock:  # the demo begins: what came before is its start-up
            attacks = _check_attacks(attack)
            settings = _settings(delta, member_prior, seed, fpr)
            budgets = _check_budgets(fail_above, settings.fprs, add_fpr=_ADD_FPR)
            with clock.phase("load"):  # --model and --references checked before --out and any training
                demo_config(model=model, seed=seed, n_references=references, run_dir=out / "cache", attacks=attacks,
                            settings=settings)
            check_out(out, overwrite=overwrite)
            warm_font_cache()  # matplotlib's first-run font scan overlaps with training
            with rich_progress("training reference models", console=console) as progress:
                result = run_demo(
                    model=model,
                    seed=seed,
                    n_references=references,
                    jobs=jobs,
                    run_dir=out / "cache",
                    attacks=attacks,
                    settings=settings,
                    progress=progress,
                )
            _finish(result, out, budgets, title=f"miaudit demo: digits, {model}, seed {seed}", started=started,
                    clock=clock)


def _load_score_bundle(bundle: Path, *, label_column: str, member_column: str | None,
                       group_column: str | None, outputs: str | None = None,
                       outputs_kind: str | None = None) -> tuple[Any, str | None]:
    """The bundle, and for a table without a membership column the sentence that says why no figures follow."""
    from .data import load_bundle

    if bundle.suffix.lower() == ".npz":
        return load_bundle(str(bundle), outputs=outputs, outputs_kind=outputs_kind), None
    loaded = load_bundle(str(bundle), label_column=label_column, member_column=member_column or "is_member",
                         group_column=group_column, outputs=outputs, outputs_kind=outputs_kind)
    if loaded.is_member is not None:
        return loaded, None
    columns = loaded.meta.get("columns") or []
    found = ", ".join(repr(c) for c in columns[:30]) + (" ..." if len(columns) > 30 else "")
    if member_column is not None:
        raise InputError(f"--member-column {member_column!r}: not found in {bundle.name!r}; the table's columns are "
                         f"{found}; pass the column that says which rows were in the training set")
    return loaded, (
        f"no membership column: {bundle.name!r} has no column 'is_member' (its columns: {found}), so it is not "
        "known which rows were in the training set, and without that ground truth no leakage figure (AUC, TPR, "
        "epsilon) can be computed; only the attack scores are written. Pass --member-column NAME."
    )


@app.command()
def score(
    bundle: Annotated[Path, typer.Argument(metavar="BUNDLE", help="Signal bundle: .npz, or a CSV/parquet table of per-example outputs.")],
    out: OutOpt = Path("miaudit-report"),
    attack: AttackOpt = None,
    fpr: FprOpt = None,
    fail_above: FailOpt = None,
    label_column: Annotated[str, typer.Option(metavar="NAME", help="Table bundles: the label column (default: label when present; without labels only the label-free attacks run).")] = "label",
    member_column: Annotated[str | None, typer.Option(metavar="NAME", help="Table bundles: the membership column (default: is_member when present; without one no figures can be computed).")] = None,
    group_column: Annotated[str | None, typer.Option(metavar="NAME", help="Table bundles: a column to slice results by.")] = None,
    outputs: Annotated[str | None, typer.Option(metavar="COLUMNS", help="Table bundles: the output columns in class order, comma-separated (p_cat,p_dog) or a pattern (p_*); default logit_0.. or prob_0...")] = None,
    outputs_kind: Annotated[str | None, typer.Option(metavar="KIND", help="Table bundles: what the output columns hold: logits, probs or scores (raw values used as given); inferred from logit_*/prob_* names.")] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed for cross-fitting and threshold selection.")] = 0,
    delta: DeltaOpt = 1e-5,
    member_prior: PriorOpt = 0.5,
    overwrite: OverwriteOpt = False,
) -> None:
    """Score precomputed model outputs (a signal bundle) and write the same outputs as the demo."""
    started = time.perf_counter()
    with _errors(), cli_option_names():
        from .audit import evaluate_bundle

        with RunClock().active() as clock:  # the scoring begins: what came before is its start-up
            attacks = _check_attacks(attack)
            settings = _settings(delta, member_prior, seed, fpr)
            budgets = _check_budgets(fail_above, settings.fprs, add_fpr=_ADD_FPR)
            check_out(out, overwrite=overwrite)
            with console.status("running attacks"):
                with clock.phase("load"):
                    loaded, no_truth = _load_score_bundle(bundle, label_column=label_column,
                                                          member_column=member_column, group_column=group_column,
                                                          outputs=outputs, outputs_kind=outputs_kind)
                if budgets and loaded.is_member is None:  # before any attack runs or anything is written
                    raise InputError("--fail-above needs membership ground truth: "
                                     + (no_truth or f"{bundle.name!r} has no is_member array, so no leakage figure "
                                        "can be computed; add is_member to the bundle or drop --fail-above"))
                result = evaluate_bundle(loaded, attacks=attacks, settings=settings,
                                         game={"bundle_path": str(bundle)})
            _finish(result, out, budgets, title=f"miaudit score: {bundle.name}", started=started, clock=clock)
        if no_truth is not None:
            console.print(f"[bold yellow]no figures:[/] {_one_line(InputError(no_truth))}", highlight=False,
                          soft_wrap=True)


@app.command()
def audit(
    config: ConfigArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="DIR", help="Override the config's output folder.")] = None,
    jobs: JobsOpt = None,
    attack: Annotated[
        list[str] | None,
        typer.Option("--attack", "-a", metavar="NAME",
                     help="Attack to run (repeatable); overrides the config's attacks. See `miaudit attacks`."),
    ] = None,
    fail_above: FailOpt = None,
    overwrite: OverwriteOpt = False,
    data: Annotated[
        Path | None,
        typer.Option("--data", metavar="PATH",
                     help="Data file or folder; overrides the config's \\[data] path (relative to the current "
                     "folder, not the config's)."),
    ] = None,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
) -> None:
    """Run the full game: train K reference models with your recipe and evaluate each as a target.

    The config's folder is on the import path while it loads and its models train, so an estimator module
    next to the config (estimator = "mymodule.MyEstimator") imports without PYTHONPATH.
    """
    started = time.perf_counter()
    with _errors():
        import dataclasses

        from ._imports import config_folder_on_path
        from .audit import run_audit
        from .config import load_config
        from .report._fonts import warm_font_cache
        from .training import rich_progress

        with RunClock().active() as clock:  # the audit begins: what came before is its start-up
            _check_not_bundle(config)
            attacks = _check_attacks(attack)
            if data is not None and not data.expanduser().exists():
                raise InputError(f"--data: {str(data)!r} does not exist; pass the data file or folder "
                                 "(relative to the current folder)")
            with config_folder_on_path(config.expanduser().absolute().parent):
                with clock.phase("load"):
                    cfg = load_config(config, data_path=data)
                if attacks:
                    cfg = dataclasses.replace(cfg, attacks=dataclasses.replace(cfg.attacks, names=tuple(attacks)))
                cfg = dataclasses.replace(cfg, execution=_execution(cfg.execution, executor, address))
                budgets = _check_budgets(fail_above, cfg.metrics.fprs)
                out_dir = out if out is not None else Path(cfg.output.dir)
                check_out(out_dir, overwrite=overwrite)
                warm_font_cache()  # matplotlib's first-run font scan overlaps with training
                with rich_progress("training models", console=console) as progress:
                    result = run_audit(cfg, jobs=jobs, progress=progress)
            _finish(result, out_dir, budgets, title=f"miaudit audit: {config.name}", started=started, clock=clock)


def _execution(base: Any, executor: str | None, address: str | None) -> Any:
    """The config's ``[execution]`` with ``--executor``/``--address`` applied (InputError naming the flag)."""
    import dataclasses

    from .training._execution import execution_problems

    flags = {k: v for k, v in (("executor", executor), ("address", address)) if v is not None}
    if address is not None and executor is None:
        flags["executor"] = "ray"  # an address only means something to the ray executor
    if problems := execution_problems(flags, flag=True):
        raise InputError("; ".join(problems))
    merged = {**base.to_dict(), **flags}
    if merged.get("executor") == "process":
        merged.pop("address", None)  # --executor process overrides a config's cluster
    return dataclasses.replace(base, **{k: merged.get(k) for k in ("executor", "address")})


def _levers_column(budget: Any) -> str:
    if budget.metric == "tpr":
        return f"tpr@{format(budget.fpr, 'g')}"
    return "epsilon_lower_bound" if budget.metric == "epsilon" else budget.metric


def levers_violations(table: Any, budgets: Sequence[Any]) -> list[list[str]]:
    """Per row of a levers table, the budgets it violates (a figure that is missing counts as a violation)."""
    import math

    out = []
    for _, row in table.iterrows():
        bad = []
        for b in budgets:
            value = row.get(_levers_column(b))
            if value is None or (isinstance(value, float) and math.isnan(value)):
                bad.append(f"{b.label()} not measured")
            elif float(value) > b.limit:
                bad.append(f"{b.label()} = {float(value):.4g} > {b.limit:g}")
        out.append(bad)
    return out


# the levers table's figures: (summary column, header, kind of number)
_LEVERS_COLUMNS = (
    ("test_accuracy", "test acc", "num"),
    ("generalisation_gap", "gap", "num"),
    ("auc", "AUC", "num"),
    ("tpr@0.001", "TPR@0.1%", "pct"),
    ("tpr@0.01", "TPR@1%", "pct"),
    ("epsilon_lower_bound", "eps LB", "num"),
    ("accountant_epsilon", "acct eps", "num"),
    ("pareto", "pareto", "yes"),
)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def fmt_number(value: Any) -> str:
    """A figure for the terminal: 3 decimals, or 3 significant digits below 0.01 (1e-4 -> 0.0001, not 0.000)."""
    if _is_missing(value):
        return "n/a"
    v = float(value)
    return f"{v:.3g}" if v != 0 and abs(v) < 0.01 else f"{v:.3f}"


def fmt_percent(value: Any) -> str:
    """A rate as a percent: one decimal, or 2 significant digits below 1% (1e-4 -> 0.01%)."""
    if _is_missing(value):
        return "n/a"
    p = 100 * float(value)
    return f"{p:.2g}%" if p != 0 and abs(p) < 1 else f"{p:.1f}%"


def _fmt_lever(value: Any) -> str:
    if _is_missing(value):
        return "-"
    return format(value, "g") if isinstance(value, float) else str(value)


def _yes(value: Any) -> str:
    return "n/a" if _is_missing(value) else ("yes" if bool(value) else "no")


def levers_table(summary: Any, *, title: str) -> Table:
    """The levers summary as a terminal table (fits 80 columns): whole headers, readable small numbers."""
    from rich import box

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    levers_cols = [c for c in summary.columns if c.startswith("lever:")]
    figures = [(c, header, kind) for c, header, kind in _LEVERS_COLUMNS if c in summary.columns]
    fmt: dict[str, Callable[[Any], str]] = {"num": fmt_number, "pct": fmt_percent, "yes": _yes}
    rows = [[_fmt_lever(row[c]) for c in levers_cols] + [fmt[kind](row[c]) for c, _, kind in figures]
            for _, row in summary.iterrows()]
    headers = [c.removeprefix("lever:") for c in levers_cols] + [header for _, header, _ in figures]
    for j, header in enumerate(headers):  # as wide as the widest cell: rich never cuts a figure
        table.add_column(header, justify="right", no_wrap=True,
                         min_width=max([len(header), *(len(r[j]) for r in rows)]))
    for r in rows:
        table.add_row(*r)
    return table


@app.command()
def levers(
    config: Annotated[
        Path,
        typer.Argument(metavar="CONFIG", help="Levers config: an audit config plus a \\[levers] section "
                       "(`miaudit config-help` prints the audit config reference)."),
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="DIR", help="Override the config's output folder.")] = None,
    jobs: JobsOpt = None,
    budget: Annotated[
        str | None,
        typer.Option(metavar="METRIC=VALUE", help="Privacy budget, e.g. tpr@0.001=0.005: the report names the settings that meet it."),
    ] = None,
    fail_above: Annotated[
        list[str] | None,
        typer.Option("--fail-above", metavar="METRIC=VALUE",
                     help="Privacy gate (repeatable), e.g. tpr@0.01=0.05 or auc=0.6: exit 1 if every point of the "
                     "sweep exceeds it (no setting meets the budget); a figure that cannot be measured counts as "
                     "exceeding it."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", metavar="", help="Replace an earlier sweep's levers.json/levers.html in the output folder."),
    ] = False,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
) -> None:
    """Sweep training-set size, capacity, regularisation or DP-SGD and show how each moves the risk."""
    started = time.perf_counter()
    with _errors():
        import pandas as pd

        from ._imports import config_folder_on_path
        from .audit.budget import parse_budget
        from .config import AuditConfig, read_config_file
        from .levers import run_levers
        from .training import rich_progress

        _check_not_bundle(config)
        if budget is not None:
            parse_budget(budget)
        folder = config.expanduser().absolute().parent
        with config_folder_on_path(folder):
            raw = read_config_file(config)
            if isinstance(raw, dict):
                raw = {k: v for k, v in raw.items() if k != "levers"}
            base = AuditConfig.from_dict(raw, base_dir=config.expanduser().resolve().parent, source=config)
            budgets = _check_budgets(fail_above, base.metrics.fprs)
            execution = _execution(base.execution, executor, address)
            check_out(out if out is not None else Path(base.output.dir), LEVERS_FILES, LEVERS_MARKERS,
                      overwrite=overwrite)

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
                result = run_levers(config, jobs=jobs, progress=progress, budget=budget, out_dir=out, on_point=on_point,
                                    executor=execution)
        out_dir = Path(result.meta["out_dir"])
        paths = result.save(out_dir)
        summary = result.summary()
        out_console.print(levers_table(summary, title=f"miaudit levers: {config.name}"))
        recs = result.recommendations()
        if budget:
            if len(recs):
                first = recs.iloc[0]
                txt = ", ".join(f"{c[6:]}={first[c]}" for c in recs.columns if c.startswith("lever:") and pd.notna(first[c]))
                out_console.print(f"[green]best setting within {budget}:[/] {txt} (test acc {_fmt(first['test_accuracy'])})")
            else:
                out_console.print(f"[red]no setting meets {budget}[/]")
        out_console.print(f"report: {paths['levers.html']}  ({time.perf_counter() - started:.1f} s)")
        if budgets:
            bad = levers_violations(result.table, budgets)
            n_ok = sum(1 for b in bad if not b)
            if n_ok == 0:
                console.print(f"[bold red]privacy budget exceeded:[/] every one of the {len(bad)} points of the "
                              f"sweep exceeds {', '.join(f'{b.label()}={b.limit:g}' for b in budgets)} "
                              f"(first point: {'; '.join(bad[0]) if bad else '-'})", highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_BUDGET)
            out_console.print(f"[green]privacy budget met[/] by {n_ok} of {len(bad)} points of the sweep")


@app.command("dp-audit")
def dp_audit(
    config: ConfigArg,
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Output folder.")] = Path("miaudit-dp-audit"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Check a DP-SGD claim with canaries ([dp_audit]: claimed_epsilon, delta, threat, design, runs | canaries).

    Trains many small DP-SGD runs at once (or one run with many canaries), certifies a lower bound on epsilon
    and says whether it contradicts the claim (exit 1 when it does). See docs/dp-audit.md.
    """
    with _errors():
        from .audit.dp_audit import load_dp_audit_config, run_dp_audit, save_dp_audit

        _check_not_bundle(config)
        audit_cfg, dp_cfg = load_dp_audit_config(config)
        check_out(out, overwrite=overwrite)
        rec = run_dp_audit(audit_cfg, dp_cfg, log=lambda m: console.print(m, highlight=False))
        paths = save_dp_audit(rec, out, title=config.name, config=dp_cfg)
        for name, b in rec["bounds"].items():
            tag = "" if b["assumption"] is None else "  (assumes GDP; does not decide)"
            out_console.print(f"{name}: epsilon >= {_fmt(b['epsilon_lower'])} (ceiling {_fmt(b['ceiling'])}){tag}")
        out_console.print(f"claimed epsilon {_fmt(rec['claimed_epsilon'])}, accountant {_fmt(rec['accountant_epsilon'])} "
                          f"at delta {rec['delta']:g}: claim {'CONTRADICTED' if rec['claim_contradicted'] else 'not contradicted'}")
        out_console.print(f"report: {paths['report']}")
        if rec["claim_contradicted"]:
            raise typer.Exit(EXIT_BUDGET)


@app.command("attacks")
def list_attacks() -> None:
    """List the registered attacks, the access to the target each needs (labels, scores, logits, reference
    models) and what else it needs."""
    from .attacks import attack_class, available_attacks
    from .attacks.registry import attack_access

    table = Table()
    table.add_column("attack")
    table.add_column("access")
    table.add_column("needs")
    table.add_column("description")
    for name in available_attacks():
        cls = attack_class(name)
        table.add_row(name, attack_access(name), ", ".join(sorted(cls.requires)) or "-",
                      cls.description or (cls.__doc__ or "").strip().split("\n")[0])
    out_console.print(table)


def config_reference() -> str:
    """The audit config reference (docs/config.md), shipped inside the package."""
    from importlib import resources

    return resources.files("miaudit").joinpath("_config_reference.md").read_text(encoding="utf-8")


@app.command("config-help")
def config_help() -> None:
    """Print the reference of every key of an audit config (the content of docs/config.md)."""
    with _errors():
        sys.stdout.write(config_reference())
        sys.stdout.flush()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", metavar="", help="Print the version and exit.")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", metavar="", help="On an unexpected crash (exit 4), print the traceback (or set MIAUDIT_DEBUG=1)."),
    ] = False,
) -> None:
    _STATE["debug"] = debug
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
        _error_line(_one_line(exc))
        sys.exit(EXIT_INPUT if isinstance(exc, InputError) else EXIT_RUNTIME)
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - pragma: no cover - a crash outside a command (option parsing)
        _crash(exc)
        sys.exit(EXIT_BUG)


if __name__ == "__main__":  # pragma: no cover
    main()
