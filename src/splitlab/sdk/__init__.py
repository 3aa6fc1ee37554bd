"""What an application embeds: config sources, the per-request experiment manager, the
side-effect-free coordinator, event sender and web middleware.

Never imports the server side, so an application that embeds only the SDK installs no server
dependencies.
"""

from splitlab.sdk.config_sources import (
    ConfigSnapshot,
    ConfigSource,
    FileConfigSource,
    HttpConfigSource,
    StaticConfigSource,
)

__all__ = [
    "ConfigSnapshot",
    "ConfigSource",
    "FileConfigSource",
    "HttpConfigSource",
    "StaticConfigSource",
]
