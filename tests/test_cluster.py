"""The cluster path (roitrace.cluster): the same numbers as the local engine, from
frame ranges run as Dask tasks that open the movie on their worker.

Most tests use a LocalCluster of threads (processes=False: fast on 2 cores); the
class at the end uses worker processes (pickling, thread counts, the kernels' disk
cache, a worker killed mid-run)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import tifffile
from hypothesis import given
from hypothesis import strategies as st

import roitrace
from roitrace import Execution, _kernels
from roitrace.cluster import connect, frame_ranges, run_tasks
from roitrace.errors import ClusterError, ParameterError

distributed = pytest.importorskip("distributed", reason="the [cluster] extra is not installed")

AGGREGATIONS = ("mean", "median", "weighted", "trimmed_mean")
RING = {"gap": 1, "width": 2}


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def movie_file(tmp_path_factory):
    """203 frames (a prime: no task size divides it) of 40 x 50 uint16 with three
    cells whose brightness changes, as a TIFF."""
    rng = np.random.default_rng(0)
    data = rng.poisson(200, (203, 40, 50)).astype(np.uint16)
    data[:, 5:10, 5:10] += (50 * np.sin(np.arange(203) / 7)[:, None, None] + 60).astype(np.uint16)
    path = tmp_path_factory.mktemp("cluster") / "movie.tif"
    tifffile.imwrite(path, data)
    return path


@pytest.fixture(scope="module")
def labels():
    lab = np.zeros((40, 50), np.int32)
    lab[5:10, 5:10] = 1
    lab[20:26, 30:37] = 2
    lab[30:35, 10:14] = 3
    lab[8:12, 8:12] = 4  # overlaps cell 1
    return lab


def same(a, b) -> bool:
    """Every variable and coordinate of two results equal to the last bit."""
    names = set(a.data_vars) | set(a.coords)
    assert names == set(b.data_vars) | set(b.coords)
    return all(
        np.array_equal(a[n].values, b[n].values, equal_nan=a[n].dtype.kind == "f") for n in names
    )


# -- one recording: the same bits -----------------------------------------------------
@pytest.mark.parametrize("method", AGGREGATIONS)
def test_extract_gives_the_same_bits_for_every_aggregator(client, movie_file, labels, method):
    local = roitrace.extract(movie_file, labels, method=method, neuropil=RING)
    ex = Execution(client=client, task_frames=17)  # 203 = 11 * 17 + 16
    remote = roitrace.extract(movie_file, labels, method=method, neuropil=RING, execution=ex)
    assert same(local, remote)
    assert remote.attrs["source"] == local.attrs["source"]


def test_brightness_weights_and_dropped_overlaps_give_the_same_bits(client, movie_file, labels):
    options = dict(method="weighted", weights="brightness", overlap="drop", neuropil=RING)
    local = roitrace.extract(movie_file, labels, **options)
    remote = roitrace.extract(movie_file, labels, **options, client=client)
    assert same(local, remote)


@pytest.mark.parametrize("frames", [(5, 190), np.arange(3, 200, 4)], ids=["range", "indices"])
def test_a_frame_selection_gives_the_same_bits(client, movie_file, labels, frames):
    local = roitrace.extract(movie_file, labels, neuropil=RING, frames=frames)
    ex = Execution(client=client, task_frames=13, frames=frames)
    assert same(local, roitrace.extract(movie_file, labels, neuropil=RING, execution=ex))


def test_an_array_in_memory_is_scattered_once(client, labels):
    data = np.random.default_rng(1).poisson(50, (61, 40, 50)).astype(np.int16)
    local = roitrace.extract(data, labels, method="median")
    remote = roitrace.extract(data, labels, method="median", client=client)
    assert same(local, remote)


def test_a_big_array_in_memory_is_not_sent(client, labels, monkeypatch):
    import roitrace.cluster

    monkeypatch.setattr(roitrace.cluster, "MAX_SENT_BYTES", 1000)
    data = np.zeros((10, 40, 50), np.uint16)
    with pytest.raises(ParameterError, match="give its path instead"):
        roitrace.extract(data, labels, client=client)


@pytest.mark.parametrize(
    "method", ["mean", "std", "max", "min", "correlation", "median", "percentile"]
)
def test_projections_give_the_same_bits(client, movie_file, method):
    q = {"q": 20.0} if method == "percentile" else {}
    local = roitrace.projection(movie_file, method, **q)
    remote = roitrace.projection(movie_file, method, **q, execution=Execution(client=client))
    assert remote.dtype == local.dtype
    np.testing.assert_array_equal(remote, local)


def test_median_bands_of_a_given_size(client, movie_file):
    local = roitrace.projection(movie_file, "median")
    remote = roitrace.projection(movie_file, "median", band_bytes=203 * 50 * 2 * 3, client=client)
    np.testing.assert_array_equal(remote, local)


def test_float_movies_and_the_global_signal_agree_to_rounding(client, movie_file):
    """Sums of floats depend on their order: the cluster's agree to ~1e-15."""
    data = tifffile.imread(movie_file).astype(np.float32) / 7
    for method in ("mean", "std", "correlation"):
        local = roitrace.projection(data, method)
        remote = roitrace.projection(data, method, client=client)
        np.testing.assert_allclose(remote, local, rtol=1e-12, atol=1e-12)
    local = roitrace.projection(movie_file, "correlation", subtract_global=True)
    remote = roitrace.projection(movie_file, "correlation", subtract_global=True, client=client)
    np.testing.assert_allclose(remote, local, rtol=0, atol=1e-12)


