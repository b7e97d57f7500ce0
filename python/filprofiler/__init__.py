# SPDX-License-Identifier: MIT
"""fil-profile: find out where a Python program's peak memory goes.

Run a program under the profiler with the ``fil-profile`` command (or
``python3 -m filprofiler``)::

    fil-profile run script.py ARGS...
    fil-profile python -m package.module ARGS...

When the program exits, ``fil-result/<timestamp>/index.html`` shows which
lines held memory at the moment of the peak; when it runs out of memory, an
``out-of-memory.svg`` shows what was allocated at that point.

In a Jupyter kernel started by fil-profile, ``%load_ext filprofiler`` adds
the ``%%filprofile`` cell magic, and a cell that runs out of memory gets a
MemoryError with its report shown (see filprofiler.ipython).

This module is imported inside the profiled interpreter before the user's
program runs, so it stays tiny.
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """``%load_ext filprofiler``: register the ``%%filprofile`` cell magic."""
    from filprofiler.ipython import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    """``%unload_ext filprofiler``."""
    from filprofiler.ipython import unload_ipython_extension as unload

    unload(ipython)
