"""The audit trail: every mutating call's effects and every refusal, append-only."""
