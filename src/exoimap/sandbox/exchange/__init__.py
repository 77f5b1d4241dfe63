"""exoimap.sandbox.exchange."""
