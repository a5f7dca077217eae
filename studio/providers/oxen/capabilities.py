"""What Veo 3.1 Lite at Oxen.ai accepts (shared/providers.md §4)."""

from studio.providers.capabilities import Capabilities
from studio.providers.names import LABELS

CAPABILITIES = Capabilities(
    label=LABELS["oxen"],
    modes=frozenset({"image", "text"}),  # no last-frame field for Lite
    audio_toggle=False,
    audio_always=None,  # "native synchronized audio"; on/off for Lite UNCONFIRMED
    negative_prompt=False,
    full_hd_needs_8s=True,  # "1080p requires an 8 second duration"
    notes=(
        "Whether Oxen's Lite clips always carry sound is unconfirmed.",
        "Images go as data URIs, which Oxen says work but are not recommended.",
        "The presigned download host is unconfirmed (OXEN_MEDIA_HOSTS).",
    ),
)
