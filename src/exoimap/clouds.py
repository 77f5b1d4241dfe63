"""Endpoints per Microsoft cloud: the user names a cloud, never URLs.

Each cloud brings its Entra sign-in host, its Exchange Online IMAP and SMTP submission
hosts and the resource that prefixes the IMAP scopes. Delegated and app-only scopes use
different resource names in Microsoft's documentation (``outlook.office.com`` and
``outlook.office365.com``); both are kept so each flow asks for exactly what the
documentation prescribes.

Sources and confidence (see docs/setup-microsoft-365.md): worldwide is documented by
Microsoft; China's sign-in host is documented, its IMAP host and resource are reported by
third-party clients; the US Government hosts are reported by third-party clients (the DoD
delegated resource in particular is unconfirmed). The national Graph hosts
(``graph.microsoft.us``, ``dod-graph.microsoft.us``, ``microsoftgraph.chinacloudapi.cn``) are
the ones administrators' scripts use. SMTP submission is on port 587 with STARTTLS:
``smtp.office365.com`` worldwide is documented by Microsoft; the other clouds' hosts
(``smtp.office365.us``, ``outlook-dod.office365.us``, ``partner.outlook.cn``) are the ones
EmailEngine uses.

``custom`` is for anything else with a Microsoft-compatible identity platform, chiefly the
offline sandbox: the authority URL and IMAP host come from the account's configuration,
and the resources default to the worldwide names (which the sandbox emulates).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from exoimap.errors import ConfigError

__all__ = [
    "CLOUD_NAMES",
    "EXCHANGE_APP_ID",
    "Cloud",
    "get_cloud",
    "resolve_cloud",
]

#: The application id of "Office 365 Exchange Online" (the API that owns IMAP permissions).
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"


@dataclass(frozen=True)
class Cloud:
    """Where one Microsoft cloud signs users in and serves IMAP."""

    name: str
    #: Entra host name, e.g. ``login.microsoftonline.com`` (``host:port`` for custom clouds).
    authority_host: str
    imap_host: str
    #: Resource for delegated scopes: ``<resource>/IMAP.AccessAsUser.All``.
    delegated_resource: str
    #: Resource for app-only scopes: ``<resource>/.default``.
    app_resource: str
    imap_port: int = 993
    #: SMTP submission (STARTTLS on :attr:`smtp_port`); a custom cloud's defaults to its IMAP host.
    smtp_host: str = "smtp.office365.com"
    smtp_port: int = 587
    #: For custom clouds: the full authority URL (``https://host[:port]/<tenant>``).
    authority_url: str | None = None
    #: Microsoft Graph of this cloud: its base URL and the resource of app-only tokens
    #: (``<graph_url>/.default``). Custom clouds keep the worldwide resource.
    graph_url: str = "https://graph.microsoft.com"

    @property
    def delegated_scope(self) -> str:
        return f"{self.delegated_resource}/IMAP.AccessAsUser.All"

    @property
    def smtp_scope(self) -> str:
        """SMTP submission's delegated scope (Exchange refuses SMTP AUTH without it)."""
        return f"{self.delegated_resource}/SMTP.Send"

    @property
    def app_scope(self) -> str:
        return f"{self.app_resource}/.default"

    def sign_in_scopes(self, *, app_only: bool, smtp: bool) -> tuple[str, ...]:
        """What exoimap's sign-in asks for: IMAP, plus SMTP.Send only when ``smtp`` (the
        proxy relays the account's mail; least privilege otherwise). App-only tokens carry
        the roles granted to the app (``.default``): SMTP.SendAsApp is granted, not asked."""
        if app_only:
            return (self.app_scope,)
        return (self.delegated_scope, self.smtp_scope) if smtp else (self.delegated_scope,)

    @property
    def accepted_audiences(self) -> frozenset[str]:
        """Token ``aud`` values that Exchange accepts for IMAP in this cloud."""
        return frozenset(
            {
                self.delegated_resource,
                self.app_resource,
                f"https://{self.imap_host}",
                EXCHANGE_APP_ID,
            }
        )

    def authority(self, tenant: str | None) -> str:
        """The authority URL MSAL is built with."""
        if self.authority_url is not None:
            return self.authority_url
        return f"https://{self.authority_host}/{tenant or 'organizations'}"

    def admin_consent_url(self, tenant: str | None, client_id: str) -> str:
        """The page where a tenant administrator grants consent to this app."""
        base = self.authority(tenant)
        return f"{base}/v2.0/adminconsent?client_id={client_id}&scope={self.app_resource}/.default"


