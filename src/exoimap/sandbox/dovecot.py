"""A throw-away Dovecot IMAP server for tests and benchmarks (never for production).

:class:`DovecotServer` writes a self-contained configuration under a temporary root, starts
``dovecot -F`` on 127.0.0.1 with ports chosen by the OS, and stops it again. It offers:

- implicit TLS (``imaps_port``) and a plain port with STARTTLS (``imap_port``), with a
  certificate from a :class:`~exoimap.sandbox.ca.LocalCA` (``ca_file`` trusts it);
- password users (PLAIN/LOGIN) from a passwd-file, addable while running;
- XOAUTH2 and OAUTHBEARER checked by Dovecot's oauth2 passdb with *local* JWT validation:
  :meth:`DovecotServer.mint_token` signs a token the server accepts (or, with a negative
  lifetime or a wrong scope, one it rejects);
- :meth:`DovecotServer.write_message` to put messages straight into a user's Maildir.

Dovecot must be installed (``apt-get install dovecot-imapd``). When run as root, mail
folders belong to ``nobody:nogroup``, the user the mail processes run as.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exoimap.errors import ConfigError, StoreUnavailable
from exoimap.sandbox.ca import LocalCA
from exoimap.secrets import Secret

__all__ = ["DEFAULT_USERS", "DovecotServer", "dovecot_available"]

ISSUER = "https://sts.lab.test/tenant-0000/"
SCOPE = "IMAP.AccessAsUser.All"
KEY_ID = "labkey1"
#: user -> password of the users every server starts with.
DEFAULT_USERS = {
    "alice@lab.test": "alice-pass",
    "bob@lab.test": "bob-pass",
    "carol@lab.test": "carol-pass",
}

_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = exoimap-{instance}
log_path = {root}/log/dovecot.log
info_log_path = {root}/log/dovecot.log
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes
ssl = required
ssl_cert = <{root}/tls/server.pem
ssl_key = <{root}/tls/server-key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login xoauth2 oauthbearer
auth_username_format = %Lu
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%Lu {root}/users
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {root}/users
  default_fields = uid={mail_user} gid={mail_group} home={mail}/%Lu
}}
# LAYOUT=fs: folder names may contain dots (Maildir++ uses them as separators)
mail_location = maildir:~/Maildir:LAYOUT=fs
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = create
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = create
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = create
  }}
  mailbox Archive {{
    special_use = \\Archive
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service imap {{
  process_limit = 64
}}
mail_max_userip_connections = 50
# Test speed only: no delay after a failed login, no brute-force penalty.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

_OAUTH2_CONF = """\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix={root}/keys/
username_attribute = upn
username_format = %Lu
issuers = {issuer}
scope = {scope}
"""


_MINT_SCRIPT = f"""
import sys, time, uuid, jwt
key, user, lifetime = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = int(time.time())
claims = dict(iss={ISSUER!r}, sub=str(uuid.uuid5(uuid.NAMESPACE_DNS, user)), upn=user,
              aud="https://outlook.office.com", scp={SCOPE!r}, scope={SCOPE!r},
              iat=now - 5, nbf=now - 5, exp=now + lifetime)
print(jwt.encode(claims, open(key).read(), algorithm="RS256",
                 headers=dict(typ="JWT", kid={KEY_ID!r})))
