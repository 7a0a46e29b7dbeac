"""Provider webhook events: stored once, then handed to the resource they move."""
