# -*- test-case-name: tests.smtp.test_tls -*-
"""
TLS for STARTTLS and the implicit-TLS listener: the certificate chain and
key come from files and are re-read on demand (SIGHUP), so a renewed
certificate is used by new connections without a restart.
"""

from __future__ import annotations

from pathlib import Path

from OpenSSL import crypto
from OpenSSL.SSL import Context
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLContextFactory
from twisted.logger import Logger
from zope.interface import implementer

__all__ = ["ReloadableTLSOptions", "load_options"]

log = Logger()


def load_options(certificate_path: str, key_path: str) -> ssl.CertificateOptions:
    """The first PEM certificate is the leaf; any others are its chain."""
    pem = Path(certificate_path).read_bytes()
    key = ssl.KeyPair.load(Path(key_path).read_bytes(), crypto.FILETYPE_PEM)
    blocks = [b"-----BEGIN CERTIFICATE-----" + part for part in pem.split(b"-----BEGIN CERTIFICATE-----")[1:]]
    if not blocks:
        raise ValueError(f"{certificate_path}: no PEM certificate found")
    leaf = ssl.PrivateCertificate.fromCertificateAndKeyPair(ssl.Certificate.loadPEM(blocks[0]), key)
    chain = [ssl.Certificate.loadPEM(block).original for block in blocks[1:]]
    return ssl.CertificateOptions(
        privateKey=leaf.privateKey.original, certificate=leaf.original, extraCertChain=chain,
    )


@implementer(IOpenSSLContextFactory)
class ReloadableTLSOptions:
    """
    An OpenSSL context factory whose certificate can be swapped: each new TLS
    connection asks L{getContext}, which answers with the current one.
    """

    def __init__(self, certificate_path: str, key_path: str) -> None:
        self._certificate_path = certificate_path
        self._key_path = key_path
        self._options = load_options(certificate_path, key_path)

    def getContext(self) -> Context:
        return self._options.getContext()

    def reload(self) -> bool:
        """Re-read the files; on a bad file keep the old certificate and say so."""
        try:
            self._options = load_options(self._certificate_path, self._key_path)
        except Exception:
            log.failure("TLS certificate reload failed; keeping the previous certificate")
            return False
        log.info("TLS certificate reloaded from {path}", path=self._certificate_path)
        return True
