# SPDX-License-Identifier: MIT
"""The native stack of a request the interpreter itself makes and the
kernel refuses (`ulimit -Sv`): a bytearray growing through
PyObject_Realloc, bytes through PyObject_Calloc, a list's items through
PyMem_Malloc. Before, only a library's request had one (a numpy or ctypes
malloc): summary.json said `native_stack: []` and index.html "Native
stack: not recorded". Each must name the interpreter's function that
asked, in the interpreter's own binary, and the .prof must hang the failed
request under those frames, below the leaking line.
"""

import html

import pytest

# kind -> (the allocator calls that may fail, frames one of which must be
# named, whether one of those is exported: named even by a stripped binary)
KINDS = {
    "bytearray": (("PyObject_Realloc", "PyMem_Realloc"), ("PyByteArray_Resize",), True),
    "bytes": (("PyObject_Calloc",), ("_PyBytes_FromSize", "bytes_new", "_PyObject_MakeTpCall"),
              True),
    "list": (("PyMem_Malloc",), ("list_repeat",), False),
}


def _symbol(frame):
    """"PyByteArray_Resize" of "[native] PyByteArray_Resize+0x2c3 (python3.11)"."""
    return frame[len("[native] "):].split("+", 1)[0]


def _library(frame):
    return frame.rsplit("(", 1)[1].rstrip(")")


@pytest.mark.parametrize("kind", list(KINDS))
def test_interpreter_request_has_native_stack(oom, tmp_path, kind):
    calls, names, exported = KINDS[kind]
    script = oom.program("interpreter_leak.py")
    run = oom.run_fil(tmp_path, script, kind, command=oom.ulimit_sv(2000000))
    assert run.returncode == oom.EXIT_OOM, run.describe()
    oom.assert_oom_files(run)
    o = run.summary()["out_of_memory"]
    assert o["function"] in calls, o
    native = o["native_stack"]
    assert native, o
    assert all(f.startswith(oom.NATIVE) for f in native), native
    # The interpreter's own frames (python3.X or libpython3.X.so), none of
    # its eval loop (that is the Python line the report shows).
    assert all(_library(f).startswith(("python3", "libpython3")) for f in native), native
    assert not any(_symbol(f).lstrip("_").startswith("PyEval_") for f in native), native
    # A stripped interpreter (Debian's python3, not position-independent)
    # names only its exported functions: a static one is "?+0x1c2365".
    if exported or any(_symbol(f) != "?" for f in native):
        assert any(_symbol(f) in names for f in native), native
    page = run.file("index.html").read_text()
    assert "Native stack (innermost last)" in page
    assert html.escape(native[0]) in page, native[0]
    i = page.index("Native stack (innermost last)")
    assert "not recorded" not in page[i:i + 400 + sum(len(f) for f in native) * 2]
    # The .prof: the leaking line, then the native frames, then the request.
    (frames, count), = oom.failed_requests(run.oom_prof())
    assert count == o["requested_bytes"]
    leak = oom.marker_line(script, "leak")
    assert any(oom.is_frame_at(f, script, leak) for f in frames), frames
    k = frames.index(oom.last_python_frame(frames))
    assert frames[k + 1:-1] == list(reversed(native)), frames
