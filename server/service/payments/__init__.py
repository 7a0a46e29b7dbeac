"""Payments: commands, reads, provider outcomes, the reconciler."""
