"""Who may call what: bearer tokens, the RPC -> roles table, rate limits."""
