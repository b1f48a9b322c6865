"""``roitrace batch``: many recordings, one ``roitrace extract`` each.

Each manifest row becomes the arguments of ``roitrace extract`` (``movie -o output
--rois X --neuropil-gap 2 ...``), parsed and checked by that very command, so that every
option, check and message is the command line's. Every row is checked before any work;
the rows then run through :func:`roitrace.batch.run_recordings` (one task each, here
or on a Dask cluster).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ..batch import (
    KEY_ATTR,
    BatchRecord,
    ManifestRow,
    Recording,
    absolute_paths,
    batch_key,
    check_outputs,
    column_name,
    is_glob,
    read_manifest,
    unknown_column,
    write_folder_key,
)
from ..errors import InputFormatError, InputNotFoundError, ParameterError, RoitraceError
from ._app import app, err, handle_errors, out, raise_errors
from ._options import NoProgress, _cluster, _count
from ._words import cli_words

#: Options of batch itself: never a manifest column.
_OWN = ("workers", "scheduler", "summary", "rois_pattern", "output_pattern", "overwrite")
_NOT_COLUMNS = {"no_progress": "roitrace batch has one progress bar (--no-progress hides it)"}


def _extract_command() -> Any:
    return typer.main.get_command(app).commands["extract"]  # type: ignore[attr-defined]


def _columns(cmd: Any) -> dict[str, tuple[Any, str]]:
    """extract's options by column name (its long option without ``--``): (param, flag)."""
    found = {}
    for p in cmd.params:
        if p.param_type_name != "option":
            continue
        longs = [o for o in p.opts if o.startswith("--")]
        if longs:
            found[column_name(longs[0])] = (p, longs[0])
    return found


def _flag_value(value: Any, where: str, name: str) -> bool:
    from ..batch import _as_bool

    try:
        return _as_bool(value)
    except ValueError:
        raise ParameterError(
            f"{where}: --{name.replace('_', '-')} {value!r}: write true or false (yes/no, 1/0)"
        ) from None


