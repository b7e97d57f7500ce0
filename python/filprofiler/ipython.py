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

Once loaded, the extension also:

- writes each cell's code to the file the cell's code object is named after
  (ipykernel names cells ``<tmp>/ipykernel_<pid>/<hash>.py``, the file its
  debugger writes), so every report shows the cells' lines with their text;
- makes an out of memory in any cell a MemoryError in that cell (the kernel
  goes on), and shows the out-of-memory flame graph below the cell and where
  the report is; each cell that runs out of memory gets its own report, in
  ``fil-result/<the cell's start time>/``.

In a kernel that does not run under fil-profile, ``%load_ext filprofiler``
says in one sentence how to start one, and ``%%filprofile`` runs the cell
without profiling after saying it again.
"""

import datetime
import html
import json
import linecache
import os

try:
    from filprofiler import _native
except ImportError:  # no extension built for this interpreter
    _native = None

NOT_PROFILED = (
    "fil-profile is not tracking memory in this kernel: start the notebook on the "
    "\"Python 3 with fil-profile\" kernel (install it with: python3 -m filprofiler "
    "install-kernel) to profile cells with %%filprofile."
)


def _tracked():
    return _native is not None and _native.active()


def _new_folder(create):
    """A new folder fil-result/<YYYY-MM-DDTHH-MM-SS_mmm> in the current
    directory (with a suffix if that name is taken); made if create."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H-%M-%S_%f")[:-3]
    base = os.path.join(os.path.abspath("fil-result"), stamp)
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = "%s-%d" % (base, n)
    if create:
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
        out = _new_folder(create=True)
        _native.render_peak(out, title)
    return out


# ---- cell sources ----------------------------------------------------------


def _save_cell_source(name, lines):
    """Write a cell's code to the file its code object is named after, when
    that name is a path (ipykernel's), so that reports show the text of its
    lines. A file that already holds that text is left alone."""
    if not os.path.isabs(name) or not os.path.basename(os.path.dirname(name)).startswith(
            "ipykernel_"):
        return
    text = "".join(lines)
    try:
        with open(name) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    try:
        os.makedirs(os.path.dirname(name), exist_ok=True)
        with open(name, "w") as f:
            f.write(text)
    except OSError:
        pass  # no source text in the report, nothing worse


def _keep_cell_sources(shell):
    """From now on, each cell the shell compiles is saved (and those it has
    compiled so far, from IPython's own line cache)."""
    compiler = shell.compile
    if getattr(compiler, "_fil_saves_sources", False):
        return
    cache = compiler.cache

    def cache_and_save(transformed_code, number=0, raw_code=None):
        name = cache(transformed_code, number, raw_code)
        entry = linecache.cache.get(name)
        if entry:
            _save_cell_source(name, entry[2])
        return name

    compiler.cache = cache_and_save
    compiler._fil_saves_sources = True
    for name, entry in list(getattr(linecache, "_ipython_cache", {}).items()):
        _save_cell_source(name, entry[2])


# ---- out of memory in a cell ----------------------------------------------


class _OutOfMemory:
    """Arms the out-of-memory dump for each cell and shows the report of a
    cell that ran out of memory.

    Each top-level cell arms the dump into a folder of its own (named when
    the cell starts, made only if it runs out of memory); a cell run by a
    magic inside it (%%filprofile) is part of it. `shown` is set when the
    magic has already shown the report.
    """

    def __init__(self, shell):
        self.shell = shell
        self.depth = 0
        self.folder = None
        self.dumps = 0
        self.shown = False

    def arm(self, folder):
        """The next out of memory is dumped into folder."""
        self.folder = folder
        self.dumps = _native.oom_dumps()
        self.shown = False
        _native.oom_rearm(folder)

    def dumped(self):
        """Whether the cell armed last ran out of memory."""
        return _native.oom_dumps() > self.dumps

    def pre_run_cell(self, *info):
        if self.depth == 0:
            self.arm(_new_folder(create=False))
        self.depth += 1

    def post_run_cell(self, *result):
        self.depth = max(self.depth - 1, 0)  # the cell %load_ext ran in had no pre_run_cell
        if self.depth == 0:
            if self.dumped() and not self.shown:
                show_out_of_memory(self.folder)
            self.arm(_new_folder(create=False))  # between cells: a folder of its own too


def show_out_of_memory(folder):
    """Below the cell: what ran out, where the report is, the flame graph."""
    from IPython.display import HTML, SVG, display

    svg = os.path.join(folder, "out-of-memory.svg")
    try:
        with open(os.path.join(folder, "summary.json")) as f:
            reason = json.load(f)["out_of_memory"]["reason"]
    except (OSError, ValueError, KeyError, TypeError):
        reason = "out of memory"
    line = "This cell ran out of memory (%s); the report is in %s" % (reason, folder)
    display({"text/plain": line,
             "text/html": '<p>%s; the report is in <a href="%s" target="_blank">%s</a></p>'
             % (html.escape("This cell ran out of memory (%s)" % reason),
                html.escape(svg), html.escape(folder))}, raw=True)
    if os.path.exists(svg):
        display(SVG(filename=svg))


_session = None  # the _OutOfMemory of this kernel, once loaded


def filprofile(line, cell):
    """%%filprofile: run the cell and show its peak-memory flame graph (or,
    if it ran out of memory, its out-of-memory flame graph)."""
    from IPython import get_ipython
    from IPython.display import HTML, SVG, display

    shell = get_ipython()
    if not _tracked():
        print(NOT_PROFILED)
        shell.run_cell(cell)
        return None
    session = _session or _OutOfMemory(shell)  # registered without %load_ext: no hooks
    out = _new_folder(create=True)
    session.arm(out)
    _native.reset_peak()
    try:
        shell.run_cell(cell)
    finally:
        if session.dumped():
            session.shown = True
            show_out_of_memory(out)
        else:
            _native.render_peak(out, "Peak tracked memory usage in this cell")
            display(SVG(filename=os.path.join(out, "peak-memory.svg")))
            display(HTML('<a href="%s" target="_blank">Full report: %s</a>'
                         % (html.escape(os.path.join(out, "index.html")), html.escape(out))))
    return None


def load_ipython_extension(ipython):
    """%load_ext filprofiler registers the %%filprofile cell magic; in a
    kernel under fil-profile it also keeps the cells' sources and turns an
    out of memory into a MemoryError of the cell, with its report shown."""
    global _session
    ipython.register_magic_function(filprofile, magic_kind="cell")
    if not _tracked():
        print(NOT_PROFILED)
        return
    _keep_cell_sources(ipython)
    if _session is None:
        _session = _OutOfMemory(ipython)
        ipython.events.register("pre_run_cell", _session.pre_run_cell)
        ipython.events.register("post_run_cell", _session.post_run_cell)
        _session.arm(_new_folder(create=False))


def unload_ipython_extension(ipython):
    """%unload_ext / %reload_ext filprofiler: stop watching cells."""
    global _session
    if _session is not None:
        ipython.events.unregister("pre_run_cell", _session.pre_run_cell)
        ipython.events.unregister("post_run_cell", _session.post_run_cell)
        _session = None
