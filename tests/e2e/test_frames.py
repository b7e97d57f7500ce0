# SPDX-License-Identifier: MIT
"""Where call stacks start: every .prof stack that has Python frames starts
with the user's script (or, with `-m`, the user's module), never with the
profiler's code or the runpy frames Python runs `-m` through; `-m pkg` and
`-m module` run like `python3 -m` (same sys.argv, same output).
"""

import json
import subprocess

MIB = 1024 * 1024

HELPER = """
import json

TABLE = [bytearray(1024 * 1024) for _ in range(6)]  # AT_IMPORT


def build(n):
    return [str(i) * 3 for i in range(n)]  # BUILD
"""

SCRIPT = """
import helper_mod


def gen():
    for _ in range(4):
        yield bytearray(2 * 1024 * 1024)  # GEN


class Holder:
    def __init__(self):
        self.items = list(gen())  # LIST_GEN
        self.strings = helper_mod.build(200_000)  # CALL_BUILD


exec(compile("blob = bytearray(5 * 1024 * 1024)", "<generated>", "exec"))  # EXEC
h = Holder()  # HOLDER
print(len(h.items), len(helper_mod.TABLE))
"""

# The profiler's own code and the runpy frames Python runs `-m` through.
# (A `<string>` frame is no marker: exec()ed code, e.g. namedtuple's, is
# the program's as much as in plain Python.)
BOOTSTRAP_MARKERS = ("runpy", "_run.py", "filprofiler")


def _assert_no_bootstrap(fp, entries, first_file):
    for frames, n in entries:
        if frames == [fp.NO_PYTHON_STACK]:
            continue
        assert fp.frame_is(frames[0], first_file), \
            "stack does not start with %s: %s (%d bytes)" % (first_file, frames, n)
        for f in frames:
            assert not any(m in f for m in BOOTSTRAP_MARKERS), "bootstrap frame %r in %s" % (f, frames)


