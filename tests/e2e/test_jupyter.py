# SPDX-License-Identifier: MIT
"""Jupyter: real kernels, driven with jupyter_client as a notebook would.

The profiled kernel is the one `python3 -m filprofiler install-kernel`
installs (into a temporary prefix), started by jupyter_client's
KernelManager; each cell is an execute_request and what the cell shows is
the iopub messages answering it. What a user sees is checked:

- a %%filprofile report starts at the cell's own lines, with their source
  text, and none of the kernel's machinery (ipykernel, IPython, tornado,
  asyncio) is above them or at the graph's first level;
- a cell that runs out of memory (the kernel under --memory-limit) gets a
  MemoryError, shows the out-of-memory graph and names the report's folder,
  the kernel runs the next cell, and a second out of memory in a later cell
  gets a second report;
- on a kernel that does not run under fil-profile, %load_ext filprofiler
  prints one sentence saying how to start one, and no traceback;
- a program of the user's named ipykernel_launcher.py is not taken for a
  kernel.

Skipped, with the reason, where FIL_PYTHON has no ipykernel or the test's
interpreter no jupyter_client (Debian: python3-ipykernel, which brings
python3-jupyter-client).
"""

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

MIB = 1024 * 1024
# Frames of the kernel's machinery, by file.
MACHINERY = re.compile(r"(^|/)(ipykernel|IPython|tornado|asyncio|zmq|traitlets|jupyter_client)/"
                       r"|ipykernel_launcher\.py")
CELL = re.compile(r"/ipykernel_\d+/\d+\.py$")


@pytest.fixture
def jupyter(fp, tmp_path, monkeypatch):
    """Skip without ipykernel / jupyter_client; isolate Jupyter's folders."""
    probe = subprocess.run([fp.PYTHON, "-c", "import ipykernel"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("ipykernel is not installed for %s (Debian: python3-ipykernel)" % fp.PYTHON)
    try:
        import jupyter_client  # noqa: F401
    except ImportError:
        pytest.skip("jupyter_client is not installed for %s (Debian: python3-jupyter-client)"
                    % sys.executable)
    for name in ("PYTHONPATH", "PYTHONMALLOC", "PYTHONSTARTUP", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return tmp_path


def install_profiled_kernel(fp, prefix, extra_opts=()):
    """`python3 -m filprofiler install-kernel --prefix` from the build tree;
    extra launcher options go right after the launcher. The spec's path."""
    proc = subprocess.run([fp.PYTHON, "-m", "filprofiler", "install-kernel", "--prefix",
                           str(prefix)], env=dict(os.environ, PYTHONPATH=str(fp.PKG_PYTHONPATH)),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    path = Path(prefix) / "share/jupyter/kernels/fil-profile/kernel.json"
    spec = json.loads(path.read_text())
    spec["argv"][1:1] = list(extra_opts)
    path.write_text(json.dumps(spec))
    return spec


def install_plain_kernel(fp, prefix):
    """An ordinary kernel of FIL_PYTHON, with the package importable."""
    folder = Path(prefix) / "share/jupyter/kernels/plain"
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [fp.PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "plain", "language": "python",
        "env": {"PYTHONPATH": str(fp.PKG_PYTHONPATH)}}))


class Kernel:
    """A running kernel and a client; run(code) executes one cell."""

    def __init__(self, name, cwd):
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name=name)
        self.km.start_kernel(cwd=str(cwd))
        self.process = self.km.provisioner.process
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code, timeout=120):
        """(reply content, [iopub content with its msg_type as "type"])."""
        msg_id = self.kc.execute(code)
        outputs = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                break
            if kind in ("stream", "error", "display_data", "execute_result"):
                outputs.append(dict(msg["content"], type=kind))
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"], outputs

    def stop(self):
        """Shut the kernel down as Jupyter does; its exit status."""
        self.kc.stop_channels()
        self.km.shutdown_kernel()
        return self.process.wait(timeout=120)


def texts(outputs, kind="stream"):
    return "".join(o.get("text", "") for o in outputs if o["type"] == kind)


