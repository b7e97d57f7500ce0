# SPDX-License-Identifier: MIT
"""The connection a process keeps to the launcher's registry (its
reaping notes, a child's registration) sits at a high descriptor number
(32 below the descriptor limit, or below 1024: ~992), but the program owns
every number: one that closes all its descriptors (a daemon) and then
opens enough sockets gets that number for a socket of its own. That socket
must be left alone:

- a fork child keeps it open (before: the fork handler closed "the
  parent's connection", which was now the program's socket: the child
  lost one end of a socketpair);
- reaping a child writes nothing into it (before: each note, 24 bytes,
  went into the program's socket and came out at the other end);

and the notes still reach the launcher on a connection of their own: a
child that dies of SIGTERM after all this is listed with exit status 143.
"""

import json
import subprocess
import sys

SCRIPT = """
import os
import resource
import socket
import subprocess
import sys

subprocess.run([sys.executable, "-c", "pass"])  # a reaping: the note connection is made
os.closerange(3, 4096)                          # a daemon closes what it inherited
# The connection sits 32 below the descriptor limit, or below 1024: fill
# every number up to a little past it (and stay under the limit).
top = min(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[0]) - 16
pairs = []
while not pairs or pairs[-1][1].fileno() < top:
    pairs.append(socket.socketpair())

pid = os.fork()
if pid == 0:
    lost = []
    for a, b in pairs:
        for s in (a, b):
            try:
                os.fstat(s.fileno())
            except OSError:
                lost.append(s.fileno())
    print("fork child lost", len(lost), flush=True)
    os._exit(0)
print("fork child", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

r = subprocess.run([sys.executable, "-c",
                    "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
print("killed child", r.returncode)

received = 0
for a, b in pairs:
    for s in (a, b):
        s.setblocking(False)
        try:
            received += len(s.recv(4096))
        except BlockingIOError:
            pass
print("bytes in the program's sockets", received)
"""

EXPECTED = b"fork child lost 0\nfork child 0\nkilled child -15\nbytes in the program's sockets 0\n"


def test_program_socket_at_the_connections_number(fp, tmp_path):
    script = fp.write_script(tmp_path, SCRIPT)
    plain = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert plain.stdout == EXPECTED, plain
    proc, result = fp.run_fil(tmp_path, script)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == EXPECTED, fp.describe(proc) + proc.stdout.decode()
    summary = json.loads((result / "summary.json").read_text())
    rows = summary["children"]
    killed = [c for c in rows if c["kind"] == "exec" and "SIGTERM" in " ".join(c["command"])]
    assert len(killed) == 1, rows
    assert killed[0]["exit_status"] == 143 and killed[0]["signal"] == "SIGTERM", killed[0]
    forks = [c for c in rows if c["kind"] == "fork"]
    assert len(forks) == 1 and forks[0]["exit_status"] == 0, rows
