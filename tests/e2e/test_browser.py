# SPDX-License-Identifier: MIT
"""The reports in a real browser: Debian's chromium, headless, driven by
playwright-core (tests/e2e/browser_check.js).

A numpy program's peak-memory.svg, peak-memory-reversed.svg and index.html
(whose graphs are <object>s running the same script) are loaded; nothing may
be requested outside file:// and no script error may happen. In each graph:
clicking the widest box of `make_big` zooms into it (it spans the drawable
width, its children are rescaled by the same factor, boxes outside it are
hidden, boxes above it span the width), Escape puts every box back, '/'
focuses the search field, and searching highlights exactly the boxes whose
tooltip has the text and reports the matched share, each byte counted once,
computed here independently from the SVG. index.html's first screen starts
with the headline and the top lines table naming the program's lines.
With scripts off the graph is still complete: the program's lines, with
their size and source text, are on the first screen.
Screenshots go to the test's folder (and to FIL_SCREENSHOT_DIR if set).

Skipped, with the reason, when chromium, node or playwright-core is missing
(scripts/bootstrap installs them: chromium from Debian, playwright-core from
npm into ~/.cache/fil-profile-test).
"""

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("FIL_CHROMIUM") or "/usr/bin/chromium"
NS = "{http://www.w3.org/2000/svg}"
RANGE = 1180.0  # drawable width of a 1200 px graph
SCRIPT = """
import numpy as np

def make_big():
    return np.ones((4096, 2048))            # @big: 64 MiB

def make_small():
    return [np.zeros(100_000) for _ in range(10)]

def main():
    a = make_big()
    b = make_small()
    c = a * 2                               # @double: 64 MiB
    print(a.sum() + c.sum() + sum(x.sum() for x in b))

main()
"""


def playwright_dirs():
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    here = Path(__file__).resolve().parents[2]
    for d in (os.environ.get("FIL_PLAYWRIGHT_DIR"), here / "build" / "browser" / "node_modules",
              cache / "fil-profile-test" / "node_modules"):
        if d and (Path(d) / "playwright-core" / "package.json").is_file():
            return str(d)
    return None


@pytest.fixture(scope="module")
def browser_env():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium not installed at %s (scripts/bootstrap installs it)" % CHROMIUM)
    if shutil.which("node") is None:
        pytest.skip("node not installed (scripts/bootstrap installs nodejs)")
    modules = playwright_dirs()
    if modules is None:
        pytest.skip("playwright-core not found (scripts/bootstrap installs it with npm into "
                    "~/.cache/fil-profile-test)")
    return modules