def displayed(outputs, mime):
    return [o["data"][mime] for o in outputs if o["type"] == "display_data" and mime in o["data"]]


def stacks_from(fp, prof, first):
    """The (frames, bytes) of prof whose first frame is in file `first`."""
    return [(f, n) for f, n in fp.parse_prof(prof) if fp.parse_frame(f[0])
            and fp.parse_frame(f[0])[0] == first]


def test_filprofile_report_starts_at_the_cells_lines(fp, jupyter):
    install_profiled_kernel(fp, jupyter)
    k = Kernel("fil-profile", jupyter)
    try:
        reply, out = k.run("%load_ext filprofiler")
        assert reply["status"] == "ok" and not out, out
        reply, _ = k.run("def make(n):\n    return bytearray(n)")
        assert reply["status"] == "ok"
        reply, out = k.run("%%filprofile\nkept = make(40 * 2**20)\nbig = bytearray(60 * 2**20)")
        assert reply["status"] == "ok", reply
        assert displayed(out, "image/svg+xml"), out
        links = [re.search(r"Full report: ([^<]+)<", h) for h in displayed(out, "text/html")]
        folder = Path(html.unescape([m for m in links if m][0].group(1)))
    finally:
        assert k.stop() == 0
    entries, _ = fp.check_peak_report(folder)
    big = [(f, n) for f, n in entries if fp.within(n, 60 * MIB, 0.02)]
    assert len(big) == 1, fp.fmt_prof(entries)
    frames = big[0][0]
    # The cell's line 2 is the whole stack: the first level, nothing above.
    assert len(frames) == 1, frames
    cell_file, line, func = fp.parse_frame(frames[0])
    assert CELL.search(cell_file) and line == 2 and func == "<module>", frames
    # The 40 MiB: the cell's line 1, then the function the earlier cell defined.
    kept = stacks_from(fp, folder / "peak-memory.prof", cell_file)
    made = [f for f, n in kept if fp.within(n, 40 * MIB, 0.02)]
    assert len(made) == 1 and fp.parse_frame(made[0][0])[1] == 1, fp.fmt_prof(kept)
    assert len(made[0]) == 2 and fp.parse_frame(made[0][1])[2] == "make", made
    # Nothing of the kernel's machinery in the cell's stacks, nor at the
    # first level: there only cells, the kernel's entry line (the kernel's
    # own memory, one box) and [No Python stack].
    assert not [f for f, _ in kept if any(MACHINERY.search(x) for x in f)], fp.fmt_prof(kept)
    for f, n in entries:
        first = fp.parse_frame(f[0])
        assert f[0] == fp.NO_PYTHON_STACK or CELL.search(first[0]) or (
            first[0].endswith("/ipykernel_launcher.py") and first[2] == "<module>"), f
    # The cell's lines with their source text: in the graph and the table.
    svg = html.unescape((folder / "peak-memory.svg").read_text())
    for text in ("big = bytearray(60 * 2**20)", "kept = make(40 * 2**20)", "return bytearray(n)"):
        assert text in svg, text
    page = html.unescape((folder / "index.html").read_text())
    assert "big = bytearray(60 * 2**20)" in page and "return bytearray(n)" in page


