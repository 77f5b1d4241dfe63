"""exoimap.auth: an account in, a fresh access token out.

``provider.TokenProvider`` is the entry point for the IMAP layer; ``vault.Vault`` keeps
token caches and secrets encrypted; ``claims`` and ``aadsts`` explain tokens and failures.
Import from the modules: the package re-exports nothing, so a command that needs only the
audit key does not load the sign-in code.
"""
