"""The search and encoder commands: `search` says what is wrong in one line (a bad upload, a
checkpoint that cannot be read safely: its pickle never runs) and notes a full disk;
`eval-encoder` runs the phone-shot and held-out-type tests."""

from __future__ import annotations

from pathlib import Path

from recsys.cli import main
from recsys.store import Store

from ..data.test_images import bad_files
from ..search.test_index_files import FULL, no_space


def test_cli_search_text_does_not_run_the_pickle(evil_store, capsys):
    db, marker = evil_store
    code = main(["search", "--db", str(db), "--text", "red summer dress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: The encoder checkpoint")
    assert "cannot be read safely" in err and err.count("\n") == 1
    assert not marker.exists()


def test_search_with_a_bad_upload_is_one_clear_line(tmp_path, shapes_store, capsys):
    from recsys.vectors.embed import embed_items

    embed_items(shapes_store, "shapes", "frozen")
    db = str(shapes_store.path)
    shapes_store.close()
    files = bad_files(tmp_path / "bad")
    code = main(["search", "--db", db, "--image", str(files["corrupt"])])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    code = main(["search", "--db", db, "--image", str(files["bomb"]), "--json"])
    assert code == 2 and "MP" in capsys.readouterr().err
    # the database is untouched and a good query still works
    code = main(["search", "--db", db, "--text", "a red circle", "--k", "3"])
    assert code == 0 and "Top 3" in capsys.readouterr().out


def test_eval_encoder_cli_runs_the_phone_shot_and_held_out_type_tests(tmp_path, capsys):
    """`eval-encoder --phone-shots N` prints the three query rows; `--unseen-types K` on a
    catalog without enough large types says why, without a traceback."""
    from recsys.cli import main
    from recsys.store import Store

    from ..encoder_helpers import import_shapes

    db = tmp_path / "cli.duckdb"
    store = Store(db)
    import_shapes(store, tmp_path)
    store.close()
    assert main(["eval-encoder", "--db", str(db), "--encoder", "frozen", "--phone-shots", "3"]) == 0
    out = capsys.readouterr().out
    assert "phone shot, cropped" in out and "studio photo (ceiling)" in out
    assert main(["eval-encoder", "--db", str(db), "--unseen-types", "2", "--baseline", "none"]) == 2
    err = capsys.readouterr().err
    assert "Held-out types need a catalog with at least 2 article types" in err
    assert "between 1 and" not in err and "Traceback" not in err


def test_cli_search_notes_a_full_disk(app_db: Path, monkeypatch, capsys):
    import faiss

    from recsys.cli import main

    store = Store(app_db)
    item = store.item_ids("demo")[0]
    store.close()
    monkeypatch.setattr(faiss, "write_index", no_space)
    code = main(["search", "--db", str(app_db), "--item", item, "--k", "3"])
    out, err = capsys.readouterr()
    assert code == 0 and "Top 3" in out
    assert f"note: {FULL}" in err and "Traceback" not in err
