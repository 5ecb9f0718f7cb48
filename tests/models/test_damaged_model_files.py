"""Damaged recommender files: wrong-shape weights, a bad index pointer, bad header JSON, a
truncated or changed archive, NaN weights, arrays of Python objects, members claiming more
than their bytes. Each is found when the file is read (`DamagedModelFile`, saying the model file
is damaged). What the use cases, the CLI and the pages do then is tested on their floors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from recsys.models.base import Recommender
from recsys.models.errors import DamagedModelFile
from recsys.recommend.training import train_model
from recsys.store import Store

from ..damaged_files import damage_file

DAMAGE = {  # kind -> model it is tried on, words of the reason
    "truncated": ("ease", "not a complete .npz archive"),
    "flipped bytes": ("ease", "checksum|not a complete|cannot be read|does not match"),
    "not a zip": ("ease", "not a complete .npz archive"),
    "bad header JSON": ("ease", "header is not valid JSON"),
    "header of another kind": ("ease", "not a model header"),
    "unknown class": ("ease", "names a model class this version does not have"),
    "NaN weights": ("ease", "not numbers"),
    "wrong-shape weights": ("ease", "do not match its items|do not fit together"),
    "bad index pointer": ("itemknn", "bad index pointer"),
    "index out of range": ("itemknn", "points outside its columns"),
    "repeated ids": ("ease", "item ids repeat"),
    "seen table of another size": ("ease", "seen items does not match"),
    "unknown array": ("ease", "this version does not know"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_each_kind_of_damage_is_a_damaged_model_file(interactions_shop: Store, kind: str):
    model, reason = DAMAGE[kind]
    run = train_model(interactions_shop, "shop", model, keep_models=0)
    damage_file(run.artifact_path, kind)
    with pytest.raises(DamagedModelFile, match=reason) as caught:
        Recommender.load(run.artifact_path)
    message = str(caught.value)
    assert message.startswith(f"The model file {run.artifact_path} is damaged")
    assert "Evil" not in message and "\n" not in message          # no file contents


def test_object_arrays_are_refused_before_they_are_read(tmp_path: Path):
    """An .npz member of Python objects would need pickle: refused from its header."""
    path = tmp_path / "evil.npz"
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    import zipfile
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__meta__.npy", buf.getvalue())
    with pytest.raises(DamagedModelFile, match="Python objects"):
        Recommender.load(path)


def test_a_member_claiming_more_than_its_bytes_is_refused(tmp_path: Path):
    """A header saying 10^12 floats over a few bytes of data: refused before any allocation."""
    import zipfile
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10 ** 6, 10 ** 6)})
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__meta__.npy", header.getvalue() + b"\0" * 16)
    with pytest.raises(DamagedModelFile, match="does not match its shape"):
        Recommender.load(path)
