"""DOCSTRING TO WRITE."""

from __future__ import annotations

from recsys.cli import main


def test_cli_search_text_does_not_run_the_pickle(evil_store, capsys):
    db, marker = evil_store
    code = main(["search", "--db", str(db), "--text", "red summer dress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: The encoder checkpoint")
    assert "cannot be read safely" in err and err.count("\n") == 1
    assert not marker.exists()
