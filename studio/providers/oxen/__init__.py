"""Oxen.ai's async inference queue for Veo 3.1 Lite (shared/providers.md §4): client.py
speaks it, config.py lists its settings, capabilities.py and prices.py what it can make and
for how much."""
