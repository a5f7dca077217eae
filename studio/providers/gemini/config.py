"""The Gemini API's settings (README: Settings), read from the environment by
studio/settings.py."""

from studio.environment import ListSetting, Setting

API_KEY = Setting("GEMINI_API_KEY", secret=True)
API_URL = Setting("GEMINI_API_URL", "https://generativelanguage.googleapis.com/v1beta")
# Empty: Google documents no Veo 3.1 Lite id on the Gemini API since it shut the preview ids
# down on 2026-10-22 (README: Providers); set one a health check confirms.
VEO_MODEL = Setting("GEMINI_VEO_MODEL", "")
# Extra hosts its clips may be downloaded from.
MEDIA_HOSTS = ListSetting("GEMINI_MEDIA_HOSTS")
# The Standard Webhooks signing secret ("whsec_…") of its webhooks; Gemini is asked for
# webhooks only when it is set.
WEBHOOK_SECRET = Setting("GEMINI_WEBHOOK_SECRET", secret=True)

SETTINGS = (API_KEY, API_URL, VEO_MODEL, MEDIA_HOSTS, WEBHOOK_SECRET)
