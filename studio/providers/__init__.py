"""Every provider Studio can send a job to, by the name used in settings and on the CLI."""

from studio.providers.aimlapi import AimlapiProvider
from studio.providers.base import Provider
from studio.providers.fal import FalProvider
from studio.providers.gemini import GeminiProvider
from studio.providers.local import LocalProvider
from studio.providers.oxen import OxenProvider

PROVIDERS: dict[str, type[Provider]] = {
    LocalProvider.name: LocalProvider,
    FalProvider.name: FalProvider,
    GeminiProvider.name: GeminiProvider,
    AimlapiProvider.name: AimlapiProvider,
    OxenProvider.name: OxenProvider,
}


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise LookupError(f"There is no provider called {name!r}.") from None
