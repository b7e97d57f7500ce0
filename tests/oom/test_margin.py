# SPDX-License-Identifier: MIT
"""The safety margin a prediction used is named where the user reads it.

Covers: in a memory cgroup limited to 400 MiB, cgroup_leak.py run with
`--safety-margin 50M` is predicted out of memory (exit 53, in-process,
kind "predicted"), stderr has one "Predicted: X left under the cgroup
limit, less than the safety margin of 50.0 MiB (--safety-margin)" line
whose X is below 50 MiB, summary.json records the 50 MiB margin, and the
leaking line holds more than 60% of (limit - margin): the margin is
honoured, not just printed.
"""

import re


def test_predicted_message_names_margin(oom, tmp_path, memcg):
    version, cg = memcg
    script = oom.program("cgroup_leak.py")
    run = oom.run_fil(tmp_path, script, opts=["--safety-margin", "50M"],
                      command=oom.in_cgroup(cg))
    assert run.returncode == oom.EXIT_OOM, run.describe()
    lines = [l for l in oom.stderr_lines(run) if l.startswith(oom.PREFIX + "Predicted: ")]
    assert len(lines) == 1, run.describe()
    m = re.match(r"^=fil-profile= Predicted: ([\d.]+) (KiB|MiB|B) left under the cgroup limit, "
                 r"less than the safety margin of 50\.0 MiB \(--safety-margin\)$", lines[0])
    assert m, lines[0]
    left = float(m.group(1)) * {"B": 1, "KiB": oom.KIB, "MiB": oom.MIB}[m.group(2)]
    assert left < 50 * oom.MIB, lines[0]
    s = run.summary()
    assert s["safety_margin_bytes"] == 50 * oom.MIB, s
    o = s["out_of_memory"]
    assert o["kind"] == "predicted" and o["limit"] == "cgroup", o
    held = oom.bytes_at(run.oom_prof(), script, oom.marker_line(script, "leak"))
    assert held > 0.6 * (oom.CG_LIMIT - 50 * oom.MIB), held
