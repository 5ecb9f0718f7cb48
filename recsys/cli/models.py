"""Recommender commands (filled in by the models work): train, evaluate, recommend, bench."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """No model commands yet."""
