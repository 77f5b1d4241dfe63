"""``exoimap console``: a web interface over the archives where each person sees only what
their role allows (issue 17).

One job per module:

* :mod:`.settings`: the console's settings file (identity platform, role scopes, timeouts);
* :mod:`.policy`: who may do what to which mailbox (default deny), the only place that decides;
* :mod:`.signin`: OpenID Connect sign-in with Entra ID (authorization code + PKCE, MSAL);
* :mod:`.sessions`: server-side sessions with idle and absolute timeouts, CSRF tokens;
* :mod:`.trail`: every request's decision into the audit log;
* :mod:`.archives`: the mailboxes' archives, read through the archive store;
* :mod:`.mail_view`: a message made safe to show (escaped headers, sanitised HTML);
* :mod:`.web`: the Starlette application, its routes and security headers;
* :mod:`.server`: serving it with uvicorn, over TLS when given a certificate.
"""
