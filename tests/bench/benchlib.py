# SPDX-License-Identifier: MIT
"""benchlib.py - the marker lines a benchmark workload reports on stderr.

Every workload in tests/bench/ ends by calling report(), which prints
`BENCH_<KEY>=<value>` lines on stderr.  scripts/bench.py parses them, so a
figure is measured the same way with and without fil-profile: the peak RSS is
the workload's own ru_maxrss (the fil-profile launcher is the parent of the
Python process, so the launcher's wait4() would not see it directly), and the
work time excludes interpreter start-up and report writing.

Standard library only; imported from the workload's own directory (sys.path[0]).
"""

import resource
import sys
import time

_T0 = time.perf_counter()


def report(**extra):
    """Print BENCH_MAXRSS_KB, BENCH_WORK_SECONDS and any extra KEY=value on stderr."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lines = ["BENCH_MAXRSS_KB=%d" % rss_kb,
             "BENCH_WORK_SECONDS=%.6f" % (time.perf_counter() - _T0)]
    lines += ["BENCH_%s=%s" % (k.upper(), v) for k, v in extra.items()]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
