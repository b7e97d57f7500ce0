# SPDX-License-Identifier: MIT
"""``python3 -m filprofiler ARGS...``: the same as ``fil-profile ARGS...``.

Replaces this interpreter with the ``fil-profile`` launcher, which then runs
the program with this same interpreter (FIL_PYTHON=sys.executable). The
launcher is $FIL_PROFILE_BIN if set, else the one installed next to this
package: the package lives in <prefix>/lib/fil-profile/python/filprofiler,
the launcher in <prefix>/bin/fil-profile.
"""

import os
import sys


def _launcher():
    explicit = os.environ.get("FIL_PROFILE_BIN")
    if explicit:
        return explicit
    package_dir = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(
        os.path.join(package_dir, "..", "..", "..", "..", "bin", "fil-profile")
    )


def main():
    launcher = _launcher()
    if sys.executable:
        os.environ["FIL_PYTHON"] = sys.executable  # putenv: inherited by execv
    try:
        os.execv(launcher, [launcher] + sys.argv[1:])
    except OSError as e:
        sys.stderr.write(
            "=fil-profile= error: cannot run %s: %s (set FIL_PROFILE_BIN to the "
            "fil-profile launcher)\n" % (launcher, e.strerror)
        )
        sys.exit(127)


if __name__ == "__main__":
    main()
