"""Plans and subscriptions: commands, reads, period billing, provider events."""
