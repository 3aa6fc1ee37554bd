"""The continuous side of analysis: lake writer, scheduler, results store, health checks."""