def _defaults(args: list[str], columns: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """The extract options given on the batch command line, as column values."""
    by_flag = {o: (n, p) for n, (p, _) in columns.items() for o in p.opts}
    values: dict[str, Any] = {}
    i = 0
    while i < len(args):
        word = args[i]
        flag, eq, inline = word.partition("=")
        if flag not in by_flag:
            import difflib

            what = "argument" if not word.startswith("-") else "option"
            close = difflib.get_close_matches(flag, [o for o in by_flag if o[:2] == "--"], 1)
            raise ParameterError(
                f"no such {what} {word} (roitrace batch takes one manifest, its own options "
                "and those of roitrace extract)" + (f"; did you mean {close[0]}?" if close else "")
            )
        name, param = by_flag[flag]
        if name == "output":
            raise ParameterError(
                "-o/--output is each row's own: give an output column, or --output-pattern "
                "with a glob"
            )
        if param.is_flag:
            values[name] = inline if eq else "true"
            i += 1
        elif eq:
            values[name] = inline
            i += 1
        else:
            if i + 1 >= len(args):
                raise ParameterError(f"{flag} needs a value")
            values[name] = args[i + 1]
            i += 2
    return values


def _argv(
    row: ManifestRow, base: dict[str, Any], columns: dict[str, tuple[Any, str]]
) -> tuple[str, str, list[str]]:
    """A row as the arguments of roitrace extract: (movie, output, argv)."""
    values = {**base, **row.values}
    movie, output = values.pop("movie", None), values.pop("output", None)
    if movie in (None, "") or output in (None, ""):
        missing = "movie" if movie in (None, "") else "output"
        raise ParameterError(f"{row.where}: no {missing}; every row needs movie and output")
    argv = [str(movie), "-o", str(output)]
    for name, value in values.items():
        if name in _OWN:
            raise ParameterError(
                f"{row.where}: column {name!r} is an option of roitrace batch itself, for "
                f"the whole batch: give --{name.replace('_', '-')} on the command line"
            )
        if name in _NOT_COLUMNS:
            raise ParameterError(f"{row.where}: column {name!r}: {_NOT_COLUMNS[name]}")
        if name not in columns:
            raise unknown_column(
                name, [*columns, "movie"], row.where,
                "the columns are movie, output and the options of roitrace extract "
                "(see roitrace extract --help)",
            )  # fmt: skip
        param, flag = columns[name]
        if param.is_flag:
            if _flag_value(value, row.where, name):
                argv.append(flag)
        else:
            argv += [flag, value if isinstance(value, str) else str(value).lower()
                     if isinstance(value, bool) else str(value)]  # fmt: skip
    return str(movie), str(output), [*argv, "--no-progress"]


def _parse(cmd: Any, argv: list[str], where: str) -> Any:
    """extract's context for ``argv``: click's own checks, in one line."""
    try:
        return cmd.make_context("extract", list(argv), resilient_parsing=False)
    except Exception as exc:
        if not hasattr(exc, "format_message"):
            raise
        message = " ".join(exc.format_message().replace("Value error, ", "").split())
        raise ParameterError(f"{where}: {message}") from None


def _key_options(ctx: Any) -> dict[str, Any]:
    """The options given (not defaults), as text, for the key."""
    # how the movie is read does not change the traces
    skip = {"movie", "output_text", "no_progress", "threads", "chunk_frames"}
    given = {}
    for name, value in ctx.params.items():
        # by name: typer 0.2x has its own click, whose ParameterSource is not click's
        source = getattr(ctx.get_parameter_source(name), "name", None)
        if name in skip or source == "DEFAULT":
            continue
        given[name] = getattr(value, "value", value)
    return {k: str(v) for k, v in given.items()}


def _check_row(cmd: Any, rec: Recording) -> None:
    """Every check roitrace extract makes before it reads the movie. A missing or
    unreadable input is not a mistake in the manifest: that row fails when it runs."""
    ctx = _parse(cmd, rec.options, rec.where)
    from .extract import batch_row

    t1, t2 = raise_errors.set(True), batch_row.set({"check_only": True})
    try:
        with ctx:
            cmd.invoke(ctx)
    except (InputNotFoundError, InputFormatError):
        pass
    except RoitraceError as exc:
        raise ParameterError(f"{rec.where}: {cli_words(' '.join(str(exc).split()))}") from None
    finally:
        raise_errors.reset(t1)
        batch_row.reset(t2)


def run_row(rec: Recording) -> tuple[int, int]:
    """One row, as ``roitrace extract`` with the row's arguments: the batch's task
    (here, or on a Dask worker)."""
    from ..batch import _folder
    from .extract import batch_row

    cmd = _extract_command()
    state: dict[str, Any] = {"provenance": {KEY_ATTR: rec.key}}
    t1, t2 = raise_errors.set(True), batch_row.set(state)
    try:
        ctx = _parse(cmd, rec.options, rec.where)
        with ctx:
            cmd.invoke(ctx)
    except RoitraceError as exc:
        exc.args = (cli_words(" ".join(str(exc).split())), *exc.args[1:])
        raise
    finally:
        raise_errors.reset(t1)
        batch_row.reset(t2)
    if _folder(rec.output):
        write_folder_key(rec.output, rec.key)
    return state["rois"], state["frames"]


def _default_summary(manifest: str) -> Path:
    if is_glob(manifest):
        return Path("batch-summary.csv")
    return Path(manifest).with_name(f"{Path(manifest).stem}-summary.csv")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handle_errors
def batch(
    ctx: typer.Context,
    manifest: Annotated[
        str,
        typer.Argument(
            help="A .csv or .toml manifest (columns movie, output, and extract's options), "
            "or a quoted glob of movies ('sessions/*/movie.tif')."
        ),
    ],
    workers: Annotated[
        int | None, typer.Option(help="Run the recordings in N local worker processes.")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Run them on the Dask cluster at this address (tcp://host:8786)."),
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option(
            help="Summary table (CSV); default MANIFEST-summary.csv beside the manifest "
            "(batch-summary.csv here for a glob)."
        ),
    ] = None,
    rois_pattern: Annotated[
        str | None,
        typer.Option(help="A glob's ROI file for each movie: {dir}, {stem}, {name}."),
    ] = None,
    output_pattern: Annotated[
        str | None,
        typer.Option(help="A glob's output for each movie, e.g. '{dir}/traces.nc'."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace existing outputs that roitrace batch did not write."
        ),
    ] = False,
    no_progress: NoProgress = False,
) -> None:
    """Extract many recordings, one task each; options of roitrace extract given here
    apply to every row (a row's own value wins). A failed recording does not stop the
    others; the exit code is 1 if any failed. A rerun skips up-to-date outputs."""
    cmd = _extract_command()
    columns = _columns(cmd)
    base = absolute_paths(_defaults(list(ctx.args), columns))  # from this folder
    rows = read_manifest(manifest, rois_pattern=rois_pattern, output_pattern=output_pattern)
    recordings, inputs = [], []
    figures: dict[str, str] = {}
    for row in rows:
        movie, output, argv = _argv(row, base, columns)
        parsed = _parse(cmd, argv, row.where)
        rois = parsed.params.get("rois")
        key = batch_key(movie, _key_options(parsed), [rois] if rois else [])
        rec = Recording(movie, output, argv, key, row.where)
        _check_row(cmd, rec)
        recordings.append(rec)
        inputs.append([movie, rois])
        _one_figures_folder_each(figures, parsed.params.get("figures"), row.where)
        _one_report_each(figures, parsed.params.get("report"), parsed.params.get("qc"), row.where)
    check_outputs(recordings, inputs)
    table = summary if summary is not None else _default_summary(manifest)
    _check_summary(table, recordings, inputs)
    client = _cluster(workers, scheduler, None)  # closed when the command ends
    records = _run(recordings, client, table, overwrite, not no_progress)
    _report(records, table)
    if any(r.status == "failed" for r in records):
        raise typer.Exit(1)


def _one_figures_folder_each(seen: dict[str, str], folder: Any, where: str) -> None:
    """Two rows' figures in one folder would overwrite each other (the same names)."""
    if folder is None:
        return
    key = os.path.abspath(folder)
    if key in seen:
        raise ParameterError(
            f"{where} and {seen[key]} both write their figures to {folder}: the second would "
            "overwrite the first; give each row its own folder (a figures column, e.g. "
            "m1/figs/)"
        )
    seen[key] = where


def _one_report_each(seen: dict[str, str], report: Any, qc: Any, where: str) -> None:
    """Two rows' reports, or quality files, at one path would overwrite each other."""
    if report is None:
        return
    from ..report import QUALITY_NAME

    quality = Path(qc) if qc is not None else Path(report).with_name(QUALITY_NAME)
    for option, path in (("report", Path(report)), ("qc", quality)):
        key = "file:" + os.path.abspath(path)
        if key in seen:
            raise ParameterError(
                f"{where} and {seen[key]} both write {path} ({option}): the second would "
                "overwrite the first; give each row its own report column, and a qc column "
                "(e.g. m1/quality_control.json) when two reports share a folder"
            )
        seen[key] = where


def _check_summary(table: Path, recordings: list[Recording], inputs: list[list[Any]]) -> None:
    from .._atomic import check_not_input, check_writable

    taken = [("an input", p) for ins in inputs for p in ins if p is not None]
    taken += [(f"the output of {r.where}", r.output) for r in recordings]
    check_not_input(table, taken, name="--summary")
    if table.suffix.lower() != ".csv":
        raise ParameterError(f"--summary {table}: the summary is a CSV table; name it .csv")
    check_writable(table, name="--summary")


def _run(
    recordings: list[Recording], client: Any, table: Path, overwrite: bool, progress: bool
) -> list[BatchRecord]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..batch import run_recordings

    with Progress(
        TextColumn("recordings"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"), console=err, disable=not progress, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("recordings", total=len(recordings), last="")

        def done(record: BatchRecord) -> None:
            bar.update(task, advance=1, last=f"{record.status}: {Path(record.movie).name}")

        return run_recordings(
            recordings, run_row, client=client, summary=table, overwrite=overwrite,
            on_done=done,
        )  # fmt: skip


def _report(records: list[BatchRecord], table: Path) -> None:
    for r in records:
        if r.status == "ok":
            counts = f"{_count(r.ROIs or 0, 'ROI')}, {_count(r.frames or 0, 'frame')}"
            note = f"; {r.reason}" if r.reason else ""
            line = f"ok       {r.movie} -> {r.output} ({counts}, {r.seconds:.1f} s{note})"
            out.print(line, markup=False)
        else:
            out.print(f"{r.status:<8} {r.movie}: {r.reason}", markup=False)
    n = {s: sum(r.status == s for r in records) for s in ("ok", "skipped", "failed")}
    out.print(
        f"{_count(len(records), 'recording')}: {n['ok']} ok, {n['skipped']} skipped "
        f"(up to date), {n['failed']} failed; summary: {table}"
    )
