"""Numbers shared by the compiled kernels, their numpy versions and the dispatcher."""

#: Method codes of a group in :func:`reduce_groups`.
MEAN, WEIGHTED, MEDIAN, TRIMMED = 0, 1, 2, 3
#: Pixels per stripe of the frame for the running-sum path of plain means: its
#: int32 running sums of 16-bit pixels cannot overflow (4096 * 65535 < 2**31), and
#: 8 frames of them (128 KiB) stay in a core's L2 cache.
STRIPE = 4096
#: A stripe takes the running-sum path when its runs hold more pixels than this
#: many times the pixels they cover: reading each covered pixel once and keeping
#: running sums at the runs' ends then costs less than reading every pixel of every
#: run (measured on 512 x 512 int16 frames: 2000 disks' rings, 3.6 reads per covered
#: pixel, 5 % faster by running sums; 500 disks', 1.5 reads, 15 % slower).
PREFIX_RATIO = 2.5
#: Values counted around each group's last median, for medians of integer pixels:
#: a median that moves further than half of this from one frame to the next is
#: found by selection instead.
MEDIAN_BINS = 64
METHOD_CODES = {"mean": MEAN, "weighted": WEIGHTED, "median": MEDIAN, "trimmed_mean": TRIMMED}
