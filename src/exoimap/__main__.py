"""``python -m exoimap``: the same as the ``exoimap`` command."""

from exoimap.entry import run

run()
