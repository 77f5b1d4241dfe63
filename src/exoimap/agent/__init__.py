"""``exoimap agent``: a resident process that runs ``exoimap sync`` for the ``exoimap`` command.

A cold ``exoimap sync`` spends most of a no-change run starting Python and importing the
toolkit. An agent, started once with ``exoimap agent start``, keeps all that loaded; the
``exoimap`` command then hands it a ``sync`` over a Unix socket (:mod:`.client`, which
imports almost nothing) and relays its output and exit code. The agent runs each request
exactly as the command would (:mod:`.server`), one at a time, with the environment it was
started with; it is opt-in, listens on a socket only its user can reach, and exits after
an idle timeout or when the installed exoimap changes.

This package's ``__init__`` and :mod:`.wire` and :mod:`.client` import only the standard
library's lightest modules: they are on the path of every ``exoimap`` command.
"""
