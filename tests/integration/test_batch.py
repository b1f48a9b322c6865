"""``roitrace batch`` and ``roitrace.batch``: many recordings, a broken one among them,
reruns that skip what is up to date, and outputs that are never someone else's file."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import roitrace as rt
from roitrace.cli import app

from ..conftest import run_roitrace

runner = CliRunner()


def run(*args, cwd=None):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def summary(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Three small recordings and their labels, in the current folder."""
    monkeypatch.chdir(tmp_path)
    for i in range(3):
        sim = rt.simulate(shape=(24, 24), n_frames=30, n_cells=2, seed=i)
        sim.to_tiff(tmp_path / f"s{i}.tif")
    rt.write_rois(rt.RoiSet.from_labels(sim.labels), tmp_path / "labels.tif")
    return tmp_path


def write_manifest(path, text):
    path.write_text(text)
    return path


def test_broken_recordings_in_the_middle_then_a_rerun(folder):
    (folder / "corrupt.tif").write_bytes(b"not a tiff at all")
    rt.write_rois(rt.RoiSet.from_labels(np.eye(10, dtype=np.int32)), folder / "small.tif")
    write_manifest(
        folder / "m.csv",
        "movie,output,rois\n"
        "s0.tif,o0.nc,\n"
        "missing.tif,o1.nc,\n"
        "corrupt.tif,o2.nc,\n"
        "s1.tif,o3.nc,small.tif\n"
        "s2.tif,o4.csv,\n",
    )
    res = run("batch", "m.csv", "--rois", "labels.tif", "--neuropil-gap", 1,
              "--neuropil-width", 2, "--no-progress")  # fmt: skip
    assert res.exit_code == 1, res.output
    rows = summary(folder / "m-summary.csv")
    assert [r["status"] for r in rows] == ["ok", "failed", "failed", "failed", "ok"]
    assert list(rows[0]) == ["movie", "status", "reason", "ROIs", "frames", "seconds", "output"]
    assert "missing.tif" in rows[1]["reason"] and "\n" not in rows[1]["reason"]
    assert "TIFF" in rows[2]["reason"]
    assert "(24, 24)" in rows[3]["reason"] or "24" in rows[3]["reason"]
    assert rows[0]["ROIs"] == "2" and rows[0]["frames"] == "30"
    assert not (folder / "o1.nc").exists() and not (folder / "o3.nc").exists()
    ds = rt.load(folder / "o4.csv")
    assert len(ds.attrs["batch_key"]) == 64
    assert "Fneu" in ds

    again = run("batch", "m.csv", "--rois", "labels.tif", "--neuropil-gap", 1,
                "--neuropil-width", 2, "--no-progress")  # fmt: skip
    assert again.exit_code == 1
    assert again.output.count("up to date: made from the same inputs") == 2
    rows = summary(folder / "m-summary.csv")
    assert [r["status"] for r in rows] == ["skipped", "failed", "failed", "failed", "skipped"]
    assert (rows[0]["ROIs"], rows[0]["frames"]) == ("2", "30")  # what the output holds

    # a changed option: made again, and said so
    changed = run("batch", "m.csv", "--rois", "labels.tif", "--neuropil-gap", 1,
                  "--neuropil-width", 3, "--no-progress")  # fmt: skip
    rows = summary(folder / "m-summary.csv")
    assert [r["status"] for r in rows][::4] == ["ok", "ok"]
    assert "inputs or options changed" in rows[0]["reason"], changed.output
    assert '"width": 3' in rt.load(folder / "o0.nc").attrs["parameters"]


def test_toml_manifest_defaults_and_a_rows_own_value(folder):
    write_manifest(
        folder / "m.toml",
        '[defaults]\nrois = "labels.tif"\nhow = "median"\n\n'
        '[[recording]]\nmovie = "s0.tif"\noutput = "a.nc"\n\n'
        '[[recording]]\nmovie = "s1.tif"\noutput = "b.nc"\nhow = "mean"\nkeep-truncated = false\n',
    )
    res = run("batch", "m.toml", "--summary", "sum.csv", "--no-progress")
    assert res.exit_code == 0, res.output
    assert '"method": "median"' in rt.load(folder / "a.nc").attrs["parameters"]
    assert '"method": "mean"' in rt.load(folder / "b.nc").attrs["parameters"]
    assert [r["status"] for r in summary(folder / "sum.csv")] == ["ok", "ok"]


