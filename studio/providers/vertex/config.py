"""Vertex AI's settings (README: Settings), read from the environment by studio/settings.py."""

from studio.environment import ListSetting, Setting

# The Google Cloud project that runs (and pays for) the jobs.
PROJECT = Setting("VERTEX_PROJECT")
LOCATION = Setting("VERTEX_LOCATION", "us-central1")
MODEL = Setting("VERTEX_MODEL", "veo-3.1-lite-generate-001")
# The path of a service-account JSON key; empty: application default credentials. The path is
# never shown either, since what it points at is a secret.
CREDENTIALS = Setting("VERTEX_CREDENTIALS", secret=True)
# A gs:// prefix Vertex writes the clips to (parameters.storageUri); empty: they come back
# inline in the operation, as base64.
OUTPUT_BUCKET = Setting("VERTEX_OUTPUT_BUCKET")
# Empty: derived from the location as Google documents it (client.api_base).
API_URL = Setting("VERTEX_API_URL")
# The Cloud Storage JSON API, for gs:// results (and extension inputs with a bucket).
STORAGE_URL = Setting("VERTEX_STORAGE_URL", "https://storage.googleapis.com")
# Extra hosts its clips may be downloaded from.
MEDIA_HOSTS = ListSetting("VERTEX_MEDIA_HOSTS")

SETTINGS = (
    PROJECT,
    LOCATION,
    MODEL,
    CREDENTIALS,
    OUTPUT_BUCKET,
    API_URL,
    STORAGE_URL,
    MEDIA_HOSTS,
)