"""


def dovecot_available() -> bool:
    """Whether the ``dovecot`` binary is installed."""
    return shutil.which("dovecot") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class DovecotServer:
    """One Dovecot instance under ``root`` (a new temporary folder when not given)."""

    host = "127.0.0.1"

    def __init__(
        self,
        root: Path | None = None,
        users: dict[str, str] | None = None,
        *,
        spare_users: int = 64,
    ) -> None:
        if not dovecot_available():
            raise ConfigError("Dovecot is not installed: apt-get install dovecot-imapd")
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="exoimap-dovecot-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # Dovecot's auth process (user dovecot) reads users and keys
        self.imap_port = 0
        self.imaps_port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._users: dict[str, str] = dict(DEFAULT_USERS if users is None else users)
        # Dovecot re-reads the users file at most once a second, so tests get fresh
        # mailboxes from users written before start.
        self._spare = [f"box{n:04d}@lab.test" for n in range(spare_users)]
        for name in self._spare:
            self._users[name] = f"{name.split('@', 1)[0]}-pass"
        self._as_root = os.geteuid() == 0
        self.ca = LocalCA.load_or_create(self.root / "tls", "exoimap Dovecot test CA")
        self.ca.issue(("localhost", "127.0.0.1"), stem="server")
        self.ca_file = self.ca.cert_file
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    # --- life cycle -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The Dovecot master process while the server runs (benchmarks measure the CPU of
        it and of the processes it starts)."""
        proc = self._process
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> DovecotServer:
        """Write the configuration and start Dovecot; returns when both ports accept."""
        for attempt in range(3):
            self.imap_port, self.imaps_port = _free_port(), _free_port()
            self._write_config()
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                ["dovecot", "-F", "-c", str(self.root / "dovecot.conf")],  # noqa: S607
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: kill() reaches every child
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._process.poll() is None:
                if _port_open(self.imaps_port) and _port_open(self.imap_port):
                    return self
                time.sleep(0.05)
            error = self._stop_process()
            if attempt == 2:
                raise StoreUnavailable(f"Dovecot did not start: {error[-500:]}")
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop Dovecot and remove the temporary root if this object made it."""
        self._stop_process()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """Crash the server: SIGKILL Dovecot and every process it started, so open
        connections die without a goodbye and the ports refuse new ones. :meth:`start`
        brings it back (on new ports), with the mail it held."""
        proc = self._process
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self._stop_process()

    def _stop_process(self) -> str:
        proc, self._process = self._process, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err = proc.stderr.read() if proc.stderr else b""
        if proc.stderr:
            proc.stderr.close()
        return err.decode(errors="replace")

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_config(self) -> None:
        root = self.root
        for sub in ("run", "state", "log", "keys/default/RS256", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        mail = root / "mail"
        mail_user, mail_group = ("nobody", "nogroup") if self._as_root else _current_ids()
        if self._as_root:
            shutil.chown(mail, "nobody", "nogroup")
        (root / "dovecot.conf").write_text(
            _CONF.format(
                root=root,
                instance=self.imaps_port,
                imap_port=self.imap_port,
                imaps_port=self.imaps_port,
                mail=mail,
                mail_user=mail_user,
                mail_group=mail_group,
            )
        )
        (root / "oauth2.conf.ext").write_text(
            _OAUTH2_CONF.format(root=root, issuer=ISSUER, scope=SCOPE)
        )
        public = self._signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (root / "keys/default/RS256" / KEY_ID).write_bytes(public)
        self._write_users()

    def _write_users(self) -> None:
        lines = "".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self._users.items())
        path = self.root / "users"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(lines)
        tmp.chmod(0o644)
        tmp.replace(path)

    # --- users and tokens -------------------------------------------------------------

    def new_mailbox(self) -> str:
        """A user nobody used yet (from the spare users written at start)."""
        if not self._spare:
            name = f"box{len(self._users):04d}@lab.test"
            self.add_user(name)
            time.sleep(1.1)  # let Dovecot's once-a-second re-read see the new user
            return name
        return self._spare.pop(0)

    def add_user(self, user: str, password: str | None = None) -> Secret[str]:
        """Add a password user; Dovecot sees it within about a second."""
        pw = password if password is not None else f"{user.split('@', maxsplit=1)[0]}-pass"
        self._users[user.lower()] = pw
        self._write_users()
        return Secret(pw)

    def password(self, user: str) -> Secret[str]:
        return Secret(self._users[user.lower()])

    def mint_token(
        self,
        user: str,
        lifetime: float = 3600,
        *,
        scope: str = SCOPE,
        issuer: str = ISSUER,
    ) -> Secret[str]:
        """An RS256 JWT the server accepts for ``user`` (unless lifetime <= 0, wrong scope
        or issuer). Dovecot reads ``scope``; Entra puts ``scp``: both are set."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_DNS, user)),
            "aud": "https://outlook.office.com",
            "upn": user,
            "unique_name": user,
            "scp": scope,
            "scope": scope,
            "iat": now - 5 if lifetime > 0 else now + int(lifetime) - 600,
            "nbf": now - 5 if lifetime > 0 else now + int(lifetime) - 600,
            "exp": now + int(lifetime),
        }
        token = jwt.encode(
            claims, self._signing_key, algorithm="RS256", headers={"typ": "JWT", "kid": KEY_ID}
        )
        return Secret(token)

    def token_command(self, user: str, lifetime: float = 3600) -> tuple[str, ...]:
        """A token command (``token_command`` in an account's config) printing a JWT this
        server accepts for ``user``: Python with PyJWT, reading the signing key (0600)."""
        key_file = self.root / "jwt-signing.key"
        if not key_file.exists():
            pem = self._signing_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
        return (sys.executable, "-c", _MINT_SCRIPT, str(key_file), user, str(int(lifetime)))

    # --- mail -------------------------------------------------------------------------

    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        """The Maildir folder of ``user`` (``INBOX`` or a name like ``Archive/2024``)."""
        base = self.root / "mail" / user.lower() / "Maildir"
        return base if folder.upper() == "INBOX" else base.joinpath(*folder.split("/"))

    def write_message(
        self,
        user: str,
        content: bytes,
        *,
        folder: str = "INBOX",
        flags: str = "",
        when: dt.datetime | None = None,
        serial: int = 0,
    ) -> Path:
        """Write one message file into the Maildir (call :meth:`fix_ownership` after a
        batch). ``flags`` uses Maildir letters (``S`` seen, ``F`` flagged, ``R`` answered)."""
        box = self.maildir(user, folder)
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        stamp = (when or dt.datetime.now(dt.UTC)).timestamp()
        info = "".join(sorted(flags))
        name = f"{int(stamp)}.M{serial}P{os.getpid()}.exoimap,S={len(content)}:2,{info}"
        path = box / "cur" / name
        path.write_bytes(content)
        os.utime(path, (stamp, stamp))  # Dovecot takes INTERNALDATE from the mtime
        return path

    def fix_ownership(self, user: str) -> None:
        """Give the user's mail folder to the mail user (only needed when run as root)."""
        if not self._as_root:
            return
        top = self.root / "mail" / user.lower()
        for dirpath, _dirnames, filenames in os.walk(top):
            # a running Dovecot creates and removes lock files (dovecot-uidlist.lock)
            # between the listing and the chown: one that is gone needs no owner
            with contextlib.suppress(FileNotFoundError):
                shutil.chown(dirpath, "nobody", "nogroup")
            for f in filenames:
                with contextlib.suppress(FileNotFoundError):
                    shutil.chown(os.path.join(dirpath, f), "nobody", "nogroup")


def _current_ids() -> tuple[str, str]:
    import grp
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