def test_std_shift_keeps_integer_sums_exact(movie_file):
    """The variance's shift is the first frame (an integer for integer movies): the
    std no longer depends on the chunk size."""
    a = roitrace.projection(movie_file, "std", chunk_frames=7)
    b = roitrace.projection(movie_file, "std", chunk_frames=203)
    np.testing.assert_array_equal(a, b)
    data = tifffile.imread(movie_file)
    np.testing.assert_allclose(a, data.std(axis=0), rtol=1e-12)


def test_a_hdf5_movie_is_cut_at_its_chunks(client, tmp_path, labels):
    import h5py

    data = np.random.default_rng(2).poisson(80, (95, 40, 50)).astype(np.uint16)
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("imaging", data=data, chunks=(10, 40, 50))
    movie = roitrace.open_movie(path)
    assert movie.frame_chunk == 10
    seen = []
    ex = Execution(client=client, task_frames=15)
    for (_, frames), n in run_tasks(ex, movie, _jobs(movie, ex), _frame_count):
        seen.append((frames.start, frames.stop, n))
    assert sorted(seen) == [(0, 20, 20), (20, 40, 20), (40, 60, 20), (60, 80, 20), (80, 95, 15)]
    assert same(roitrace.extract(path, labels), roitrace.extract(path, labels, client=client))


def _jobs(movie, ex):
    from roitrace.engine import task_jobs

    return task_jobs(movie, ex)[0]


def _frame_count(movie, ex, frames):
    return movie.read(frames.start, frames.stop).shape[0]


def _threads_seen(movie, ex, job):
    import numba

    from roitrace.engine import kernel_threads

    with kernel_threads(ex.threads):
        return ex.threads, numba.get_num_threads()


def test_each_task_uses_its_workers_thread_count(client, movie_file):
    if not _kernels.available():
        pytest.skip("thread counts are the compiled kernels' (numba is off)")
    movie = roitrace.open_movie(movie_file)
    ex = Execution(client=client, task_frames=50)
    seen = {v for _, v in run_tasks(ex, movie, _jobs(movie, ex), _threads_seen)}
    assert seen == {(1, 1)}  # 1 thread per worker: no oversubscription
    ex = Execution(client=client, task_frames=50, threads=1)
    assert {v for _, v in run_tasks(ex, movie, _jobs(movie, ex), _threads_seen)} == {(1, 1)}


