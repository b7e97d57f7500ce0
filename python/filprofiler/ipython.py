# SPDX-License-Identifier: MIT
"""The ``%%filprofile`` cell magic for IPython and Jupyter.

In a kernel started by fil-profile (``python3 -m filprofiler install-kernel``
installs one), run::

    %load_ext filprofiler
    %%filprofile
    df = load_everything()

The cell runs as usual; then the peak-memory report of the cell is written to
``fil-result/<timestamp>/`` and its flame graph shown below the cell. The peak
is the high-water mark reached while the cell ran, and the figures are the
memory live at that moment (including memory allocated by earlier cells).
"""

import datetime
import html
import os

from filprofiler import _native


def _result_dir():
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H-%M-%S_%f")[:-3]
    path = os.path.join(os.path.abspath("fil-result"), stamp)
    os.makedirs(path)
    return path


def run_cell_profiled(run, title="Peak tracked memory usage in this cell"):
    """Call run() and write the peak report of what happened during it.

    Returns the result folder. Raises RuntimeError when memory is not being
    tracked (the kernel was not started by fil-profile).
    """
    _native.reset_peak()
    try:
        run()
    finally:
        out = _result_dir()
        _native.render_peak(out, title)
    return out


def filprofile(line, cell):
    """%%filprofile: run the cell and show its peak-memory flame graph."""
    from IPython import get_ipython
    from IPython.display import HTML, SVG, display

    if not _native.active():
        raise RuntimeError(
            "=fil-profile= error: this kernel is not running under fil-profile; "
            "use the 'Python 3 with fil-profile' kernel (python3 -m filprofiler install-kernel)")
    out = run_cell_profiled(lambda: get_ipython().run_cell(cell))
    svg = os.path.join(out, "peak-memory.svg")
    display(SVG(filename=svg))
    display(HTML('<a href="%s" target="_blank">Full report: %s</a>'
                 % (html.escape(os.path.join(out, "index.html")), html.escape(out))))
    return None


def load_ipython_extension(ipython):
    """%load_ext filprofiler registers the %%filprofile cell magic."""
    ipython.register_magic_function(filprofile, magic_kind="cell")
