"""Hypothesis profile for the protocol tests: ``HYPOTHESIS_PROFILE=ci`` makes every run use
the same examples (derandomized); by default each run explores new ones."""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis.errors import InvalidArgument

try:
    settings.get_profile("ci")
except InvalidArgument:  # not registered by another conftest yet
    settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("HYPOTHESIS_PROFILE") == "ci":
    settings.load_profile("ci")
