"""The modality commands: `import-features` and the modalities listing."""

from __future__ import annotations

from ..vectors.test_features import write_mmrec_folder


def test_import_features_command_and_modalities_listing(tmp_path):
    from recsys.cli import main

    folder = write_mmrec_folder(tmp_path / "baby")
    db = str(tmp_path / "cli.duckdb")
    assert main(["import-interactions", str(folder), "--format", "json", "--dataset", "baby",
                 "--db", db]) == 0
    assert main(["import-features", str(folder / "image_feat.npy"), "--modality", "image",
                 "--dataset", "baby", "--db", db]) == 0
    assert main(["import-features", str(folder / "image_feat.npy"), "--modality", "cf",
                 "--dataset", "baby", "--db", db]) == 2
    assert main(["modalities", "--dataset", "baby", "--db", db, "--json"]) == 0
