"""Who may use the gateway at all: the allowed emails, email domains and groups
(``--allow-email``, ``--allow-email-domain``, ``--allow-group``; docs/service-layer.md, "Allowed
users").

Rules:

1. With no rule given, everyone the OIDC provider vouches for is admitted (a verified ID token
   is enough).
2. Otherwise a caller is admitted when any rule matches: its email is an allowed email, its
   email's domain (after the last ``@``) is an allowed domain, or one of its groups (the ID
   token's ``groups`` claim) is an allowed group. Emails and domains compare case-insensitively,
   groups exactly. Only a verified email counts (an identity whose provider marked the email
   unverified has none, ``kbshell.backend.oidc`` rule 2), so a domain rule cannot be met by
   typing an address at sign-up.
3. A caller who is not admitted is refused before anything is written for it: no session at
   the login callback, no Grant and no pickup at a bind. The refusal says who was refused and
   what to do, never the allowed set itself (it is the provider's policy, not the caller's).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from kbshell.backend.issuing import Identity


def _lower(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values if v.strip())


def _domains(values: Iterable[str]) -> frozenset[str]:
    return _lower(v.strip().lstrip("@") for v in values)


def _groups(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class Admission:
    emails: frozenset[str] = attrs.field(default=frozenset(), converter=_lower)
    domains: frozenset[str] = attrs.field(default=frozenset(), converter=_domains)
    groups: frozenset[str] = attrs.field(default=frozenset(), converter=_groups)

    @property
    def everyone(self) -> bool:
        """Rule 1."""
        return not (self.emails or self.domains or self.groups)

    def admits(self, who: Identity) -> bool:
        """Rule 2."""
        if self.everyone:
            return True
        email = who.email.lower()
        if email and (email in self.emails or email.rpartition("@")[2] in self.domains):
            return True
        return bool(self.groups & set(who.groups))

    def refusal(self, who: Identity) -> str:
        """Rule 3: the message of a refusal."""
        name = who.email or f"subject {who.subject}"
        groups = ", ".join(who.groups) if who.groups else "none"
        return (
            f"{name} is not among the users this provider admits (it admits some emails, email "
            f"domains or groups; the ID token's groups: {groups}): ask the provider's "
            "administrator to admit you, or log in as another user"
        )