# -- frame ranges ---------------------------------------------------------------------
@given(
    start=st.integers(0, 50),
    length=st.integers(1, 300),
    task=st.integers(1, 60),
    chunk=st.integers(1, 16),
)
def test_frame_ranges_cover_the_selection_once_at_chunk_boundaries(start, length, task, chunk):
    sel = slice(start, start + length)
    ranges = frame_ranges(sel, task_frames=task, frame_chunk=chunk)
    frames = np.concatenate([np.arange(f.start, f.stop) for _, f in ranges])
    np.testing.assert_array_equal(frames, np.arange(sel.start, sel.stop))
    assert [off for off, _ in ranges] == [f.start - start for _, f in ranges]
    assert all(f.start % chunk == 0 for _, f in ranges[1:])  # inner cuts on chunk edges


def test_frame_ranges_of_selected_indices():
    idx = np.array([1, 4, 9, 16, 25, 36, 49])
    ranges = frame_ranges(idx, task_frames=3)
    assert [off for off, _ in ranges] == [0, 3, 6]
    np.testing.assert_array_equal(np.concatenate([f for _, f in ranges]), idx)


# -- mistakes and failures ------------------------------------------------------------
def test_options_that_need_a_cluster():
    with pytest.raises(ParameterError, match="task_frames is for a cluster"):
        Execution(task_frames=10)
    with pytest.raises(ParameterError, match="not a Dask client"):
        Execution(client="tcp://host:8786")


def test_steps_that_run_only_locally_say_so(client, movie_file):
    mask = np.zeros((40, 50), bool)
    mask[5:10, 5:10] = True
    with pytest.raises(ParameterError, match="cannot run on a cluster: leave out client="):
        roitrace.pixel_traces(movie_file, mask, execution=Execution(client=client))


def test_a_file_the_workers_cannot_see(client, movie_file, labels, tmp_path):
    path = tmp_path / "only-here.tif"
    path.write_bytes(movie_file.read_bytes())
    movie = roitrace.open_movie(path)  # open here; then gone from the workers' view
    path.unlink()
    with pytest.raises(ClusterError, match="workers cannot see this file"):
        roitrace.extract(movie, labels, client=client)


def test_an_unreachable_scheduler_is_one_clear_error():
    t0 = time.perf_counter()
    with pytest.raises(ClusterError, match=r"no Dask scheduler answered at tcp://127\.0\.0\.1:9"):
        connect(scheduler="tcp://127.0.0.1:9", timeout=1)
    assert time.perf_counter() - t0 < 20


def test_connect_takes_one_kind_of_cluster():
    with pytest.raises(ParameterError, match="scheduler= or workers=, not both"):
        connect()
    with pytest.raises(ParameterError, match="threads= applies to local workers"):
        connect(scheduler="tcp://127.0.0.1:9", threads=2)
    with pytest.raises(ParameterError, match="workers"):
        connect(workers=0)


