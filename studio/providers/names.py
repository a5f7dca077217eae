"""The providers Studio knows: one line each, its name (the package under studio/providers/,
and what settings, the CLI and the database call it) and what creators call it, in the order
the create page lists them.

Plain data that imports nothing, so the models and every layer can name providers without
importing any provider's code (registry.py finds that by these names).
"""

LABELS: dict[str, str] = {
    "local": "Local renderer",
    "fal": "fal.ai",
    "gemini": "Gemini API",
    "vertex": "Vertex AI",
    "aimlapi": "AI/ML API",
    "oxen": "Oxen.ai",
}


def label(name: str) -> str:
    """What creators call the provider `name` (the name itself if it is not listed)."""
    return LABELS.get(name, name)
