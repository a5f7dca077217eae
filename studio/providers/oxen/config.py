"""Oxen.ai's settings (README: Settings), read from the environment by studio/settings.py."""

from studio.environment import ListSetting, Setting

API_KEY = Setting("OXEN_API_KEY", secret=True)
API_URL = Setting("OXEN_API_URL", "https://hub.oxen.ai")
MODEL = Setting("OXEN_MODEL", "google-veo-3-1-lite")
# Extra hosts its clips may be downloaded from: its presigned storage host is unconfirmed.
MEDIA_HOSTS = ListSetting("OXEN_MEDIA_HOSTS")

SETTINGS = (API_KEY, API_URL, MODEL, MEDIA_HOSTS)
