"""The provider side of the service layer: gateway, issuer, reaper (shells over kbcore.service)."""
