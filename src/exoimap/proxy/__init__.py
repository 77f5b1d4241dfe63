"""``exoimap proxy``: a local IMAP server for mail clients that only know passwords.

A client signs in with a per-client app password (:mod:`.passwords`, slow hashes bound to
one account, wrong guesses rate-limited by :mod:`.limiter`); the proxy opens the account's
mailbox upstream with XOAUTH2 from the vault (:mod:`.upstream`) and relays the session
through both sides of the protocol core (:mod:`.relay`). Clients trust the proxy's own
local CA (:mod:`.ca`); :mod:`.server` listens and refuses plaintext off loopback.
"""
