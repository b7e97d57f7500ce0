# SPDX-License-Identifier: MIT
"""summary.json keeps to docs/summary.schema.json for every kind of run:
a normal peak, an out-of-memory, a crash, a SIGKILL and a report on demand;
and what scripts read from it is right: the out-of-memory's Python stack
ends at the failing line, what was held then is named by line, the top
lines and stacks at the peak, and the timeline survives a SIGKILL.

Validation: with python3-jsonschema installed (Debian's package), by its
Draft 2020-12 validator; and always by the small validator below, which
implements the keywords the schema uses ($ref, type, required, properties,
items, prefixItems, minItems, maxItems, enum, minimum, anyOf), so the test
runs where jsonschema is absent and says which validated.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "summary.schema.json"

try:
    import jsonschema
except ImportError:  # the small validator alone
    jsonschema = None


def load_schema():
    with open(SCHEMA_PATH) as f:
        return json.load(f)


TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def small_validate(value, schema, root, path="$"):
    """Errors (strings) of value against schema: the keywords the schema uses."""
    if schema is True:
        return []
    if schema is False:
        return ["%s: no value allowed here" % path]
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), ref
        return small_validate(value, root["$defs"][ref[len("#/$defs/"):]], root, path)
    errors = []
    if "anyOf" in schema:
        if all(small_validate(value, s, root, path) for s in schema["anyOf"]):
            errors.append("%s: matches none of anyOf" % path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            return errors + ["%s: %r is not of type %s" % (path, value, types)]
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s: %r not in %s" % (path, value, schema["enum"]))
    if "minimum" in schema and TYPES["number"](value) and value < schema["minimum"]:
        errors.append("%s: %r < %s" % (path, value, schema["minimum"]))
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append("%s: %r is required" % (path, key))
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += small_validate(value[key], sub, root, "%s.%s" % (path, key))
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append("%s: fewer than %d items" % (path, schema["minItems"]))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append("%s: more than %d items" % (path, schema["maxItems"]))
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items", True)
            errors += small_validate(item, sub, root, "%s[%d]" % (path, i))
    return errors


def check_schema(summary):
    """Validate with every validator there is; return the names of those used."""
    schema = load_schema()
    errors = small_validate(summary, schema, schema)
    assert not errors, "small validator:\n" + "\n".join(errors[:20])
    used = ["small validator"]
    if jsonschema is not None:
        validator = jsonschema.Draft202012Validator(schema)
        errs = sorted(validator.iter_errors(summary), key=lambda e: list(e.path))
        assert not errs, "jsonschema:\n" + "\n".join(
            "%s: %s" % (list(e.path), e.message[:200]) for e in errs[:20])
        used.append("jsonschema")
    return used


def test_the_schema_is_a_draft_2020_12_schema():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    if jsonschema is None:
        pytest.skip("python3-jsonschema is not installed: the schema itself is not checked "
                    "(the small validator still checks every summary)")
    jsonschema.Draft202012Validator.check_schema(schema)


PEAK = """
def build():
    return [bytearray(1024 * 1024) for _ in range(40)]  # @build


