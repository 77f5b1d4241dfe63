"""exoimap.sandbox."""
