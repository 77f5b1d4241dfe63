"""exoimap.sandbox.identity."""
