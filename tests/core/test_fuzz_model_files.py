"""Property tests over the model-file boundary: recommender files (.npz), encoder checkpoints
(safetensors + JSON config, old .pt) and their JSON headers.

Invariants, for every input:
  * a clear error of the boundary's own kind (`DamagedModelFile`, `DamagedCheckpoint`), or a
    model / encoder that loads and scores (finite scores, one per item): never a traceback of
    another type;
  * no code runs: pickles that would `touch` a marker file never do;
  * memory stays bounded: headers that claim huge arrays are refused before allocating.

Derandomized in the default run (~20-40 s); `RECSYS_FUZZ_SCALE=10` explores 10x more
examples with fresh randomness."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from recsys import usecases
from recsys.core.model_files import write_safetensors
from recsys.encoders import checkpoints
from recsys.encoders.checkpoints import (
    CHECKPOINT_FORMAT,
    METADATA_KEY,
    NAME,
    DamagedCheckpoint,
    load_checkpoint,
)
from recsys.models.base import Recommender
from recsys.models.errors import DamagedModelFile
from recsys.recommend.training import train_model
from recsys.store import Store

from ..evil_files import RunsCode
from ..fuzz_helpers import examples


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Seed files: two trained recommenders (dense EASE, sparse item k-NN) and a small
    checkpoint whose tensors fit a stand-in architecture."""
    root = tmp_path_factory.mktemp("fuzz_models")
    rng = np.random.default_rng(0)
    rows = [(f"u{u:02d}", f"i{i:02d}") for u in range(30)
            for i in rng.choice(20, 6, replace=False)]
    (root / "log.csv").write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in rows))
    store = Store(root / "m.duckdb")
    usecases.import_interactions(store, root / "log.csv", dataset="shop")
    seeds = {name: Path(train_model(store, "shop", name, keep_models=0).artifact_path)
             .read_bytes() for name in ("ease", "itemknn")}
    store.close()
    yield root, seeds


