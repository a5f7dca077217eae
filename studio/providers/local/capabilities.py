"""The local renderer makes every option, with no extra rules."""

from studio.providers.capabilities import Capabilities

CAPABILITIES = Capabilities(label="The local renderer")