@pytest.fixture(scope="module")
def numpy_report(tmp_path_factory, fp):
    if not fp.has_numpy():
        pytest.skip("numpy is not installed for %s" % fp.PYTHON)
    tmp = tmp_path_factory.mktemp("browser")
    proc, result = fp.run_fil(tmp, SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    fp.check_peak_report(result)
    return tmp, result


def svg_boxes(path):
    root = ET.parse(str(path)).getroot()
    out = []
    for g in root.iter(NS + "g"):
        if g.get("class") != "frame":
            continue
        lines = g.find(NS + "title").text.split("\n")
        out.append({"o": int(g.get("data-o")), "b": int(g.get("data-b")),
                    "l": int(g.get("data-l")), "about": "\n".join(lines[:-1]).lower()})
    return out, int(root.get("data-total"))


def expected_search(boxes, query):
    hits = [b for b in boxes if b["l"] > 0 and query.lower() in b["about"]]
    hits.sort(key=lambda b: (b["o"], b["l"]))
    total, end = 0, -1
    for h in hits:
        if h["o"] >= end:
            total += h["b"]
            end = h["o"] + h["b"]
    return len(hits), total


def run_browser(modules, tmp, pages, static_url=None, static_shot=None):
    job = {"chromium": CHROMIUM, "profile": str(tmp / "chrome-profile"), "pages": pages,
           "static_url": static_url, "static_shot": static_shot}
    (tmp / "job.json").write_text(json.dumps(job))
    env = dict(os.environ, NODE_PATH=modules)
    proc = subprocess.run(["node", str(Path(__file__).with_name("browser_check.js")),
                           str(tmp / "job.json")], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=180)
    if proc.returncode != 0 and b"Failed to launch" in proc.stderr:
        pytest.skip("chromium cannot start here: %s" % proc.stderr.decode()[:500])
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def check_zoom(r):
    before, zoomed, reset = r["before"], r["zoomed"], r["reset"]
    t = r["target"]
    assert t >= 0, "no make_big box"
    tb = before[t]
    assert abs(zoomed[t]["w"] - RANGE) < 0.5 and abs(zoomed[t]["x"] - 10) < 0.5, zoomed[t]
    factor = RANGE / tb["w"]
    assert factor > 1.2, "the target was already nearly full width"
    inside = above = hidden = 0
    for b, z in zip(before, zoomed):
        within = b["o"] >= tb["o"] and b["o"] + b["b"] <= tb["o"] + tb["b"]
        if within and b["l"] > tb["l"]:
            inside += 1
            assert not z["hidden"] and abs(z["w"] - b["w"] * factor) < 0.5 + 0.01 * z["w"], (b, z)
        elif b["l"] < tb["l"] and b["o"] <= tb["o"] and b["o"] + b["b"] >= tb["o"] + tb["b"]:
            above += 1
            assert not z["hidden"] and abs(z["w"] - RANGE) < 0.5, (b, z)
        elif b is not tb:
            hidden += z["hidden"]
            assert z["hidden"], (b, z)
    assert inside >= 1 and above >= 1 and hidden >= 1, (inside, above, hidden)
    for b, z in zip(before, reset):
        assert not z["hidden"] and abs(z["w"] - b["w"]) < 0.05 and abs(z["x"] - b["x"]) < 0.05
    assert "make_big" in r["details"]


def check_search(r, svg_path, query):
    boxes, total = svg_boxes(svg_path)
    n, matched = expected_search(boxes, query)
    assert n > 0
    assert sum(b["hit"] for b in r["searched"]) == n
    for b in r["searched"]:
        if b["hit"]:
            assert b["fill"] == "rgb(208, 48, 143)", b
    assert int(r["matched_bytes"]) == matched
    assert ("(%.2f%%" % (100.0 * matched / total)) in r["matched_text"], r["matched_text"]
    assert r["search_focused"]


def test_reports_in_chromium(browser_env, numpy_report):
    tmp, result = numpy_report
    shots = Path(os.environ.get("FIL_SCREENSHOT_DIR") or tmp)
    shots.mkdir(parents=True, exist_ok=True)
    pages = [
        {"url": (result / "peak-memory.svg").as_uri(), "graph": "svg", "target": "make_big",
         "query": "numeric.py", "shot": str(shots / "numpy-peak-memory.png"),
         "shot_after": str(shots / "numpy-peak-memory-search.png")},
        {"url": (result / "peak-memory-reversed.svg").as_uri(), "graph": "svg",
         "target": "make_big", "query": "np.ones", "shot": str(shots / "numpy-reversed.png")},
        {"url": (result / "index.html").as_uri(), "graph": "html", "svg": "peak-memory.svg",
         "target": "make_big", "query": "make_", "shot": str(shots / "numpy-index.png")},
    ]
    results = run_browser(browser_env, tmp, pages, (result / "peak-memory.svg").as_uri(),
                          str(shots / "numpy-scripts-off.png"))
    static = results.pop()
    queries = {p["url"]: p["query"] for p in pages}
    for r, svg in zip(results, ["peak-memory.svg", "peak-memory-reversed.svg",
                                "peak-memory.svg"]):
        assert not r["errors"], r["errors"]
        assert not r["requests"], r["requests"]
        check_zoom(r)
        check_search(r, result / svg, queries[r["url"]])
    for p in pages:
        assert Path(p["shot"]).stat().st_size > 10000
    # index.html: the answer first.
    text = results[2]["first_screen"]
    assert text.startswith("Peak tracked memory usage: "), text[:200]
    top = text.index("Top lines")
    assert "numpy/core/numeric.py:205 (ones)" in text[top:top + 1500], text[top:top + 1500]
    assert "main" in text[top:top + 1500]

    # Scripts off: the drawing alone, readable, on the first screen: the
    # program's own lines with their sizes and source text, and the hint.
    assert static["ready"] is None and not static["search"]
    assert "hover over a box" in static["hint"]
    big = [t for t in static["texts"] if "(make_big)" in t["text"]]
    assert big and big[0]["visible"] and big[0]["top"] < 900, big
    assert "64.0 MiB" in big[0]["text"] and "return np.ones(" in big[0]["text"], big
