# SPDX-License-Identifier: MIT
"""Run the user's program inside the profiled interpreter.

The launcher starts the interpreter as
``python -c BOOTSTRAP <pkgdir> <mode> <target> <args...>``; BOOTSTRAP has
already removed <pkgdir> from sys.argv, so here sys.argv is
``['-c', mode, target, *args]``. This module makes the interpreter look as if
it had been started on the program directly (sys.argv, sys.path[0],
``__main__``, environment), starts following Python calls, and runs the code.

Profiling starts inside ``_execute``, so the frames below the user's code
(the bootstrap, this module, runpy's helpers) are never on the shadow stack:
the first frame of every report is the user's script or module.
"""

import os
import signal
import sys
import threading
import types

from filprofiler import _native

_OUR_ENV = (
    "FIL_RESULT_DIR",
    "FIL_RESULT_DISPLAY",
    "FIL_OOM_MODE",
    "FIL_OOM_DETECTION",
    "FIL_SAFETY_MARGIN",
    "FIL_VERBOSE",
)


def _restore_environment():
    """Give child processes the environment the user had."""
    for name in _OUR_ENV:
        os.environ.pop(name, None)


def _thread_hook(frame, event, arg):
    """First profile event of a new thread: switch it to the C profiler."""
    _native.start()


def _main_module(**attrs):
    main = types.ModuleType("__main__")
    main.__dict__.update(attrs)
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    return main


def _prepare(mode, target, args):
    """Return (code, globals) for the program, with sys set up as Python would."""
    if mode == "run":
        with open(target, "rb") as f:  # compile() honours coding cookies in bytes
            source = f.read()
        code = compile(source, target, "exec", dont_inherit=True)
        sys.argv = [target] + args
        sys.path[0] = os.path.dirname(os.path.realpath(target))
        main = _main_module(__file__=target, __cached__=None, __spec__=None, __loader__=None,
                            __package__=None)
    elif mode == "module":
        import runpy

        sys.path[0] = os.getcwd()
        mod_name, spec, code = runpy._get_module_details(target)
        sys.argv = [spec.origin] + args
        main = _main_module(__file__=spec.origin, __cached__=spec.cached, __spec__=spec,
                            __loader__=spec.loader, __package__=spec.parent)
    elif mode == "code":
        code = compile(target, "<string>", "exec", dont_inherit=True)
        sys.argv = ["-c"] + args
        main = _main_module(__spec__=None, __loader__=None, __package__=None)
    else:
        raise SystemExit("=fil-profile= error: unknown run mode %r" % (mode,))
    return code, main.__dict__


def _execute(code, namespace):
    threading.setprofile(_thread_hook)
    _native.start()
    exec(code, namespace)


def main():
    mode, target, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    del sys.path[0]  # the package directory BOOTSTRAP inserted; '' (for -c) is next
    _restore_environment()
    try:
        code, namespace = _prepare(mode, target, args)
    except SystemExit:
        raise
    except BaseException as e:  # e.g. module not found: report it as Python would
        print("%s: %s" % (sys.executable, e), file=sys.stderr)
        raise SystemExit(1)
    try:
        _execute(code, namespace)
    except SystemExit:
        raise
    except BaseException as e:
        tb = e.__traceback__
        # Hide this module's frames: the traceback starts at the user's code.
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        # The display uses the exception's own __traceback__ when it has one.
        sys.excepthook(type(e), e.with_traceback(tb), tb)
        if isinstance(e, KeyboardInterrupt):
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        raise SystemExit(1)