small = bytearray(10 * 1024 * 1024)  # @small
table = build()  # @call
print(len(table))
"""


def peak_script(tmp_path):
    path = Path(tmp_path) / "peak.py"
    path.write_text(PEAK.lstrip("\n"))
    return path


def test_the_small_validator_rejects_what_breaks_the_schema(oom, tmp_path):
    """The fallback validator is not a rubber stamp."""
    run = oom.run_fil(tmp_path, peak_script(tmp_path))
    assert run.returncode == 0, run.describe()
    good = run.summary()
    check_schema(good)
    schema = load_schema()
    for broken in ({k: v for k, v in good.items() if k != "timeline"},
                   dict(good, peak_bytes="1"), dict(good, timeline=[[0.0, 1]]),
                   dict(good, top_lines=[{"label": "x"}]), dict(good, report="later"),
                   dict(good, out_of_memory={"source": "in-process"})):
        assert small_validate(broken, schema, schema), broken.keys()
        if jsonschema is not None:
            assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def check_common(oom, s):
    """What every exit report of these runs has."""
    assert s["report"] == "exit"
    assert s["children"] == []
    assert s["options"]["no_browser"] is True and s["options"]["on_oom"] == "exit"
    assert s["peak_rss_bytes"] and s["peak_rss_bytes"] >= 0.5 * s["peak_bytes"], s["peak_rss_bytes"]
    assert s["timeline"], "no timeline"
    assert len(s["top_lines"]) <= 20 and len(s["top_stacks"]) <= 20
    assert s["top_lines"] == sorted(s["top_lines"], key=lambda r: -r["bytes"])
    assert sum(st["bytes"] for st in s["top_stacks"]) <= s["peak_bytes"]


def first_line(rows, script, line):
    """The row of rows naming script:line, and its index."""
    for i, r in enumerate(rows):
        if r["file"] and Path(r["file"]).name == Path(script).name and r["line"] == line:
            return i, r
    raise AssertionError("%s:%d not in %s" % (Path(script).name, line,
                                               [r["label"] for r in rows]))


def test_peak_summary(oom, tmp_path):
    script = peak_script(tmp_path)
    run = oom.run_fil(tmp_path, script)
    assert run.returncode == 0, run.describe()
    s = run.summary()
    print("validated by", check_schema(s))
    check_common(oom, s)
    assert s["out_of_memory"] is None and s["on_demand"] is None
    i, row = first_line(s["top_lines"], script, oom.marker_line(script, "build"))
    assert i == 0 and row["own"] is True and row["called_from"] is None, row
    assert row["source"] == "return [bytearray(1024 * 1024) for _ in range(40)]  # @build", row
    oom.assert_close(row["bytes"], 40 * oom.MIB, 0.02, "top line")
    oom.assert_close(row["bytes_with_callees"], 40 * oom.MIB, 0.02, "top line with callees")
    i, row = first_line(s["top_lines"], script, oom.marker_line(script, "small"))
    assert i == 1, s["top_lines"]
    # The biggest call stack: <module> at the call, build(), (the list
    # comprehension on Pythons before 3.12), innermost last.
    top = s["top_stacks"][0]
    oom.assert_close(top["bytes"], 40 * oom.MIB, 0.02, "top stack")
    frames = [(Path(f["file"]).name, f["line"]) for f in top["frames"]]
    assert frames[0] == (script.name, oom.marker_line(script, "call")), frames
    assert frames[-1] == (script.name, oom.marker_line(script, "build")), frames
    assert top["depth"] == len(frames) and top["frames_elided"] == 0


def test_out_of_memory_summary_names_the_failing_line(oom, tmp_path):
    script = oom.program("bytes_pib.py")
    run = oom.run_fil(tmp_path, script, opts=["--memory-limit", "3G"])
    assert run.returncode == oom.EXIT_OOM, run.describe()
    s = run.summary()
    check_schema(s)
    check_common(oom, s)
    assert s["options"]["memory_limit_bytes"] == 3 * oom.GIB
    o = s["out_of_memory"]
    assert o["kind"] == "allocation-failed", o
    stack = o["python_stack"]
    assert stack, o
    assert Path(stack[-1]["file"]).name == script.name, stack
    assert stack[-1]["line"] == oom.marker_line(script, "request"), stack
    assert o["python_stack_frames_elided"] == 0
    # What was held then: the 100 MiB kept, not the 200 MiB freed.
    i, row = first_line(o["top_lines"], script, oom.marker_line(script, "keep"))
    assert i == 0, o["top_lines"]
    oom.assert_close(row["bytes"], 100 * oom.MIB, 0.02, "kept line")
    assert all(r["line"] != oom.marker_line(script, "freed") or r["bytes"] < oom.MIB
               for r in o["top_lines"])
    assert 0 < o["seconds"] <= s["duration_seconds"] + 0.01


def test_crash_summary(oom, tmp_path):
    script = oom.program("crash.py")
    run = oom.run_fil(tmp_path, script, "segv")
    assert run.returncode == -signal.SIGSEGV, run.describe()  # the launcher dies of it too
    s = run.summary()
    check_schema(s)
    check_common(oom, s)
    o = s["out_of_memory"]
    assert o["kind"] == "signal" and o["signal"] == "SIGSEGV", o
    # The crash handler cannot resolve the stack: it gives the crashing
    # thread's last allocation's, here made by the call that crashed.
    assert o["python_stack_at"] == "last allocation", o
    frames = o["python_stack"]
    assert frames[0]["file"] == str(script) and frames[0]["function"] == "<module>", frames
    assert frames[0]["line"] == oom.marker_line(script, "call"), frames
    assert frames[1]["function"] == "crash", frames
    assert frames[1]["line"] == oom.marker_line(script, "crash"), frames
    assert frames[-1]["function"] == "string_at", frames
    i, row = first_line(o["top_lines"], script, oom.marker_line(script, "block"))
    assert i == 0
    oom.assert_close(row["bytes"], 100 * oom.MIB, 0.02, "held line")


def start_holding(oom, tmp_path):
    """hold_and_sleep.py under the launcher: (launcher, program pid, out)."""
    script = oom.program("hold_and_sleep.py")
    out = Path(tmp_path) / "out"
    proc = subprocess.Popen(oom.fil_command(out, script), cwd=str(tmp_path), env=oom.base_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    line = proc.stdout.readline().decode()
    assert line.strip().isdigit(), line
    return proc, int(line), out, script


def finish(proc):
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return stderr.decode(errors="replace")


def test_sigkill_summary_keeps_the_timeline(oom, tmp_path):
    proc, pid, out, script = start_holding(oom, tmp_path)
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    stderr = finish(proc)
    assert proc.returncode == -signal.SIGKILL, stderr
    run = oom.Run(returncode=proc.returncode, stdout="", stderr=stderr,
                  dir=oom.result_dir(out), cmd=None)
    s = run.summary()
    check_schema(s)
    check_common(oom, s)
    o = s["out_of_memory"]
    assert o["kind"] == "killed" and o["python_stack"] is None, o
    # The launcher sampled the program until it was killed: the 300 MiB
    # are in the timeline to the end, and its maximum is the peak.
    tl = s["timeline"]
    assert tl[-1][1] >= 300 * oom.MIB, tl[-3:]
    oom.assert_close(max(p[1] for p in tl), s["peak_bytes"], 0.05, "timeline maximum")
    assert tl[-1][0] <= s["duration_seconds"] + 0.02
    html = run.file("index.html").read_text()
    assert '<svg class="timeline"' in html and "killed (SIGKILL)" in html


def test_on_demand_summary(oom, tmp_path):
    proc, pid, out, script = start_holding(oom, tmp_path)
    try:
        os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline:
            for d in out.iterdir() if out.exists() else []:
                f = d / "summary.json"
                if not d.is_symlink() and f.exists() and '"on-demand"' in f.read_text():
                    found = d
            time.sleep(0.02)
        assert found, "no report on demand"
    finally:
        os.kill(pid, signal.SIGKILL)
        finish(proc)
    s = oom.load_summary(found / "summary.json")
    check_schema(s)
    assert s["report"] == "on-demand" and s["exit_status"] is None and s["out_of_memory"] is None
    assert s["on_demand"]["sequence"] == 1
    oom.assert_close(s["on_demand"]["held_bytes"], 300 * oom.MIB, 0.02, "held now")
    i, row = first_line(s["top_lines"], script, oom.marker_line(script, "hold"))
    assert i == 0


def test_every_field_is_described_in_the_man_page():
    """Every key of the schema (and of its objects) is named in man/fil-profile.1."""
    schema = load_schema()
    man = (SCHEMA_PATH.parents[1] / "man" / "fil-profile.1").read_text()
    section = man[man.index(".SH SUMMARY.JSON"):man.index(".SH EXAMPLES")]
    missing = []

    def walk(node, where):
        for key, sub in node.get("properties", {}).items():
            if "\\fB%s\\fP" % key.replace("-", "\\-") not in section:
                missing.append(where + key)
            if isinstance(sub, dict) and "properties" in sub:
                walk(sub, where + key + ".")
            items = sub.get("items") if isinstance(sub, dict) else None
            if isinstance(items, dict) and "properties" in items:
                walk(items, where + key + "[].")
    walk(schema, "")
    for name in ("line", "stack", "frame"):
        walk(schema["$defs"][name], name + ".")
    assert not missing, "not described in the man page: %s" % missing
