"""Measuring recommenders: pure metrics, statistics, full-ranking evaluation, cross-validation, benchmarks."""