# -- recommender files ----------------------------------------------------------------------------
def check_model_file(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        model = Recommender.load(path)
    except DamagedModelFile as exc:
        assert str(exc).startswith(f"The model file {path} is damaged")
        return
    scores = model.score(np.arange(len(model.user_ids)))
    assert scores.shape == (len(model.user_ids), len(model.item_ids))
    assert not np.isnan(scores).any()


def mutate(data: bytes, how: str, at: float, size: int, fill: bytes) -> bytes:
    i = int(at * len(data))
    if how == "truncate":
        return data[:i]
    if how == "flip":
        return data[:i] + bytes(b ^ 0xFF for b in data[i:i + size]) + data[i + size:]
    if how == "insert":
        return data[:i] + fill + data[i:]
    if how == "overwrite":
        return data[:i] + fill + data[i + len(fill):]
    return data[:i] + data[i + size:]                                  # "delete"


mutations = st.tuples(st.sampled_from(["truncate", "flip", "insert", "overwrite", "delete"]),
                      st.floats(0, 1), st.integers(1, 64), st.binary(min_size=1, max_size=32))


@given(data=st.binary(max_size=2048))
@examples(80)
def test_random_bytes_as_a_model_file(world, data: bytes):
    root, _ = world
    check_model_file(root / "random.npz", data)


@given(seed=st.sampled_from(["ease", "itemknn"]), changes=st.lists(mutations, min_size=1,
                                                                     max_size=3))
@examples(250)
def test_damaged_model_files(world, seed: str, changes):
    root, seeds = world
    data = seeds[seed]
    for change in changes:
        data = mutate(data, *change)
    check_model_file(root / "damaged.npz", data)


SHAPES = st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple)
DTYPES = st.sampled_from(["<f4", "<f8", "<i4", "<i8", "|u1", "|b1", "<U3", "<c8", ">f4"])
KEYS = st.sampled_from(["__meta__", "__users__", "__items__", "__seen__::data",
                        "__seen__::indices", "__seen__::indptr", "__seen__::shape", "weights",
                        "variant", "left::data", "left::indptr", "pop", "x::y"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() |
                    st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) |
                    st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@given(replace=st.dictionaries(KEYS, st.tuples(SHAPES, DTYPES), max_size=4),
       meta=st.one_of(st.none(), JSON, st.fixed_dictionaries(
           {"format": st.sampled_from([1, 2, "1"]), "name": st.text(max_size=6),
            "class": st.sampled_from(["EASE", "ItemKNN", "Popularity", "Nope", "Recommender"]),
            "config": st.dictionaries(st.sampled_from(["l2", "neighbors", "seed", "shrink",
                                                       "variant", "bogus"]), JSON, max_size=3),
            "dataset": st.one_of(st.none(), st.text(max_size=5)),
            "history": st.lists(JSON, max_size=2)})),
       seed=st.sampled_from(["ease", "itemknn"]))
@examples(250)
def test_model_files_with_random_arrays_and_headers(world, replace, meta, seed):
    """Well-formed archives holding the wrong arrays: random shapes and types in place of the
    real ones, random JSON (or a random model header) as the header."""
    root, seeds = world
    with np.load(io.BytesIO(seeds[seed]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    rng = np.random.default_rng(len(replace))
    for key, (shape, dtype) in replace.items():
        arrays[key] = (rng.standard_normal(shape) * 5).astype(dtype) if np.dtype(dtype).kind \
            not in "U" else np.full(shape, "a1", dtype=dtype)
    if meta is not None:
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    check_model_file(root / "arrays.npz", buf.getvalue())


def test_a_zip_bomb_member_is_refused_before_it_expands(world):
    """A deflated member of 256 MB of zeros in a ~256 KB archive: refused from the sizes
    alone."""
    root, _ = world
    path = root / "bomb.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (1 << 26,)})

    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("weights.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            zeros = Zeros(1 << 28)
            while chunk := zeros.read(1 << 22):
                member.write(chunk)
    assert path.stat().st_size < 2 << 20
    with pytest.raises(DamagedModelFile, match="expands far more"):
        Recommender.load(path)


# -- encoder checkpoints --------------------------------------------------------------------------
class StandIn(torch.nn.Module):
    """A small architecture in place of catalog-clip's (building the real one takes seconds):
    the fuzz targets the reading and the checks, which do not depend on the size."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        self.register_buffer("steps", torch.zeros(2, dtype=torch.long))


@pytest.fixture(scope="module")
def stand_in(world):
    root, _ = world
    patch = pytest.MonkeyPatch()
    patch.setattr(checkpoints, "build_catalog_model", lambda cfg, pretrained=False: StandIn())
    patch.setattr(checkpoints, "wrap_model", lambda model, cfg, name, version, kind, precision,
                  meta: ("encoder", version))
    good = StandIn()
    header = {"format": CHECKPOINT_FORMAT, "format_version": 2, "name": NAME,
              "version": "shop-1", "dataset": "shop",
              "tower": checkpoints.TowerConfig().to_dict(), "config": {}, "calibration": {}}
    path = root / "good.safetensors"
    write_safetensors(path, good.state_dict(), {METADATA_KEY: json.dumps(header)})
    legacy = io.BytesIO()
    torch.save({**header, "format_version": 1, "state_dict": good.state_dict()}, legacy)
    assert load_checkpoint(path) == ("encoder", "shop-1")
    yield root, path.read_bytes(), header, legacy.getvalue()
    patch.undo()


def check_checkpoint(path: Path, data: bytes, marker: Path | None = None) -> None:
    path.write_bytes(data)
    try:
        loaded = load_checkpoint(path)
    except DamagedCheckpoint as exc:
        assert str(exc).startswith(f"The encoder checkpoint {path} ")
        assert "\n" not in str(exc)
    else:
        assert loaded[0] == "encoder"
    if marker is not None:
        assert not marker.exists()


@given(changes=st.lists(mutations, min_size=1, max_size=3))
@examples(150)
def test_damaged_safetensors_checkpoints(stand_in, changes):
    root, good, _, _ = stand_in
    data = good
    for change in changes:
        data = mutate(data, *change)
    check_checkpoint(root / "damaged.safetensors", data)


@given(data=st.binary(max_size=1024), head=st.sampled_from([b"", b"PK\x03\x04", b"\x80\x02",
                                                            struct.pack("<Q", 40) + b"{"]))
@examples(80)
def test_random_bytes_as_a_checkpoint(stand_in, data: bytes, head: bytes):
    root = stand_in[0]
    check_checkpoint(root / "random.bin", head + data)


@given(tower=st.dictionaries(st.sampled_from(list(checkpoints.TowerConfig().to_dict())
                                             + ["extra"]), JSON, max_size=4),
       top=st.dictionaries(st.sampled_from(["format", "name", "version", "dataset",
                                            "calibration", "tower"]), JSON, max_size=2),
       raw=st.one_of(st.none(), st.text(max_size=40)))
@examples(200)
def test_random_checkpoint_configs(stand_in, tower, top, raw):
    root, _, header, _ = stand_in
    h = {**header, "tower": {**header["tower"], **tower}, **top}
    path = root / "config.safetensors"
    try:
        text = json.dumps(h) if raw is None else raw
    except (ValueError, TypeError):
        text = "{}"
    write_safetensors(path, StandIn().state_dict(), {METADATA_KEY: text})
    check_checkpoint(path, path.read_bytes())


@given(changes=st.lists(mutations, min_size=0, max_size=2),
       payload=st.recursive(st.none() | st.integers() | st.text(max_size=5) |
                            st.just("RUNS-CODE"),
                            lambda inner: st.lists(inner, max_size=3) |
                            st.dictionaries(st.text(max_size=5), inner, max_size=3),
                            max_leaves=8),
       legacy=st.booleans())
@examples(120)
def test_pt_files_never_run_code(stand_in, tmp_path_factory, changes, payload, legacy):
    """Old .pt checkpoints with a pickle that would run a command somewhere inside (or
    damaged): refused by the weights-only unpickler, the command never runs."""
    root, _, header, _ = stand_in
    marker = root / "RAN"

    def plant(value):
        if value == "RUNS-CODE":
            return RunsCode(str(marker))
        if isinstance(value, list):
            return [plant(v) for v in value]
        if isinstance(value, dict):
            return {k: plant(v) for k, v in value.items()}
        return value

    buf = io.BytesIO()
    torch.save({**header, "format_version": 1, "state_dict": StandIn().state_dict(),
                "config": plant(payload), "hook": RunsCode(str(marker))
                if payload == "RUNS-CODE" else None}, buf,
               _use_new_zipfile_serialization=not legacy)
    data = buf.getvalue()
    for change in changes:
        data = mutate(data, *change)
    check_checkpoint(root / "old.pt", data, marker)


def test_a_clean_old_pt_still_loads(stand_in):
    """A .pt of weights and plain settings only is read (through weights_only=True)."""
    root, _, _, legacy = stand_in
    (root / "clean.pt").write_bytes(legacy)
    assert load_checkpoint(root / "clean.pt") == ("encoder", "shop-1")
