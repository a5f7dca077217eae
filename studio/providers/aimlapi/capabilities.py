"""What Veo 3.1 Lite at AI/ML API accepts (shared/providers.md §3)."""

from studio.providers.capabilities import Capabilities
from studio.providers.names import LABELS

CAPABILITIES = Capabilities(
    label=LABELS["aimlapi"],
    seed=False,  # neither Lite schema has a seed
    negative_prompt=False,  # nor a negative prompt
    # "duration can only be 8s" with a last frame: the preview model's rule, kept for the
    # -001 model until a live check shows it takes 4 and 6 s too (its schema does not say).
    first_last_needs_8s=True,
    notes=(
        "Model id, resolution case, duration type and last-frame field name differ "
        "between AI/ML's docs; set them with AIMLAPI_* settings after a live check.",
        "The content-policy failure shape is unconfirmed.",
    ),
)
