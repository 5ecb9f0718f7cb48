"""Encoder commands (filled in by the encoder work): train-encoder, embed, search, eval-encoder."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """No encoder commands yet."""
