"""Finding items: the vector index (exact and approximate, persisted), facets, personal blend, query photos."""