def test_an_output_roitrace_batch_did_not_write_is_left_alone(folder):
    (folder / "o.csv").write_text("precious, hand-made\n")
    write_manifest(folder / "m.csv", "movie,output\ns0.tif,o.csv\ns1.tif,p.csv\n")
    res = run("batch", "m.csv", "--rois", "labels.tif", "--no-progress")
    assert res.exit_code == 1
    assert (folder / "o.csv").read_text() == "precious, hand-made\n"
    assert "not written by roitrace batch" in summary(folder / "m-summary.csv")[0]["reason"]
    assert (folder / "p.csv").exists()
    res = run("batch", "m.csv", "--rois", "labels.tif", "--overwrite", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "batch_key" in rt.load(folder / "o.csv").attrs


@pytest.mark.parametrize(
    "manifest, message",
    [
        ("movie,output\ns0.tif,o.nc\ns1.tif,o.nc\n", "also the output of m.csv line 2"),
        ("movie,output\ns0.tif,x.h5\nx.h5,o.nc\n", "x.h5 is the input of m.csv line 3"),
        ("movie,output,neuropil_gapp\ns0.tif,o.nc,2\n", "did you mean 'neuropil_gap'"),
        ("movie,output,how\ns0.tif,o.nc,avg\n", "line 2: Invalid value for '--how'"),
        ("movie,output,workers\ns0.tif,o.nc,2\n", "option of roitrace batch itself"),
        ("movie,output,neuropil-gap\ns0.tif,o.nc,2\n", "line 2: give both --neuropil-gap"),
    ],
)
def test_manifest_mistakes_are_refused_before_any_work(folder, manifest, message):
    write_manifest(folder / "m.csv", manifest)
    res = run("batch", "m.csv", "--rois", "labels.tif", "--no-progress")
    assert res.exit_code == 2
    assert message in " ".join(res.output.split()), res.output
    assert not (folder / "o.nc").exists() and not (folder / "m-summary.csv").exists()
    assert (folder / "s0.tif").stat().st_size > 1000


def test_glob_form(folder):
    for i in range(2):
        (folder / f"sess{i}").mkdir()
        (folder / f"s{i}.tif").rename(folder / f"sess{i}" / "movie.tif")
        (folder / f"sess{i}" / "RoiSet.tif").write_bytes((folder / "labels.tif").read_bytes())
    res = run("batch", "sess*/movie.tif", "--rois-pattern", "{dir}/RoiSet.tif",
              "--output-pattern", "{dir}/{stem}_traces.nc", "--no-progress")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (folder / "sess1" / "movie_traces.nc").is_file()
    assert len(summary(folder / "batch-summary.csv")) == 2
    res = run("batch", "nothing*/movie.tif", "--output-pattern", "{dir}/t.nc", "--no-progress")
    assert res.exit_code == 2 and "matches no file" in res.output


def test_suite2p_folder_outputs_are_skipped_on_a_rerun(folder):
    write_manifest(folder / "m.csv", "movie,output\ns0.tif,out/\n")
    assert run("batch", "m.csv", "--rois", "labels.tif", "--no-progress").exit_code == 0
    assert (folder / "out" / "F.npy").is_file()
    res = run("batch", "m.csv", "--rois", "labels.tif", "--no-progress")
    assert res.exit_code == 0 and "up to date" in res.output


def test_workers_run_each_recording_in_a_process(folder):
    (folder / "corrupt.tif").write_bytes(b"junk")
    write_manifest(folder / "m.csv", "movie,output\ns0.tif,a.nc\ncorrupt.tif,b.nc\ns1.tif,c.nc\n")
    proc = run_roitrace("batch", "m.csv", "--rois", "labels.tif", "--workers", 2, cwd=folder)
    assert proc.returncode == 1, proc.stderr
    assert [r["status"] for r in summary(folder / "m-summary.csv")] == ["ok", "failed", "ok"]
    assert "Traceback" not in proc.stderr
    serial = rt.load(folder / "a.nc")["F"].values
    assert np.array_equal(serial, rt.extract(folder / "s0.tif", folder / "labels.tif")["F"])


def test_python_batch_on_a_client(folder):
    distributed = pytest.importorskip("distributed")
    rows = [{"movie": "s0.tif", "output": "a.nc"}, {"movie": "gone.tif", "output": "b.nc"},
            {"movie": "s1.tif", "output": "c.csv", "how": "median"}]  # fmt: skip
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=":0") as cluster:  # fmt: skip
        with distributed.Client(cluster) as client:
            done = rt.batch(rows, client=client, summary="s.csv", rois="labels.tif")
    assert [r.status for r in done] == ["ok", "failed", "ok"]
    assert "gone.tif" in done[1].reason
    assert rt.batch(rows[:1], rois="labels.tif")[0].status == "skipped"
    with pytest.raises(rt.ParameterError, match="did you mean 'neuropil_gap'"):
        rt.batch(rows, rois="labels.tif", neuropil_gapp=2)


def test_python_batch_finds_cells_by_a_threshold(folder):
    rows = [{"movie": str(folder / "s0.tif"), "output": str(folder / "auto.nc"), "auto": "true",
             "method": "otsu", "min_size": 3}]  # fmt: skip
    (record,) = rt.batch(rows, summary=folder / "auto-summary.csv")
    assert record.status == "ok", record.reason
    expected = rt.extract(folder / "s0.tif", rt.find_rois(folder / "s0.tif", method="otsu",
                                                         min_size=3))  # fmt: skip
    assert np.array_equal(rt.load(folder / "auto.nc")["F"].values, expected["F"].values)
    with pytest.raises(rt.ParameterError, match="not both"):
        rt.batch([{**rows[0], "rois": str(folder / "labels.tif")}], summary=folder / "x.csv")
    with pytest.raises(rt.ParameterError, match="auto=true"):
        rt.batch([{"movie": str(folder / "s0.tif"), "output": str(folder / "y.nc")}],
                 summary=folder / "y.csv")  # fmt: skip


