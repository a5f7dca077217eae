"""A local stand-in for every hosted provider: fal.ai, the Gemini API, Vertex AI, AI/ML API
and Oxen.ai.

One stdlib HTTP server, routed by path prefix, speaking each protocol as shared/providers.md
describes it: the same URL shapes, field names and types, status codes and error bodies. It
checks what it receives the way the real service would (and a little more strictly: unknown
fields are refused, so a misspelt field shows up here rather than being silently ignored in
production), and its clips are real MP4s of the requested size and length, made with the
local renderer's `render_clip`.

    base URL settings (with any non-empty keys):
      FAL_QUEUE_URL   = {origin}/fal/queue
      FAL_REST_URL    = {origin}/fal/rest
      GEMINI_API_URL  = {origin}/gemini/v1beta
      VERTEX_API_URL  = {origin}/vertex, VERTEX_STORAGE_URL = {origin}/vertex/storage,
      VERTEX_CREDENTIALS = the service-account key it writes (with any VERTEX_PROJECT)
      AIMLAPI_URL     = {origin}/aimlapi
      OXEN_API_URL    = {origin}/oxen

Failures are injected per request with a marker in the prompt, `[fail:KIND]` or
`[fail:KIND@STAGE]`, or for every job with `fail=[...]` (`--fail` on the command). KINDs:
policy, rate_limit, server_error, timeout, malformed, expired, truncated. STAGEs: submit,
poll, run (the generation itself), download. Transient kinds (rate_limit, server_error,
timeout, malformed) fail `fail_times` times per job and stage, then recover (0 = always).

Keys: "invalid" is refused as a bad key and "no-credit" as an account without credit; any
other non-empty key is accepted. Vertex AI's key is a service account: its emulator answers
Google's token service, and service accounts named "invalid" and "no-credit" are refused
the same two ways (`Emulator.vertex.key_file`).

Webhooks: fal jobs are POSTed fal's signed webhook when they end, Gemini jobs a Standard
Webhooks `video.generated` event when their clip is made (see `fal.py` and `gemini.py`);
`settings()` carries what verifies both for Studio.

Layout: `server.py` is the core (routing, recording, failures, jobs, rendering, webhooks,
the HTTP handler); `base.py` what it shares with the provider modules, one per provider
(`fal.py`, `gemini.py`, `vertex.py`, `aimlapi.py`, `oxen.py`); `__main__.py` the command.

No Django here: the emulator runs in a test's thread or as `python -m emulator`. It is not
part of the product: the wheel packages only `studio`, and the Docker image leaves it out.
"""

from emulator.base import KINDS, STAGES, FailureSpec, Reply
from emulator.fal import FAL_USER_ID, fal_jwks, fal_webhook_signature
from emulator.gemini import standard_webhook_signature
from emulator.server import Emulator, Recorded, SentWebhook

__all__ = [
    "FAL_USER_ID",
    "KINDS",
    "STAGES",
    "Emulator",
    "FailureSpec",
    "Recorded",
    "Reply",
    "SentWebhook",
    "fal_jwks",
    "fal_webhook_signature",
    "standard_webhook_signature",
]
