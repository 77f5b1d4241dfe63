"""exoimap.net."""
