"""Accounts, the shell's side: password hashing off the event loop (the pure rules are in tcp_server.protocol:
``passwords`` for which passwords are allowed, ``guessing`` for failure counting and lockouts)."""

from __future__ import annotations

from .hasher import OWASP_ARGON2ID, Busy, HashParams, LoginCheck, PasswordHashing

__all__ = ["OWASP_ARGON2ID", "Busy", "HashParams", "LoginCheck", "PasswordHashing"]
