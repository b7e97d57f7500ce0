# SPDX-License-Identifier: MIT
"""Never kill a healthy program (DESIGN invariant 7): programs that reserve
or probe memory they do not use run under the profiler exactly as under
plain Python.

Covers (healthy_mappings.py, each compared with plain PYTHON on the same
input: same stdout, same exit status, only the ordinary peak report and
"out_of_memory": null):
  - a MAP_HUGETLB probe failing with ENOMEM (no huge pages reserved), then
    the fallback to ordinary pages;
  - a 64 GiB MAP_NORESERVE reservation with 10 MiB written;
  - a private anonymous mapping of MemTotal bytes, which the default
    heuristic overcommit grants, with 10 MiB written (and the same through
    the mmap module, MAP_SHARED);
  - mremap(2) that cannot grow a mapping in place (ENOMEM, no MREMAP_MAYMOVE);
  - in a memory cgroup limited to 400 MiB: a 1 GiB mapping with 10 MiB
    written (more than the cgroup's room reserved, little of it used).
Before the fix each of these was killed with exit 53. The real cases stay
caught: test_postmortem.py (cgroup prediction and the kernel's OOM kill) and
test_oom_limits.py / test_oom_leaks.py (RLIMIT_AS failures).
"""

import pytest


def overcommit_mode():
    with open("/proc/sys/vm/overcommit_memory") as f:
        return int(f.read())


def compare(oom, tmp_path, how, command=None):
    script = oom.program("healthy_mappings.py")
    plain = oom.run_plain(tmp_path, script, how, command=command)
    assert plain.returncode == 0, plain.describe()
    run = oom.run_fil(tmp_path, script, how, command=command)
    oom.assert_healthy_as_plain(run, plain)
    return plain, run


def test_hugetlb_probe_falls_back(oom, tmp_path):
    plain, _ = compare(oom, tmp_path, "hugetlb")
    if "no huge pages: ENOMEM" not in plain.stdout:
        pytest.skip("huge pages are reserved here: the failing probe cannot be exercised")


@pytest.mark.parametrize("how", ["noreserve", "big", "bigshared"])
def test_reserved_not_used(oom, tmp_path, how):
    if overcommit_mode() == 2:
        pytest.skip("vm.overcommit_memory=2 refuses these reservations to plain Python too")
    plain, _ = compare(oom, tmp_path, how)
    assert "wrote 10485760" in plain.stdout, plain.describe()


def test_mremap_cannot_grow_in_place(oom, tmp_path):
    plain, _ = compare(oom, tmp_path, "mremap")
    assert "next page taken: True\ncannot grow in place: ENOMEM" in plain.stdout, plain.describe()


def test_cgroup_reservation_not_used(oom, tmp_path, memcg):
    version, cg = memcg
    plain, run = compare(oom, tmp_path, "cgroup", command=oom.in_cgroup(cg))
    assert "mapped 1 GiB\nwrote 10485760" in plain.stdout, plain.describe()
    assert run.summary()["limits"]["cgroup_limit"] == oom.CG_LIMIT, run.summary()["limits"]
