"""fal.ai's settings (README: Settings), read from the environment by studio/settings.py."""

from studio.environment import ListSetting, Setting

KEY = Setting("FAL_KEY", secret=True)
QUEUE_URL = Setting("FAL_QUEUE_URL", "https://queue.fal.run")
REST_URL = Setting("FAL_REST_URL", "https://rest.fal.ai")
# fal's Platform API: its model pricing call is the health check (key and endpoint).
API_URL = Setting("FAL_API_URL", "https://api.fal.ai")
# How stills reach fal: "storage" (its two-step upload, the safe choice for its 8 MB limit)
# or "data_uri" (inline; unconfirmed for Veo Lite).
IMAGE_UPLOAD = Setting("FAL_IMAGE_UPLOAD", "storage")
# Extra hosts its clips may be downloaded from.
MEDIA_HOSTS = ListSetting("FAL_MEDIA_HOSTS")
# The keys fal signs its webhooks with (shared/providers.md §1.8).
JWKS_URL = Setting("FAL_JWKS_URL", "https://rest.alpha.fal.ai/.well-known/jwks.json")

SETTINGS = (KEY, QUEUE_URL, REST_URL, API_URL, IMAGE_UPLOAD, MEDIA_HOSTS, JWKS_URL)
