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


class _Status:
    """A spinner with a line of text on standard error, for a step with no frame count."""

    def __init__(self, desc: str) -> None:
        from rich.console import Console

        self._s = Console(stderr=True).status(desc)

    def __enter__(self) -> _Status:
        self._s.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._s.stop()


class _Silent:
    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def status(desc: str, *, show: bool) -> _Status | _Silent:
    """A spinner saying what runs now (``show``: the caller asked for progress)."""
    return _Status(desc) if show else _Silent()
