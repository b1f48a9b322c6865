"""The ``roitrace`` command line: demo, project, extract, rois, report, fetch, batch.

Each command is a thin adapter in its own module over the library and the shared
option definitions (:mod:`._options`). Errors the user can fix (a
roitrace.RoitraceError, a file that cannot be written) become one line on stderr
and exit code 2, never a traceback; messages name the command line's options
(:mod:`._words`).
"""

from __future__ import annotations

import sys

import typer

# isort: off
# the commands register themselves, in this order (that of --help)
from . import demo, project, extract, rois, report, fetch, batch  # noqa: F401

# isort: on
from ._app import app, err, handle_errors
from ._options import DEFAULT_MIN_SIZE, How, Kind, Method, Overlap
from ._words import _speaking, cli_words

__all__ = [
    "DEFAULT_MIN_SIZE",
    "How",
    "Kind",
    "Method",
    "Overlap",
    "_speaking",
    "app",
    "cli_words",
    "handle_errors",
    "main",
]


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``roitrace`` script.

    A mistake in the command line itself (an unknown option, a value that is not
    one of the choices) is one line and exit code 2, as every other mistake; click's
    own messages take several lines.
    """
    command = typer.main.get_command(app)
    try:
        code = command.main(args, prog_name="roitrace", standalone_mode=False)
    except Exception as exc:
        # click's exceptions (typer vendors its own copy of click in newer versions)
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            raise SystemExit(exc.exit_code) from None  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        where = f"roitrace {ctx.command.name}" if ctx is not None and ctx.parent else "roitrace"
        message = _usage_words(exc.format_message())  # type: ignore[attr-defined]
        err.print(f"roitrace: error: {message} (see {where} --help)", markup=False)
        raise SystemExit(exc.exit_code) from None  # type: ignore[attr-defined]
    if type(code) is int and code:
        raise SystemExit(code)


def _usage_words(message: str) -> str:
    """click's message on one line, without its Python wording ("Value error, ")."""
    return " ".join(message.replace("Value error, ", "").split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
