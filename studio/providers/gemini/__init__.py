"""Google's Gemini API for Veo 3.1 Lite, long-running operations (shared/providers.md §2):
client.py speaks it, webhook.py verifies its Standard Webhooks deliveries, config.py lists
its settings, capabilities.py and prices.py what it can make and for how much."""