def test_paths_are_the_manifests_and_reach_workers_elsewhere(folder, tmp_path_factory):
    """A manifest's relative paths are from its own folder, made absolute: a worker
    whose current folder is another one (a cluster's) finds the files."""
    sub = folder / "sub"
    sub.mkdir()
    for name in ("s0.tif", "labels.tif"):
        (sub / name).write_bytes((folder / name).read_bytes())
    write_manifest(sub / "m.csv", "movie,output,rois\ns0.tif,t.nc,labels.tif\n")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc = run_roitrace("batch", sub / "m.csv", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (sub / "t.nc").is_file() and not (elsewhere / "t.nc").exists()
    rows = [{"movie": "sub/s0.tif", "output": "sub/u.nc", "rois": "sub/labels.tif"}]
    (record,) = rt.batch(rows, summary=folder / "u.csv")  # from the current folder
    assert record.status == "ok" and record.output == str(sub / "u.nc")


def test_rows_may_not_share_a_figures_folder(folder):
    write_manifest(folder / "m.csv", "movie,output\ns0.tif,a.nc\ns1.tif,b.nc\n")
    proc = run_roitrace("batch", "m.csv", "--rois", "labels.tif", "--figures", "figs/",
                        cwd=folder)  # fmt: skip
    assert proc.returncode == 2 and "both write their figures to" in proc.stderr
    assert not (folder / "a.nc").exists()


def test_each_row_its_report_and_no_two_on_one_path(folder):
    write_manifest(
        folder / "m.csv",
        "movie,output,report,qc\ns0.tif,a.nc,rep/a.html,rep/a.json\ns1.tif,b.nc,rep/b.html,rep/b.json\n",
    )
    proc = run_roitrace("batch", "m.csv", "--rois", "labels.tif", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    for name in ("a", "b"):
        qc = json.loads((folder / "rep" / f"{name}.json").read_text())
        assert qc["report"] == f"{name}.html" and qc["recording"]["n_rois"] > 0
        assert (folder / "rep" / f"{name}.html").stat().st_size > 10_000
    # two reports in one folder share its quality_control.json: refused before any work
    write_manifest(
        folder / "m2.csv", "movie,output,report\ns0.tif,c.nc,r/c.html\ns1.tif,d.nc,r/d.html\n"
    )
    proc = run_roitrace("batch", "m2.csv", "--rois", "labels.tif", cwd=folder)
    assert proc.returncode == 2 and "quality_control.json (qc)" in proc.stderr
    assert not (folder / "c.nc").exists() and not (folder / "r").exists()


def test_a_stopped_batch_leaves_a_table_of_what_is_left(folder):
    """Stopped after the first recording (Ctrl-C), the summary still lists every
    row, those not run said so: a rerun does the rest."""
    from roitrace.batch import Recording, run_recordings

    recs = [Recording(f"s{i}.tif", str(folder / f"r{i}.nc"), {}, f"k{i}", f"row {i}")
            for i in range(3)]  # fmt: skip

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_recordings(recs, lambda rec: (2, 30), summary=folder / "s.csv", on_done=stop)
    table = summary(folder / "s.csv")
    assert [r["status"] for r in table] == ["ok", "not run", "not run"]
    assert table[0]["ROIs"] == "2" and "run it again" in table[1]["reason"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"how": "bogus"}, "how='bogus' is unknown"),
        ({"neuropil_gap": -1, "neuropil_width": 2}, "neuropil_gap must be >= 0"),
        ({"neuropil_gap": 2}, "give both neuropil_gap and neuropil_width"),
        ({"frame_rate": -3}, "frame_rate must be > 0"),
    ],
)
def test_python_batch_checks_every_row_before_any_work(folder, bad, message):
    rows = [{"movie": "s0.tif", "output": "a.nc", "rois": "labels.tif"},
            {"movie": "s1.tif", "output": "b.nc", "rois": "labels.tif", **bad}]  # fmt: skip
    with pytest.raises(rt.ParameterError, match=f"row 2: {message}"):
        rt.batch(rows, summary=folder / "s.csv")
    assert not (folder / "a.nc").exists() and not (folder / "s.csv").exists()


def test_the_rerun_key_reads_option_sources_by_name():
    """typer 0.2x has its own click: the key must not need click's ParameterSource."""
    from enum import Enum

    from roitrace.cli.batch import _key_options

    Source = Enum("Source", "DEFAULT COMMANDLINE")  # another library's enum, same names

    class Ctx:
        def __init__(self):
            self.params = {"movie": "m.tif", "how": "median", "proportion": None, "threads": 2}

        def get_parameter_source(self, name):
            return Source.COMMANDLINE if name in ("how", "threads") else Source.DEFAULT

    assert _key_options(Ctx()) == {"how": "median"}
