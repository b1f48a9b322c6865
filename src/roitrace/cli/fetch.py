"""``roitrace fetch``: download an example dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, handle_errors, out


@app.command()
@handle_errors
def fetch(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. single-cell.")] = "single-cell",
    cache_dir: Annotated[Path | None, typer.Option(help="Where to keep downloads.")] = None,
    url: Annotated[str | None, typer.Option(help="Download from this URL instead.")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 of the file.")] = None,
) -> None:
    """Download a dataset (the notebook's single-cell movie) into the local cache."""
    from ..datasets.fetch import fetch as do_fetch

    path = do_fetch(name, cache_dir=cache_dir, url=url, known_hash=sha256, progress=True)
    out.print(str(path))
