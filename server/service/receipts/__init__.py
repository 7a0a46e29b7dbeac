"""Receipts: recorded where money moves, numbered without gaps per year, read and rendered."""
