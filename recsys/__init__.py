"""recsys: multimodal e-commerce recommendations (CLIP embeddings, fusion recommenders, DuckDB)."""

__version__ = "0.1.0"
