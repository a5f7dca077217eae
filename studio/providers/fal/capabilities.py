"""What fal.ai's Veo 3.1 Lite endpoints accept (their model pages, shared/providers.md §1)."""

from studio.providers.capabilities import Capabilities
from studio.providers.names import LABELS

CAPABILITIES = Capabilities(
    label=LABELS["fal"],
    max_image_bytes=8 * 1024 * 1024,  # "Input images up to 8MB" (model pages)
    full_hd_needs_8s=True,  # "1080p requires 8s" (I2V page)
    first_last_needs_8s=True,  # "8 second duration" (FLF page)
    notes=(
        "Text to video takes 16:9 or 9:16 only; 'auto' without an image is 16:9.",
        "The exact content-policy error type for Veo Lite is unconfirmed.",
    ),
)
