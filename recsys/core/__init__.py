"""Plumbing every floor may use: configuration, errors, progress, threads, files."""
