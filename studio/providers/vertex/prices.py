"""Vertex AI's prices for Veo 3.1 Lite per second of output (issue 12 research §2.7), seeded
into the admin's price table (studio/pricing.py).

Google's pricing page (cloud.google.com/gemini-enterprise-agent-platform/generative-ai/pricing,
where the old /vertex-ai/generative-ai/pricing redirects) was read directly on 2026-10-08 by
the research note "AI provider prices and limits": with audio $0.05 (720p) and $0.08
(1080p), video only $0.03 and $0.05. LiteLLM's cost map for vertex_ai/veo-3.1-lite-generate-001
has the same with-audio figures (0.05, 0.08) and no video-only tier. So the with-audio rows
have two readings that agree and are marked confirmed; the video-only rows rest on one
reading alone and are not. The page itself could not be read again for this change.
"""

import datetime

from studio.providers.base import price_rows

AS_OF = datetime.date(2026, 10, 8)
SOURCE = (
    "Google Cloud pricing page (gemini-enterprise-agent-platform/generative-ai/pricing), "
    "read 2026-10-08 (issue 12 research §2.7)"
)

PRICES = price_rows(
    {("720p", True): "0.05", ("1080p", True): "0.08"},
    source=f"{SOURCE}; LiteLLM's cost map agrees",
    as_of=AS_OF,
) + price_rows(
    {("720p", False): "0.03", ("1080p", False): "0.05"},
    source=f"{SOURCE}; no second source for the video-only tier",
    as_of=AS_OF,
    confirmed=False,
)
