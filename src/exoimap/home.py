"""Where exoimap's directories are, from the environment alone.

Kept free of imports beyond :mod:`os` (platformdirs is imported only when
``$EXOIMAP_HOME`` is unset): the ``exoimap`` command asks this before it decides whether
to hand a ``sync`` to a running agent, and every millisecond there is paid by every run.
:class:`exoimap.config.Paths` is built from the same answer.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["APP", "AGENT_SOCKET", "home_dirs"]

APP = "exoimap"
#: The agent's socket, relative to the data directory.
AGENT_SOCKET = os.path.join("run", "agent.sock")


def home_dirs(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(config_dir, data_dir)``: both ``$EXOIMAP_HOME`` when set, else the XDG dirs."""
    env = os.environ if environ is None else environ
    home = env.get("EXOIMAP_HOME")
    if home:
        root = os.path.expanduser(home)
        return root, root
    import platformdirs

    return platformdirs.user_config_dir(APP), platformdirs.user_data_dir(APP)
