"""The provider-side service layer's decisions: catalog, issuer, claims, reaper (no I/O)."""
