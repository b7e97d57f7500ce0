# SPDX-License-Identifier: MIT
"""The peak-memory result folder on the bundled demo (tests/data/demo.py):
summary.json parses and has the documented keys, its peak_bytes equals the
sum of the .prof lines exactly, index.html links the reports it names, the
SVGs parse and the per-function figures match what the demo documents.
"""

import html.parser
import json
import subprocess

MIB = 1024 * 1024


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []
        self.title = None
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "data", "src"):
            if attrs.get(key):
                self.refs.append(attrs[key])
        self._in_title = tag == "title"

    def handle_data(self, data):
        if self._in_title:
            self.title = data

    def handle_endtag(self, tag):
        self._in_title = False


def test_demo_report(tmp_path, fp):
    demo = fp.DATA / "demo.py"
    proc, result = fp.run_fil(tmp_path, demo, cwd=fp.REPO)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout.startswith(b"demo: done")
    entries, summary = fp.check_peak_report(result)
    msg = fp.fmt_prof(entries)

    # summary.json: the documented keys with the right types.
    for key, kind in (("peak_bytes", int), ("exit_status", int), ("command", list),
                      ("python_version", str), ("call_stacks", int), ("limits", dict),
                      ("files", list)):
        assert isinstance(summary.get(key), kind), (key, summary.get(key))
    assert "out_of_memory" in summary and summary["out_of_memory"] is None
    assert summary["exit_status"] == 0
    assert summary["command"][-1] == str(demo)
    version = subprocess.run([fp.PYTHON, "-c", "import sys; print(sys.version)"],
                             stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    assert summary["python_version"] == version
    assert summary["call_stacks"] >= len(entries) - 1
    assert set(fp.PEAK_FILES) <= set(summary["files"])
    for name in summary["files"]:
        assert (result / name).is_file(), name

    # The exact equality: the .prof is the peak, line by line.
    assert summary["peak_bytes"] == fp.prof_total(entries)

    # The demo's documented shares.
    def func_bytes(func):
        return sum(n for frames, n in entries
                   if any(fp.frame_is(f, "demo.py") and fp.parse_frame(f)[2] == func for f in frames))

    assert fp.within(func_bytes("load_records"), 60 * MIB, 0.02), msg
    assert fp.within(func_bytes("build_cache"), 25 * MIB, 0.03), msg
    assert 17 * MIB <= func_bytes("build_index") <= 21 * MIB, msg
    assert func_bytes("scratch_space") < 64 * 1024, msg
    # What the demo itself holds at the peak (60 + 25 + 17 MiB), plus what the
    # interpreter holds, which differs by version (1.7 MiB on 3.9, 3 on 3.11).
    assert 102 * MIB <= summary["peak_bytes"] <= 104 * MIB + 30 * MIB

    # index.html links what exists.
    parser = _Links()
    parser.feed((result / "index.html").read_text())
    local = [r for r in parser.refs if "://" not in r and not r.startswith("#")]
    assert "peak-memory.svg" in local and "peak-memory-reversed.svg" in local, parser.refs
    for ref in local:
        assert (result / ref).is_file(), ref
    assert parser.title

    # summary.json is one JSON document (no trailing garbage).
    json.loads((result / "summary.json").read_text())


def test_prof_lines_are_unique_stacks(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, fp.DATA / "demo.py", cwd=fp.REPO)
    assert proc.returncode == 0, fp.describe(proc)
    raw = (result / "peak-memory.prof").read_text().splitlines()
    stacks = [line.rpartition(" ")[0] for line in raw]
    assert len(stacks) == len(set(stacks)), "a stack appears twice in the .prof"
    for line in raw:
        count = int(line.rpartition(" ")[2])
        assert count > 0, line


def test_a_report_that_cannot_be_written_says_so(tmp_path, fp):
    """The result folder deleted while the program runs: stderr names the
    file that could not be written and why; the program's stdout and exit
    status are its own."""
    script = """
import shutil, sys
keep = bytearray(8 * 1024 * 1024)
shutil.rmtree("fil-out")
print("ok")
sys.exit(3)
"""
    proc, _ = fp.run_fil(tmp_path, script)
    assert proc.returncode == 3, fp.describe(proc)
    assert proc.stdout == b"ok\n"
    errors = [l for l in proc.stderr.decode().splitlines() if "error: cannot write " in l]
    assert len(errors) == 1, fp.describe(proc)
    assert errors[0].startswith(fp.PREFIX + "error: cannot write " + str(tmp_path / "fil-out")), \
        errors
    assert "No such file or directory" in errors[0], errors
    assert "Wrote peak-memory report" not in proc.stderr.decode(), fp.describe(proc)


def test_a_full_disk_is_named_and_files_lists_what_is_there(tmp_path, fp):
    """On a 16 KiB file system the reports do not all fit (index.html alone
    is bigger): stderr says which file could not be written (ENOSPC), and
    summary.json's "files" lists exactly the files in the folder."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(small)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if mounted.returncode != 0:
        import pytest
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        proc, result = fp.run_fil(tmp_path, fp.DATA / "demo.py", out=small)
        assert proc.returncode == 0, fp.describe(proc)
        text = proc.stderr.decode()
        assert "No space left on device" in text and "error: cannot write " in text, text
        if result is not None and (result / "summary.json").exists():
            summary = json.loads((result / "summary.json").read_text())
            on_disk = sorted(p.name for p in result.iterdir())
            assert sorted(summary["files"]) == on_disk, (summary["files"], on_disk)
    finally:
        subprocess.run(["umount", str(small)])


def test_the_command_shown_can_be_pasted_into_a_shell(tmp_path, fp):
    """index.html's "Command:" splits (as a shell would) into exactly the
    words of the profiled command (summary.json's "command", the options of
    fil-profile itself left out), even with spaces, quotes and $ in them."""
    import html as htmllib
    import re
    import shlex
    script = tmp_path / "it's a script.py"
    script.write_text("print('ok')\n")
    proc, result = fp.run_fil(tmp_path, script, "two words", "$HOME", "")
    assert proc.returncode == 0, fp.describe(proc)
    page = (result / "index.html").read_text()
    m = re.search(r"Command: <code>(.*?)</code>", page)
    assert m, page[:2000]
    words = shlex.split(htmllib.unescape(m.group(1)))
    assert words == ["fil-profile", "run", str(script), "two words", "$HOME", ""], words
    assert words[1:] == fp.load_summary(result)["command"]


def test_a_childs_command_is_its_own(tmp_path, fp):
    """A child's index.html shows the command the program ran (its argv, as
    its summary.json's "command" says), not one of fil-profile's."""
    import html as htmllib
    import re
    import shlex
    text = ("import subprocess, sys\n"
            "subprocess.run([sys.executable, '-c', 'x = bytearray(1000)', 'an arg'], check=True)\n")
    proc, result = fp.run_fil(tmp_path, text)
    assert proc.returncode == 0, fp.describe(proc)
    (row,) = fp.load_summary(result)["children"]
    page = (result / row["folder"] / "index.html").read_text()
    m = re.search(r"Command: <code>(.*?)</code>", page)
    assert m, page[:2000]
    words = shlex.split(htmllib.unescape(m.group(1)))
    assert words == row["command"], (words, row["command"])
    assert words[1:] == ["-c", "x = bytearray(1000)", "an arg"], words