# -- worker processes -----------------------------------------------------------------
class TestWorkerProcesses:
    """Real worker processes: what crosses a process boundary is pickled."""

    @pytest.fixture(scope="class")
    @classmethod
    def processes(cls):
        with connect(workers=2, threads=1) as c:
            yield c

    def test_the_same_bits_from_worker_processes(self, processes, movie_file, labels):
        local = roitrace.extract(movie_file, labels, method="weighted", neuropil=RING)
        remote = roitrace.extract(
            movie_file, labels, method="weighted", neuropil=RING, client=processes
        )
        assert same(local, remote)

    def test_workers_use_their_own_threads_and_the_kernels_disk_cache(
        self, processes, movie_file, labels
    ):
        if not _kernels.available():
            pytest.skip("the kernels' disk cache is numba's (numba is off)")
        roitrace.extract(movie_file, labels, method="median", client=processes)
        env = processes.run(lambda: os.environ.get("NUMBA_NUM_THREADS"))
        assert set(env.values()) == {"1"}

        def stats():
            from numba.core.registry import CPUDispatcher

            from roitrace import _kernels

            kernels = [
                d for d in vars(_kernels._compiled()).values() if isinstance(d, CPUDispatcher)
            ]
            hits = sum(sum(d.stats.cache_hits.values()) for d in kernels)
            return hits, sum(sum(d.stats.cache_misses.values()) for d in kernels)

        for hits, misses in processes.run(stats).values():
            assert misses == 0  # loaded from numba's cache on disk, not compiled again
            assert hits >= 1

    def test_a_worker_killed_mid_run_is_replaced_and_the_result_complete(
        self, processes, tmp_path, labels
    ):
        data = np.random.default_rng(3).poisson(300, (3001, 40, 50)).astype(np.uint16)
        path = tmp_path / "long.tif"
        tifffile.imwrite(path, data)
        local = roitrace.extract(path, labels, method="median", neuropil=RING)
        pids = processes.run(os.getpid)
        ex = Execution(client=processes, task_frames=20, chunk_frames=4)
        box: dict = {}
        run = threading.Thread(
            target=lambda: box.update(
                ds=roitrace.extract(path, labels, method="median", neuropil=RING, execution=ex)
            )
        )
        run.start()
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            busy = {w: ts for w, ts in processes.processing().items() if ts}
            victim = next((w for w, ts in busy.items() if any("run_part" in t for t in ts)), None)
            time.sleep(0.005)
        assert victim is not None, "no task started"
        os.kill(pids[victim], signal.SIGKILL)
        run.join(120)
        assert not run.is_alive()
        assert victim not in processes.scheduler_info()["workers"]  # it did die
        assert same(local, box["ds"])


# -- the command line -----------------------------------------------------------------
def test_cli_workers_give_the_same_traces(movie_file, labels, tmp_path):
    from conftest import run_roitrace

    np.save(tmp_path / "labels.npy", labels)
    ring = ["--neuropil-gap", 1, "--neuropil-width", 2, "--how", "median"]
    here = run_roitrace("extract", movie_file, "--rois", tmp_path / "labels.npy", *ring,
                        "-o", tmp_path / "local.nc")  # fmt: skip
    there = run_roitrace("extract", movie_file, "--rois", tmp_path / "labels.npy", *ring,
                         "--workers", 2, "--threads", 1, "-o", tmp_path / "remote.nc")  # fmt: skip
    assert here.returncode == 0 and there.returncode == 0, there.stderr
    assert there.stderr == ""  # no log lines of Dask's workers starting and stopping
    assert same(roitrace.load(tmp_path / "local.nc"), roitrace.load(tmp_path / "remote.nc"))


@pytest.mark.parametrize(
    "options, message",
    [
        (["--scheduler", "tcp://127.0.0.1:9"], "no Dask scheduler answered at tcp://127.0.0.1:9"),
        (["--workers", 2, "--scheduler", "tcp://127.0.0.1:9"], "give --workers or --scheduler"),
        (["--scheduler", "tcp://127.0.0.1:9", "--threads", 2], "--threads does not apply"),
        (["--workers", 0], "--workers must be >= 1"),
        (["--threads", 0], "--threads must be >= 1"),
    ],
)
def test_cli_cluster_mistakes_are_one_line(movie_file, tmp_path, options, message):
    from conftest import run_roitrace

    proc = run_roitrace("project", movie_file, "-o", tmp_path / "mean.tif", *options)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "mean.tif").exists()


# -- real data ------------------------------------------------------------------------
def test_a_real_recording_gives_the_same_bits(client, mouse_path):
    """Thunder's mouse cortex (500 frames of 64 x 64 int16), cells found by a threshold."""
    rois = roitrace.find_rois(mouse_path, method="otsu", min_size=5)
    options = dict(method="weighted", neuropil={"gap": 2, "width": 3})
    local = roitrace.extract(mouse_path, rois, **options)
    remote = roitrace.extract(
        mouse_path, rois, **options, execution=Execution(client=client, task_frames=77)
    )
    assert local.sizes["roi"] >= 10
    assert same(local, remote)
    for method in ("std", "correlation", "median"):
        np.testing.assert_array_equal(
            roitrace.projection(mouse_path, method, client=client),
            roitrace.projection(mouse_path, method),
        )
