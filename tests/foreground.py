"""Commands started as a terminal's foreground starts them, whatever started the suite."""

from __future__ import annotations

import sys

#: ``python -m exoimap`` with Ctrl-C's default action, as in a terminal's foreground. A suite
#: started in the background of a script (``make test &``, ``nohup ... &``) has SIGINT
#: ignored, and children inherit that: a command started as is would not hear the Ctrl-C a
#: test sends it.
_AS_IN_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'exoimap'; runpy.run_module('exoimap', run_name='__main__')"
)


def exoimap_command(*args: str) -> list[str]:
    """The argv of ``exoimap ARGS`` that a Ctrl-C (SIGINT) interrupts."""
    return [sys.executable, "-c", _AS_IN_A_TERMINAL, *args]
