"""Whole tenants on many machines: the catalog of a tenant's mailboxes and their runs in
PostgreSQL, discovery through Microsoft Graph, and one backup job per mailbox on Dramatiq
workers sharing a Redis broker.

``exoimap tenant add|discover|backup|status`` and ``exoimap worker`` (in :mod:`exoimap.cli`)
are thin layers over these modules; each module does one job:

* :mod:`~exoimap.tenant.schema`: the catalog's tables and their migrations;
* :mod:`~exoimap.tenant.catalog`: tenants and mailboxes; :mod:`~exoimap.tenant.history`:
  the runs of each mailbox and the status derived from them;
* :mod:`~exoimap.tenant.signin`: the app-only (certificate) account of a tenant, for IMAP
  and for Graph; :mod:`~exoimap.tenant.graph`: the ``/v1.0/users`` client;
  :mod:`~exoimap.tenant.discover`: which users become catalogued mailboxes;
* :mod:`~exoimap.tenant.jobs`: the broker and the backup actor; :mod:`~exoimap.tenant.lease`:
  one run per mailbox at a time across all workers; :mod:`~exoimap.tenant.run_mailbox`:
  one mailbox's backup as a job; :mod:`~exoimap.tenant.worker`: the worker process.
"""
