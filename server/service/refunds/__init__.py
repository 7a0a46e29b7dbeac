"""Refunds: CreateRefund, reads, provider outcomes, webhook events, the reconciler."""