def test_out_of_memory_in_a_cell_is_a_memory_error(fp, jupyter):
    install_profiled_kernel(fp, jupyter, ["--memory-limit", "3G"])
    k = Kernel("fil-profile", jupyter)
    try:
        reply, out = k.run("%load_ext filprofiler")
        assert reply["status"] == "ok", out
        reply, out = k.run("held = bytearray(50 * 2**20)\nbig = bytearray(8 * 2**30)")
        # MemoryError in the cell, the out-of-memory graph and the folder below it.
        assert reply["status"] == "error" and reply["ename"] == "MemoryError", reply
        notes = displayed(out, "text/plain")
        said = [t for t in notes if t.startswith("This cell ran out of memory")]
        assert len(said) == 1, out
        first = Path(said[0].rsplit("the report is in ", 1)[1])
        assert displayed(out, "image/svg+xml"), out
        # The kernel goes on: the next cell runs and gets memory.
        reply, out = k.run("del held\nx = bytearray(20 * 2**20)\nprint('alive', len(x))")
        assert reply["status"] == "ok" and texts(out) == "alive 20971520\n", (reply, out)
        assert not displayed(out, "image/svg+xml"), out
        # A second out of memory, in a %%filprofile cell: a second report.
        reply, out = k.run("%%filprofile\nmore = bytearray(9 * 2**30)")
        assert any(o["type"] == "error" and o["ename"] == "MemoryError" for o in out), out
        said = [t for t in displayed(out, "text/plain")
                if t.startswith("This cell ran out of memory")]
        assert len(said) == 1, out
        second = Path(said[0].rsplit("the report is in ", 1)[1])
        reply, out = k.run("print('still alive')")
        assert texts(out) == "still alive\n", out
    finally:
        status = k.stop()
    assert status == 0  # not 53: the kernel was not ended by the dump
    assert first != second
    for folder, size in ((first, 8 << 30), (second, 9 << 30)):
        entries = fp.parse_prof(folder / "out-of-memory.prof")
        fp.check_svg(folder / "out-of-memory.svg")
        summary = fp.load_summary(folder)
        assert summary["out_of_memory"]["requested_bytes"] >= size, summary["out_of_memory"]
        failed = [f for f, _ in entries if f[-1].startswith("[failed request]")]
        assert len(failed) == 1 and CELL.search(fp.parse_frame(failed[0][0])[0]), failed
        # The cell's line, the interpreter's native frames of bytearray(n)
        # (the request is the interpreter's own), then the request.
        assert len(failed[0]) >= 3, failed
        assert all(f.startswith("[native] ") for f in failed[0][1:-1]), failed
    # The first report: the 50 MiB the cell held at its line 1.
    entries = fp.parse_prof(first / "out-of-memory.prof")
    held = [f for f, n in entries if fp.within(n, 50 * MIB, 0.02)]
    assert len(held) == 1 and len(held[0]) == 1 and fp.parse_frame(held[0][0])[1] == 1, \
        fp.fmt_prof(entries)


def test_load_ext_on_an_ordinary_kernel_says_how_to_start_one(fp, jupyter):
    install_plain_kernel(fp, jupyter)
    k = Kernel("plain", jupyter)
    try:
        reply, out = k.run("%load_ext filprofiler")
        cell_magic, magic_out = k.run("%%filprofile\nprint(6 * 7)")
    finally:
        k.stop()
    assert reply["status"] == "ok", reply
    assert [o["type"] for o in out] == ["stream"], out
    said = texts(out)
    assert said.count("\n") == 1 and said.endswith(".\n"), said
    assert "Python 3 with fil-profile" in said and "python3 -m filprofiler install-kernel" in said
    # %%filprofile there says it again and runs the cell unprofiled.
    assert cell_magic["status"] == "ok", cell_magic
    assert texts(magic_out) == said + "42\n", magic_out
    assert not [o for o in magic_out if o["type"] == "error"]


CELLS = """
import sys


def run_cell(source, name, ns):
    exec(compile(source, name, "exec"), ns)  # what IPython does, deep in the kernel


def kernel_machinery(depth, source, name, ns):
    if depth:
        return kernel_machinery(depth - 1, source, name, ns)
    run_cell(source, name, ns)


ns = {}
folder = "/tmp/ipykernel_%d" % 4000000  # a name only: the file need not exist
kernel_machinery(5, "def make(n):\\n    return bytearray(n)\\n", folder + "/11.py", ns)
kernel_machinery(5, "a = make(30 * 2**20)\\nb = bytearray(20 * 2**20)\\n", folder + "/22.py", ns)
kernel_machinery(3, "c = bytearray(10 * 2**20)\\n", "<ipython-input-3-0123456789ab>", ns)
"""


