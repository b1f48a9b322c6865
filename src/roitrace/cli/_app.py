"""The application: the Typer app, error handling (one line, exit code 2), warnings and
log lines in the command line's words."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, Any

import typer
from rich.console import Console

from .._version import __version__
from ..errors import RoitraceError
from . import _words
from ._words import cli_words

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

#: Set while ``roitrace batch`` runs a command as one of its rows: errors propagate as
#: exceptions (the row fails with its reason) instead of ending the process.
raise_errors: ContextVar[bool] = ContextVar("raise_errors", default=False)

app = typer.Typer(
    name="roitrace",
    help="Turn calcium-imaging movies into one fluorescence trace per cell.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _fail(message: str) -> None:
    err.print(f"roitrace: error: {message}", markup=False)
    raise typer.Exit(2)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into a one-line message and exit code 2, no traceback.

    Expected failures: a RoitraceError (among them OutputError and DiskFullError, for
    an output that could not be written) and any other OSError (a file that cannot be
    read). Ctrl-C prints one line and exits with code 130. The message is printed
    while the exception is still being handled: an HDF5 library left broken by a full
    disk may crash when the exception is freed, and the message must be out by then.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if raise_errors.get():
            return _closing(fn, args, kwargs)
        try:
            return _closing(fn, args, kwargs)
        except RoitraceError as exc:
            _fail(cli_words(" ".join(str(exc).split())))  # one line, in the options' words
        except OSError as exc:  # a file roitrace could not read, or an unforeseen write
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            why = " ".join(str(exc.strerror or exc).split())
            _fail(f"could not read or write{where}: {why}")
        except KeyboardInterrupt:
            err.print("roitrace: interrupted; no output was left half-written", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def _closing(fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Run a command; close what it asked to close (:func:`close_with_command`)."""
    with contextlib.ExitStack() as stack:
        token = _CLOSING.set(stack)
        try:
            return fn(*args, **kwargs)
        finally:
            _CLOSING.reset(token)


#: What the running command closes when it ends (a cluster's client), however it ends.
_CLOSING: contextvars.ContextVar[contextlib.ExitStack | None] = contextvars.ContextVar(
    "roitrace_closing", default=None
)


def close_with_command(resource: Any) -> Any:
    """Close ``resource`` when the running command ends; returns it."""
    stack = _CLOSING.get()
    if stack is None:  # pragma: no cover - only commands call this
        raise RuntimeError("close_with_command() outside a command")
    stack.callback(resource.close)
    return resource


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = cli_words(" ".join(str(message).split()), _words.stage_flags())
    err.print(f"roitrace: warning: {text}", markup=False)


class _CliFormatter(logging.Formatter):
    """Log lines in the command line's words (its options, not Python keywords)."""

    def format(self, record: logging.LogRecord) -> str:
        return cli_words(super().format(record))


def _version(value: bool) -> None:
    if value:
        out.print(f"roitrace {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what is done.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    warnings.showwarning = _show_warning
    handler = logging.StreamHandler()
    handler.setFormatter(_CliFormatter("roitrace: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
