"""What Veo 3.1 Lite on the Gemini API accepts (shared/providers.md §2)."""

from studio.providers.capabilities import Capabilities
from studio.providers.names import LABELS

CAPABILITIES = Capabilities(
    label=LABELS["gemini"],
    audio_toggle=False,
    audio_always=True,
    seed=False,
    notes=(
        "1080p at 4 or 6 s is unconfirmed for Lite on the Gemini API (fal and Oxen "
        "require 8 s); it is allowed here and the API's own answer is shown.",
        "First and last frame (lastFrame) is unconfirmed for Lite on the Gemini API.",
        "Image size limit for inline images is unconfirmed.",
    ),
)
