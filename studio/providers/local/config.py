"""The local renderer needs no settings."""

SETTINGS = ()
