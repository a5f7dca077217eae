"""fal.ai's queue API for Veo 3.1 Lite (shared/providers.md §1): client.py speaks it,
webhook.py verifies fal's signed webhooks, config.py lists its settings, capabilities.py and
prices.py what it can make and for how much."""