_KNOWN: dict[str, Cloud] = {
    "worldwide": Cloud(
        name="worldwide",
        authority_host="login.microsoftonline.com",
        imap_host="outlook.office365.com",
        delegated_resource="https://outlook.office.com",
        app_resource="https://outlook.office365.com",
    ),
    "gcc-high": Cloud(
        name="gcc-high",
        authority_host="login.microsoftonline.us",
        imap_host="outlook.office365.us",
        delegated_resource="https://outlook.office365.us",
        app_resource="https://outlook.office365.us",
        smtp_host="smtp.office365.us",
        graph_url="https://graph.microsoft.us",
    ),
    "dod": Cloud(
        name="dod",
        authority_host="login.microsoftonline.us",
        imap_host="outlook-dod.office365.us",
        delegated_resource="https://outlook-dod.office365.us",
        app_resource="https://outlook-dod.office365.us",
        smtp_host="outlook-dod.office365.us",
        graph_url="https://dod-graph.microsoft.us",
    ),
    "china": Cloud(
        name="china",
        authority_host="login.partner.microsoftonline.cn",
        imap_host="partner.outlook.cn",
        delegated_resource="https://partner.outlook.cn",
        app_resource="https://partner.outlook.cn",
        smtp_host="partner.outlook.cn",
        graph_url="https://microsoftgraph.chinacloudapi.cn",
    ),
}
# GCC ("moderate") runs in the worldwide cloud.
_KNOWN["gcc"] = Cloud(**{**_KNOWN["worldwide"].__dict__, "name": "gcc"})

#: Every cloud name the configuration accepts.
CLOUD_NAMES: tuple[str, ...] = ("worldwide", "gcc", "gcc-high", "dod", "china", "custom")


def get_cloud(name: str) -> Cloud:
    """A named public cloud (not ``custom``, which needs the account's values)."""
    try:
        return _KNOWN[name]
    except KeyError:
        raise ConfigError(
            f"unknown cloud {name!r} (known: {', '.join(CLOUD_NAMES)})", key="cloud"
        ) from None


def resolve_cloud(
    name: str,
    *,
    authority: str | None = None,
    imap_host: str | None = None,
    imap_port: int | None = None,
    smtp_host: str | None = None,
    smtp_port: int | None = None,
) -> Cloud:
    """The cloud for an account: a named cloud, optionally with a different IMAP host or
    port, or a ``custom`` cloud built from an authority URL and an IMAP host."""
    if name != "custom":
        cloud = get_cloud(name)
        if imap_host or imap_port or smtp_host or smtp_port:
            cloud = Cloud(
                **{
                    **cloud.__dict__,
                    "imap_host": imap_host or cloud.imap_host,
                    "imap_port": imap_port or cloud.imap_port,
                    "smtp_host": smtp_host or cloud.smtp_host,
                    "smtp_port": smtp_port or cloud.smtp_port,
                }
            )
        return cloud
    if not imap_host:
        raise ConfigError("cloud 'custom' needs imap_host", key="imap_host")
    worldwide = _KNOWN["worldwide"]
    host = ""
    if authority is not None:
        parts = urlsplit(authority)
        if parts.scheme != "https" or not parts.netloc or parts.path.strip("/") == "":
            raise ConfigError(
                f"{authority!r} must look like https://host[:port]/<tenant>", key="authority"
            )
        host = parts.netloc
        authority = authority.rstrip("/")
    return Cloud(
        name="custom",
        authority_host=host,
        imap_host=imap_host,
        imap_port=imap_port or 993,
        smtp_host=smtp_host or imap_host,
        smtp_port=smtp_port or 587,
        delegated_resource=worldwide.delegated_resource,
        app_resource=worldwide.app_resource,
        authority_url=authority,
    )
