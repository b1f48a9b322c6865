"""Numbers shared by the compiled kernels, their numpy versions and the dispatcher."""

#: Method codes of a group in :func:`reduce_groups`.
MEAN, WEIGHTED, MEDIAN, TRIMMED = 0, 1, 2, 3
#: Pixels per stripe of the frame for the running-sum path of plain means: its
#: int32 running sums of 16-bit pixels cannot overflow (4096 * 65535 < 2**31), and
#: 8 frames of them (128 KiB) stay in a core's L2 cache.
STRIPE = 4096
#: A stripe takes the running-sum path when its runs hold more pixels than this
#: many times its span: one pass over the span then costs less than reading every
#: pixel of every run (measured: ~1 ns per pixel and frame either way).
PREFIX_RATIO = 1.5
METHOD_CODES = {"mean": MEAN, "weighted": WEIGHTED, "median": MEDIAN, "trimmed_mean": TRIMMED}
