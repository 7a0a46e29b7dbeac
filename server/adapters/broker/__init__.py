"""Message broker adapters: the outbox relay publishes through these."""
