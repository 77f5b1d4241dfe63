"""exoimap.store."""
