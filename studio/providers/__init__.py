"""The providers that make clips, one package each (studio/providers/<name>/).

registry.py lists them; base.py is the interface the engine speaks and its error tree;
http.py the HTTP plumbing hosted providers share; capabilities.py the pre-flight check. A
provider's package holds its whole story: client.py (the protocol), config.py (its settings),
capabilities.py (what it can make), prices.py (its price seed data) and, where it sends
webhooks, webhook.py (verifying them). README: "Adding a provider".
"""
