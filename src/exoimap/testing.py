"""pytest plugin (entry point ``exoimap``): fixtures for an offline sandbox tenant.

Fixtures arrive with the sandbox issues; until then the plugin registers nothing.
"""

from __future__ import annotations
