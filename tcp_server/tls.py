"""TLS for the line protocol: the server's context (reloadable) and the clients' (verifying).

The server keeps one :class:`ssl.SSLContext` for its TLS listener. On SIGHUP
:meth:`ServerTLS.reload` loads the new certificate into that same context:
handshakes from then on present it, while connections already open keep the
session they negotiated, so nobody is dropped. A certificate that does not
load leaves the old one in place.

Clients (``chat-client --tls``, the gateway's ``--server-tls`` backends, its
health probe) verify the server's certificate and host name against the
system store, or against one private CA file.
"""

from __future__ import annotations

import functools
import logging
import ssl

log = logging.getLogger("tcp_server.tls")

def _server_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class ServerTLS:
    """The TLS listener's context, and its reload from the same files."""

    def __init__(self, cert: str, key: str) -> None:
        self.cert = cert
        self.key = key
        self.context = _server_context(cert, key)

    def reload(self) -> bool:
        """Load the certificate and key again (they may have been renewed); False, and the
        old pair kept, when they do not load."""
        try:
            _server_context(self.cert, self.key)  # check the pair on a scratch context first
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            log.error("TLS certificate not reloaded, keeping the old one: %s", exc)
            return False
        log.info("TLS certificate reloaded from %s", self.cert)
        return True


@functools.lru_cache(maxsize=8)
def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A context that verifies the server: the system's CAs, or only ``cafile`` when given.

    Cached: every backend connection of a gateway shares one context.
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def backend_context(tls: bool, cafile: str | None) -> ssl.SSLContext | None:
    """A gateway's context for its backends (``--server-tls``, ``--server-ca``), or None for plain TCP."""
    return client_context(cafile) if tls or cafile else None


def describe_tls_error(exc: BaseException, host: str) -> str:
    """A one-line reason a TLS connection failed, for a person to act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
            return f"TLS: the server's certificate is not valid for the name {host!r}"
        if code in (18, 19, 20, 21):  # self-signed or unknown issuer
            return (f"TLS: the server's certificate is not signed by a trusted CA ({exc.verify_message}); "
                    "use --tls-ca FILE for a private CA")
        if code == 10:
            return "TLS: the server's certificate has expired"
        return f"TLS: the server's certificate was refused ({exc.verify_message or exc.reason})"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        return f"TLS handshake failed ({reason}); is the port a TLS port?"
    return f"TLS: {exc}"
