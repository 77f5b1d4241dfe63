"""exoimap.sync."""
