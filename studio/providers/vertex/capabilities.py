"""What Veo 3.1 Lite on Vertex AI accepts (issue 12 research §2.6)."""

from studio.providers.capabilities import Capabilities
from studio.providers.names import LABELS

CAPABILITIES = Capabilities(
    label=LABELS["vertex"],
    # Every option Studio has: t2v, i2v and first+last frame ("interpolation" in Google's
    # sample app), 4/6/8 s, 720p/1080p, seed, generateAudio and negativePrompt (the SDK).
    # Extension is documented for Lite as a preview: 1 to 30 s in, 7 s more out.
    extend_seconds=7,
    notes=(
        "1080p at 4 or 6 s is unconfirmed for Lite on Vertex AI (fal and Oxen require 8 s); "
        "it is allowed here and Vertex's own answer is shown.",
        "Extending a clip (7 s more) is a preview feature for Lite on Vertex AI.",
        "Image size limit for inline images is unconfirmed.",
    ),
)
