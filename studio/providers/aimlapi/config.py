"""AI/ML API's settings (README: Settings), read from the environment by studio/settings.py.

Its docs disagree with themselves about Lite (shared/providers.md §3), so every spelling is a
setting that a live check can settle without a code change (client.py's Dialect)."""

from studio.environment import ListSetting, Setting

KEY = Setting("AIMLAPI_KEY", secret=True)
URL = Setting("AIMLAPI_URL", "https://api.aimlapi.com")
# The id AI/ML API's Veo 3.1 Lite page documents (its catalogue also lists the alias
# "veo-3.1-lite-generate-001"); the preview id was never documented there.
MODEL = Setting("AIMLAPI_MODEL", "google/veo-3.1-lite-generate-001")
RESOLUTION_CASE = Setting("AIMLAPI_RESOLUTION_CASE")  # lower, upper; empty: by model
DURATION_TYPE = Setting("AIMLAPI_DURATION_TYPE", "int")
LAST_FRAME_FIELD = Setting("AIMLAPI_LAST_FRAME_FIELD", "last_image_url")
IMAGE_FORMAT = Setting("AIMLAPI_IMAGE_FORMAT", "data_uri")
# Extra hosts its clips may be downloaded from.
MEDIA_HOSTS = ListSetting("AIMLAPI_MEDIA_HOSTS")

SETTINGS = (
    KEY,
    URL,
    MODEL,
    RESOLUTION_CASE,
    DURATION_TYPE,
    LAST_FRAME_FIELD,
    IMAGE_FORMAT,
    MEDIA_HOSTS,
)
