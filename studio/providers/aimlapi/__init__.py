"""AI/ML API's video generations for Veo 3.1 Lite (shared/providers.md §3): client.py speaks
it, config.py lists its settings (its docs disagree with themselves, so every spelling is
one), capabilities.py and prices.py what it can make and for how much."""
