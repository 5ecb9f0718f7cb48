"""`python -m recsys eval-encoder --phone-shots N`: each family, the held-out mean, beside the
same settings without augmentation and the untrained ConSE baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.cli import main
from recsys.encoders import train_catalog_clip
from recsys.store import Store

from ..encoder_helpers import import_shapes

QUICK = {"epochs": 1, "max_steps": 2, "batch_size": 8, "calibration_types": 0,
         "augment_views": 1, "augment_families": ["noise", "room"], "instance_epochs": 1,
         "instance_batch_size": 4}


@pytest.mark.slow
def test_eval_encoder_phone_shots_prints_each_family_and_the_held_out_mean(tmp_path: Path,
                                                                            capsys, monkeypatch):
    """The per-family alignments are the encoder's own model here (which alignment scores which
    family is tests/test_phone_families.py's): what is tested is the command's table."""
    from recsys.encoders import alignment, get_encoder
    from recsys.encoders.alignment import AlignmentResult

    db = tmp_path / "shapes.duckdb"
    store = Store(db)
    import_shapes(store, tmp_path)
    info = train_catalog_clip(store, "shapes", QUICK)
    model = get_encoder(info.spec, store, "shapes").model
    store.close()
    aligned = []

    def same_model(items, cfg, progress=None, on_epoch=None, features=None):
        aligned.append(list(cfg.augment_exclude))
        return AlignmentResult(model)

    monkeypatch.setattr(alignment, "align", same_model)
    argv = ["eval-encoder", "--db", str(db), "--dataset", "shapes", "--phone-shots", "2",
            "--families", "noise", "room"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "held-out family: each family scored by an alignment that never saw its shots" in out
    header = next(line for line in out.splitlines() if line.startswith("query "))
    assert header.split()[1:] == ["noise", "room", "mean"]
    assert aligned == [["noise"], ["room"], []]    # one per held-out family, one without views
    table = out.split("exact-item Recall@10:", 1)[1].split("share cropped", 1)[0]
    rows = {line[:30].strip(): line[30:].split() for line in table.splitlines()
            if line[:30].strip() in ("phone shot", "phone shot, cropped", "no augmentation",
                                     "ConSE (untrained)")}
    assert set(rows) == {"phone shot", "phone shot, cropped", "no augmentation",
                         "ConSE (untrained)"}
    for values in rows.values():                      # two families and their mean
        noise, room, mean = map(float, values)
        assert 0.0 <= noise <= 1.0 and 0.0 <= room <= 1.0
        assert abs(mean - (noise + room) / 2) < 0.0015
    assert main(argv[:-2] + ["tiles"]) != 0
    assert "unknown phone-shot family 'tiles'" in capsys.readouterr().err.lower()