def test_cell_code_is_a_root_wherever_it_runs(fp, tmp_path):
    """On every interpreter (no Jupyter needed): code compiled under a
    cell's name is a root of its own, whatever runs it; a function a cell
    defined shows under the line that called it."""
    proc, result = fp.run_fil(tmp_path, CELLS)
    assert proc.returncode == 0, fp.describe(proc)
    entries, _ = fp.check_peak_report(result)

    def stacks(n):
        return [f for f, b in entries if fp.within(b, n * MIB, 0.02)]

    assert stacks(20) == [["/tmp/ipykernel_4000000/22.py:2 (<module>)"]], fp.fmt_prof(entries)
    assert stacks(30) == [["/tmp/ipykernel_4000000/22.py:1 (<module>)",
                           "/tmp/ipykernel_4000000/11.py:2 (make)"]], fp.fmt_prof(entries)
    assert stacks(10) == [["<ipython-input-3-0123456789ab>:1 (<module>)"]], fp.fmt_prof(entries)


OWN_LAUNCHER = """
def make(n):
    return bytearray(n)

held = make(30 * 2**20)
more = bytearray(20 * 2**20)
"""


@pytest.mark.parametrize("how", ["script", "module"])
def test_a_program_of_its_own_named_ipykernel_launcher(fp, tmp_path, how):
    """A user's own ipykernel_launcher.py (not an installed ipykernel) is
    an ordinary program: its lines are shown (before: it was taken for a
    kernel's entry, and everything it ran was one box at its first line)."""
    path = fp.write_script(tmp_path, OWN_LAUNCHER, "ipykernel_launcher.py")
    if how == "script":
        proc, result = fp.run_fil(tmp_path, path)
    else:
        proc, result = fp.run_fil(tmp_path, None, module="ipykernel_launcher", cwd=tmp_path)
    assert proc.returncode == 0, fp.describe(proc)
    entries, _ = fp.check_peak_report(result)
    big = [f for f, b in entries if fp.within(b, 30 * MIB, 0.02)]
    assert len(big) == 1 and [x.rsplit("/", 1)[-1] for x in big[0]] == [
        "ipykernel_launcher.py:4 (<module>)", "ipykernel_launcher.py:2 (make)"], fp.fmt_prof(entries)
    assert fp.within(fp.bytes_last_frame(entries, "ipykernel_launcher.py", 5), 20 * MIB, 0.02), \
        fp.fmt_prof(entries)


def test_installed_kernel_runs_the_magic(fp, jupyter):
    """make install into a prefix, for a venv of FIL_PYTHON (which sees
    Debian's ipykernel): the kernel install-kernel writes, with nothing on
    PYTHONPATH anywhere, runs that interpreter under the installed launcher,
    and %load_ext + %%filprofile work in it."""
    from test_install import make_install

    venv = jupyter / "venv"
    made = subprocess.run([fp.PYTHON, "-m", "venv", "--without-pip", "--system-site-packages",
                           str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip("%s cannot make a venv: %s" % (fp.PYTHON, made.stderr.strip()))
    python, prefix = str(venv / "bin" / "python"), jupyter / "prefix"
    make_install(fp, "PREFIX=%s" % prefix, "PYTHONS=%s" % python)
    proc = subprocess.run([python, "-m", "filprofiler", "install-kernel", "--prefix",
                           str(jupyter)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    k = Kernel("fil-profile", jupyter)
    try:
        reply, out = k.run("import sys, filprofiler\nprint(sys.executable)\n"
                           "print(filprofiler.__file__)")
        assert texts(out).splitlines() == [
            python, str(prefix / "lib/fil-profile/python/filprofiler/__init__.py")], out
        reply, out = k.run("%load_ext filprofiler")
        assert reply["status"] == "ok" and not out, out
        reply, out = k.run("%%filprofile\nx = bytearray(30 * 2**20)")
        assert reply["status"] == "ok" and displayed(out, "image/svg+xml"), out
        links = [re.search(r"Full report: ([^<]+)<", h) for h in displayed(out, "text/html")]
        folder = Path(html.unescape([m for m in links if m][0].group(1)))
    finally:
        assert k.stop() == 0
    entries, _ = fp.check_peak_report(folder)
    held = [f for f, n in entries if fp.within(n, 30 * MIB, 0.02)]
    assert len(held) == 1 and len(held[0]) == 1 and CELL.search(held[0][0].split(":")[0]), \
        fp.fmt_prof(entries)
