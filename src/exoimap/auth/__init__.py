"""exoimap.auth."""
