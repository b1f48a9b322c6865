"""The progress bar of a pass over a movie's frames (only when asked for: the command
line, or ``progress=True``)."""

from __future__ import annotations


class _Progress:
    """A rich progress bar that shows frames and frames/s."""

    def __init__(self, total: int, desc: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._p = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("frames"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._p.start()
        self._task = self._p.add_task(desc, total=total, rate="")

    def advance(self, n: int, desc: str | None = None) -> None:
        self._p.advance(self._task, n)
        if desc is not None:
            self._p.update(self._task, description=desc)
        speed = self._p.tasks[0].speed
        if speed:
            self._p.update(self._task, rate=f"{speed:,.0f} frames/s")

    def close(self) -> None:
        self._p.stop()


def progress_bar(total: int, desc: str) -> _Progress:
    """A progress bar over ``total`` frames, on standard error."""
    return _Progress(total, desc)
