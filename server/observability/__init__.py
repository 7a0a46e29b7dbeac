"""Traces, metrics and logs: set up once by `payments <command>`, cheap when off."""
