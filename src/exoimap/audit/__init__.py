"""exoimap.audit."""
