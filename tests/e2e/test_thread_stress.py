# SPDX-License-Identifier: MIT
"""Eight Python threads churn small objects at once (the tracker's lock is
taken from the first pthread_create on), each also keeping a known amount
alive until every thread is done. At the peak each thread's keeping line
holds its amount (within 2%), and the .prof total equals summary.json's peak.
"""

MIB = 1024 * 1024

SCRIPT = """
import threading

N = 8
done = threading.Barrier(N + 1)
kept = [None] * N

def work(i):
    junk = []
    for r in range(40000):
        junk.append((r, str(r)))
        if len(junk) > 500:
            junk.clear()
    kept[i] = bytearray((i + 1) * 2**20)  # KEEP
    done.wait()

threads = [threading.Thread(target=work, args=(i,)) for i in range(N)]
for t in threads:
    t.start()
done.wait()
for t in threads:
    t.join()
print("ok", sum(len(k) for k in kept) // 2**20)
"""


def test_threads_churning_together(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"ok 36\n"
    entries, summary = fp.check_peak_report(result)
    held = fp.bytes_at_line(entries, "script.py", fp.line_of(SCRIPT, "KEEP"))
    assert abs(held - 36 * MIB) <= 0.02 * 36 * MIB, fp.fmt_prof(entries)
    assert fp.prof_total(entries) == summary["peak_bytes"]
