"""The Gemini API's settings (README: Settings), read from the environment by
studio/settings.py."""

from studio.environment import ListSetting, Setting

API_KEY = Setting("GEMINI_API_KEY", secret=True)
API_URL = Setting("GEMINI_API_URL", "https://generativelanguage.googleapis.com/v1beta")
VEO_MODEL = Setting("GEMINI_VEO_MODEL", "veo-3.1-lite-generate-preview")
# Extra hosts its clips may be downloaded from.
MEDIA_HOSTS = ListSetting("GEMINI_MEDIA_HOSTS")
# The Standard Webhooks signing secret ("whsec_…") of its webhooks; Gemini is asked for
# webhooks only when it is set.
WEBHOOK_SECRET = Setting("GEMINI_WEBHOOK_SECRET", secret=True)

SETTINGS = (API_KEY, API_URL, VEO_MODEL, MEDIA_HOSTS, WEBHOOK_SECRET)
