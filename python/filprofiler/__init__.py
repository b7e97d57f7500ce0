# SPDX-License-Identifier: MIT
"""fil-profile: find out where a Python program's peak memory goes.

Run a program under the profiler with the ``fil-profile`` command (or
``python3 -m filprofiler``)::

    fil-profile run script.py ARGS...
    fil-profile python -m package.module ARGS...

When the program exits, ``fil-result/<timestamp>/index.html`` shows which
lines held memory at the moment of the peak; when it runs out of memory, an
``out-of-memory.svg`` shows what was allocated at that point.

This module is imported inside the profiled interpreter before the user's
program runs, so it stays tiny: it only defines the version.
"""

__version__ = "0.1.0"
