"""A rich progress bar for :func:`~miaudit.training.train_models` (models done, rate, time left)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._runner import ProgressCallback, TrainingProgress

__all__ = ["rich_progress"]


@contextmanager
def rich_progress(
    description: str = "training reference models", *, console: Any = None, transient: bool = False
) -> Iterator[ProgressCallback]:
    """Context manager yielding a ``progress`` callback that drives a rich progress bar.

    Example::

        with rich_progress() as progress:
            trained = train_models(recipe, X, y, membership, seeds=seeds, run_dir=run, progress=progress)
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("-- models/min", style="progress.data.speed")
            return Text(f"{speed * 60:.1f} models/min", style="progress.data.speed")

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    ) as bar:
        task_id = bar.add_task(description, total=None)

        def callback(p: TrainingProgress) -> None:
            extra = []
            if p.n_cached:
                extra.append(f"{p.n_cached} cached")
            if p.n_failed:
                extra.append(f"[red]{p.n_failed} failed[/red]")
            desc = description + (f" ({', '.join(extra)})" if extra else "")
            bar.update(task_id, completed=p.n_done + p.n_failed, total=p.n_total, description=desc)

        yield callback
