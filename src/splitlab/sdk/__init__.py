"""What an application embeds: config sources, the per-request experiment manager, the
side-effect-free coordinator, event sender and web middleware.

Never imports the server side, so an application that embeds only the SDK installs no server
dependencies (the standard library is enough).
"""

from splitlab.sdk.attributes import RequestAttributes
from splitlab.sdk.client import Client
from splitlab.sdk.config_index import ConfigIndex
from splitlab.sdk.config_sources import (
    ConfigSnapshot,
    ConfigSource,
    FileConfigSource,
    HttpConfigSource,
    StaticConfigSource,
)
from splitlab.sdk.events import EventSender, HttpEventSender, MemoryEventSender, SenderOptions
from splitlab.sdk.handle import ExperimentHandle
from splitlab.sdk.manager import ExperimentManager
from splitlab.sdk.metrics import Metrics
from splitlab.sdk.shape import Performer
from splitlab.sdk.sources_memory import MemoryConfigSource

__all__ = [
    "Client",
    "ConfigIndex",
    "ConfigSnapshot",
    "ConfigSource",
    "EventSender",
    "ExperimentHandle",
    "ExperimentManager",
    "FileConfigSource",
    "HttpConfigSource",
    "HttpEventSender",
    "MemoryConfigSource",
    "MemoryEventSender",
    "Metrics",
    "Performer",
    "RequestAttributes",
    "SenderOptions",
    "StaticConfigSource",
]
