"""Vertex AI (Gemini Enterprise Agent Platform) for Veo 3.1 Lite, the model's generally
available home (issue 12 research §2): client.py speaks its long-running predictions,
auth.py gets its OAuth2 tokens through google-auth, config.py lists its settings,
capabilities.py and prices.py what it can make and for how much."""