def test_stacks_start_at_the_script(tmp_path, fp):
    fp.write_script(tmp_path, HELPER, name="helper_mod.py")
    proc, result = fp.run_fil(tmp_path, SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"4 6\n"
    entries, _ = fp.check_peak_report(result)
    _assert_no_bootstrap(fp, entries, "script.py")
    msg = fp.fmt_prof(entries)

    # The helper module's import-time memory, below the script's import line.
    line = fp.line_of(HELPER, "AT_IMPORT")
    got = fp.bytes_at_line(entries, "helper_mod.py", line)
    assert fp.within(got, 6 * MIB, 0.05), "helper line %d: %d\n%s" % (line, got, msg)
    assert fp.bytes_with_frame(entries, "script.py", 1) >= 6 * MIB, msg

    line = fp.line_of(SCRIPT, "GEN")
    got = fp.bytes_last_frame(entries, "script.py", line)
    assert fp.within(got, 8 * MIB, 0.02), "generator line %d: %d\n%s" % (line, got, msg)
    stacks = fp.stacks_at_line(entries, "script.py", line)
    funcs = [fp.parse_frame(f)[2] for f in max(stacks, key=lambda s: s[1])[0]]
    method = "Holder.__init__" if fp.python_version() >= (3, 11) else "__init__"
    assert funcs == ["<module>", method, "gen"], funcs

    # Code compiled from a string: its frame is kept under the script's line.
    exec_line = fp.line_of(SCRIPT, "EXEC")
    blob = [(f, n) for f, n in entries if f and fp.frame_is(f[-1], "<generated>", 1)]
    assert blob and fp.within(sum(n for _, n in blob), 5 * MIB, 0.02), msg
    assert all(fp.frame_is(f[0], "script.py", exec_line) for f, _ in blob), blob


PKG_MAIN = """
import json
import sys

data = bytearray(25 * 1024 * 1024)  # PKG_HELD
print(json.dumps(sys.argv))
print(__name__, __package__)
"""

MODULE = """
import sys


def main():
    return bytearray(15 * 1024 * 1024)  # MOD_HELD


keep = main()
print(sys.argv[1:], __name__)
"""


def _direct(fp, tmp_path, *args):
    return subprocess.run([fp.PYTHON, *args], cwd=str(tmp_path), env=fp.base_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def test_run_package_main(tmp_path, fp):
    pkg = tmp_path / "pkgdemo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    fp.write_script(pkg, PKG_MAIN, name="__main__.py")
    args = ("a", "-o", "--help", "x y")
    proc, result = fp.run_fil(tmp_path, None, *args, module="pkgdemo")
    assert proc.returncode == 0, fp.describe(proc)
    direct = _direct(fp, tmp_path, "-m", "pkgdemo", *args)
    assert proc.stdout == direct.stdout
    argv = json.loads(proc.stdout.decode().splitlines()[0])
    assert argv[1:] == list(args)
    assert argv[0] == str(pkg / "__main__.py")

    entries, _ = fp.check_peak_report(result)
    _assert_no_bootstrap(fp, entries, "pkgdemo/__main__.py")
    line = fp.line_of(PKG_MAIN, "PKG_HELD")
    got = fp.bytes_last_frame(entries, "pkgdemo/__main__.py", line)
    assert fp.within(got, 25 * MIB, 0.02), fp.fmt_prof(entries)


def test_run_plain_module(tmp_path, fp):
    fp.write_script(tmp_path, MODULE, name="plainmod.py")
    proc, result = fp.run_fil(tmp_path, None, "--flag", "-m", "v", module="plainmod")
    assert proc.returncode == 0, fp.describe(proc)
    direct = _direct(fp, tmp_path, "-m", "plainmod", "--flag", "-m", "v")
    assert proc.stdout == direct.stdout == b"['--flag', '-m', 'v'] __main__\n"

    entries, _ = fp.check_peak_report(result)
    _assert_no_bootstrap(fp, entries, "plainmod.py")
    line = fp.line_of(MODULE, "MOD_HELD")
    got = fp.bytes_last_frame(entries, "plainmod.py", line)
    assert fp.within(got, 15 * MIB, 0.02), fp.fmt_prof(entries)


# Between an import statement and the module body it runs, Python's import
# system (importlib's bootstrap: _find_and_load, exec_module,
# _call_with_frames_removed...) is five or more frames per level, which
# tracebacks leave out; so do the reports. A nested import's memory is on
# the import lines that led to it, and what the import system itself
# allocates (the module's code, its spec) on the import statement.
IMPORTS_SCRIPT = """
import importlib

import pkgimp  # IMP_PKG
from pkgimp import late  # IMP_FROM

dyn = importlib.import_module("dynmod")  # IMP_DYN
print(len(pkgimp.sub.BLOCK), len(late.BLOCK), len(dyn.BLOCK))
"""
IMPORTS_PKG = """
from . import sub  # PKG_SUB
"""
IMPORTS_SUB = """
BLOCK = bytearray(7 * 1024 * 1024)  # SUB_BLOCK
"""
IMPORTS_LATE = """
BLOCK = bytearray(5 * 1024 * 1024)  # LATE_BLOCK
"""
IMPORTS_DYN = """
BLOCK = bytearray(3 * 1024 * 1024)  # DYN_BLOCK
"""


def test_import_system_frames_are_left_out(tmp_path, fp):
    pkg = tmp_path / "pkgimp"
    pkg.mkdir()
    fp.write_script(pkg, IMPORTS_PKG, name="__init__.py")
    fp.write_script(pkg, IMPORTS_SUB, name="sub.py")
    fp.write_script(pkg, IMPORTS_LATE, name="late.py")
    fp.write_script(tmp_path, IMPORTS_DYN, name="dynmod.py")
    proc, result = fp.run_fil(tmp_path, IMPORTS_SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"%d %d %d\n" % (7 * MIB, 5 * MIB, 3 * MIB)
    entries, summary = fp.check_peak_report(result)
    msg = fp.fmt_prof(entries)
    for frames, _ in entries:
        for f in frames:
            assert "importlib._bootstrap" not in f and "importlib/_bootstrap" not in f, msg
    for row in summary["top_lines"]:
        assert "_bootstrap" not in row["label"], row

    def only_stack(file, marker, text):
        line = fp.line_of(text, marker)
        stacks = [(f, n) for f, n in entries if f and fp.frame_is(f[-1], file, line)]
        assert len(stacks) == 1, "%s:%d: %s\n%s" % (file, line, stacks, msg)
        return stacks[0]

    frames, n = only_stack("pkgimp/sub.py", "SUB_BLOCK", IMPORTS_SUB)
    assert fp.within(n, 7 * MIB, 0.01), msg
    assert len(frames) == 3, frames
    assert fp.frame_is(frames[0], "script.py", fp.line_of(IMPORTS_SCRIPT, "IMP_PKG")), frames
    assert fp.frame_is(frames[1], "pkgimp/__init__.py", fp.line_of(IMPORTS_PKG, "PKG_SUB")), frames

    frames, n = only_stack("pkgimp/late.py", "LATE_BLOCK", IMPORTS_LATE)
    assert fp.within(n, 5 * MIB, 0.01), msg
    assert len(frames) == 2, frames
    assert fp.frame_is(frames[0], "script.py", fp.line_of(IMPORTS_SCRIPT, "IMP_FROM")), frames

    # importlib.import_module is the program's call: shown, the bootstrap under it is not.
    frames, n = only_stack("dynmod.py", "DYN_BLOCK", IMPORTS_DYN)
    assert fp.within(n, 3 * MIB, 0.01), msg
    assert fp.frame_is(frames[0], "script.py", fp.line_of(IMPORTS_SCRIPT, "IMP_DYN")), frames
    assert [fp.parse_frame(f)[2] for f in frames[1:]] == ["import_module", "<module>"], frames


# A program's own file that shares a name with the files Python runs `-m`
# through (runpy.py, importlib/_bootstrap.py) is the program's: its lines
# are shown, not hidden or swallowed into [No Python stack] as Python's
# own runpy is.
NAMESAKE = """
def build():
    return bytearray(30 * 1024 * 1024)  # NS_BUILD


held = bytearray(20 * 1024 * 1024)  # NS_TOP
more = build()  # NS_CALL
print(len(held) + len(more))
"""


def _assert_namesake_lines(fp, proc, result, rel):
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"%d\n" % (50 * MIB)
    entries, _ = fp.check_peak_report(result)
    msg = fp.fmt_prof(entries)
    top = fp.line_of(NAMESAKE, "NS_TOP")
    got = fp.bytes_last_frame(entries, rel, top)
    assert fp.within(got, 20 * MIB, 0.01), "%s:%d: %d\n%s" % (rel, top, got, msg)
    build = fp.line_of(NAMESAKE, "NS_BUILD")
    stacks = [(f, n) for f, n in entries if f and fp.frame_is(f[-1], rel, build)]
    assert fp.within(sum(n for _, n in stacks), 30 * MIB, 0.01), msg
    call = fp.line_of(NAMESAKE, "NS_CALL")
    for frames, _ in stacks:
        assert fp.frame_is(frames[0], rel, call), frames


def test_script_named_runpy(tmp_path, fp):
    script = fp.write_script(tmp_path, NAMESAKE, name="runpy.py")
    proc, result = fp.run_fil(tmp_path, script)
    _assert_namesake_lines(fp, proc, result, "runpy.py")


def test_module_named_like_the_import_system(tmp_path, fp):
    for rel in ("tools/runpy.py", "tools/importlib/_bootstrap.py"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").write_text("")
        fp.write_script(path.parent, NAMESAKE, name=path.name)
        module = rel[:-3].replace("/", ".")
        out = tmp_path / ("out-" + path.parent.name)
        proc, result = fp.run_fil(tmp_path, None, module=module, out=out)
        _assert_namesake_lines(fp, proc, result, rel)


# `-m pkg.mod` with pkg in a zip file on PYTHONPATH: the package's
# __init__, which Python imports through zipimport on the way to the module
# (3.9: zipimport's own load_module frames), is the program's code.
ZIP_INIT = "init_held = bytearray(10 * 1024 * 1024)  # ZIP_INIT\n"
ZIP_MOD = "keep = bytearray(20 * 1024 * 1024)  # ZIP_MOD\nprint('ok')\n"


def test_run_module_from_a_zip(tmp_path, fp):
    import zipfile
    archive = tmp_path / "lib.zip"
    with zipfile.ZipFile(str(archive), "w") as z:
        z.writestr("zpkg/__init__.py", ZIP_INIT)
        z.writestr("zpkg/mod.py", ZIP_MOD)
    proc, result = fp.run_fil(tmp_path, None, module="zpkg.mod", env={"PYTHONPATH": str(archive)})
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"ok\n"
    entries, _ = fp.check_peak_report(result)
    msg = fp.fmt_prof(entries)
    got = fp.bytes_last_frame(entries, "lib.zip/zpkg/__init__.py", 1)
    assert fp.within(got, 10 * MIB, 0.01), "__init__.py:1: %d\n%s" % (got, msg)
    got = fp.bytes_last_frame(entries, "lib.zip/zpkg/mod.py", 1)
    assert fp.within(got, 20 * MIB, 0.01), "mod.py:1: %d\n%s" % (got, msg)
