"""The pure core: model, assignment, overrides, headers, page decoration, config digest.

Standard library only; no I/O, clock, randomness or logging. Callers pass ``now`` and the site.
"""
