"""Saved payment methods: attach, update, detach; reads; request validation."""
