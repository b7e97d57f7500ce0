# SPDX-License-Identifier: MIT
"""What the end-to-end and out-of-memory suites share: every program they
start begins with the signals they send at their default actions.

An ignored signal stays ignored across fork and exec, and a test run may
start with some ignored: a background job of a non-interactive shell has
SIGINT and SIGQUIT ignored, nohup ignores SIGHUP. A program started from
such a run ignores a test's SIGINT, profiled or not, as it should, and the
test waited a minute for an exit that never came. So the run puts them
back before the first program starts; a test that wants one ignored
ignores it in its own child.
"""

import signal


def pytest_configure(config):
    for sig in (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
