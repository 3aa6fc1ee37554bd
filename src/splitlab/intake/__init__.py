"""The event intake: schemas, stream config, the validate → enrich → produce pipeline, and sinks."""
