"""What an application embeds: config sources, the per-request experiment manager, the
side-effect-free coordinator, event sender and web middleware.

Never imports the server side, so an application that embeds only the SDK installs no server
dependencies.
"""
