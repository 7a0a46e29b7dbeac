"""The one idempotent command pipeline: claims, shared steps, and the recorder."""
