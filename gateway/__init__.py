"""The webhook sidecar: Stripe's webhooks in, through the service layer, 2xx fast."""
