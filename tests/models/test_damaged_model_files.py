"""Damaged recommender files (issue 19, item 6): wrong-shape weights, a bad index pointer, bad
header JSON, a truncated or changed archive, NaN weights (which used to give "Top 0 for
user"), arrays of Python objects. Each is found when the file is read (`DamagedModelFile`,
saying the model file is damaged), the run is passed over for the next usable run, and with none
left the model is trained again (or, where the caller may not train, the error says what to
do): in `load_model`, `recommend_for`, `evaluate`, the CLI and the User picks page.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from recsys import usecases
from recsys.cli import main
from recsys.models.base import DamagedModelFile, Recommender
from recsys.recommend.training import DamagedModel, load_model, train_model
from recsys.store import Store

from ..app_helpers import app_test, problems


def _log(path: Path, users: int = 40, items: int = 25, per_user: int = 8) -> Path:
    rng = np.random.default_rng(0)
    rows = [(f"u{u:03d}", f"i{i:03d}") for u in range(users)
            for i in rng.choice(items, per_user, replace=False)]
    path.write_text("user,item,event\n" + "".join(f"{u},{i},view\n" for u, i in rows))
    return path


@pytest.fixture
def shop(tmp_path: Path) -> Store:
    """Interactions only, so every model here trains in well under a second."""
    store = Store(tmp_path / "shop.duckdb")
    usecases.import_interactions(store, _log(tmp_path / "log.csv"), dataset="shop")
    yield store
    store.close()


def arrays_of(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def write(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _key(arrays: dict, *names: str) -> str:
    return next(k for k in arrays if any(k.endswith(n) for n in names))


def damage_file(path: str, kind: str) -> None:
    """Damage a saved model file in place, one way."""
    data = Path(path).read_bytes()
    if kind == "truncated":
        Path(path).write_bytes(data[: len(data) // 2])
        return
    if kind == "flipped bytes":
        mid = len(data) // 2
        Path(path).write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 64])
                               + data[mid + 64:])
        return
    if kind == "not a zip":
        Path(path).write_bytes(b"\x93NUMPY" + data[:200])
        return
    arrays = arrays_of(path)
    if kind == "bad header JSON":
        arrays["__meta__"] = np.frombuffer(b'{"format": 1, "name": "ease", "cla', np.uint8)
    elif kind == "header of another kind":
        arrays["__meta__"] = np.frombuffer(b'[1, 2, 3]', np.uint8)
    elif kind == "unknown class":
        meta = arrays["__meta__"].tobytes().replace(b'"EASE"', b'"Evil\\nClass"')
        arrays["__meta__"] = np.frombuffer(meta, np.uint8)
    elif kind == "NaN weights":
        key = _key(arrays, "weights", "::data")
        w = arrays[key].astype(np.float32)
        w.reshape(-1)[0] = np.nan
        arrays[key] = w
    elif kind == "wrong-shape weights":
        key = _key(arrays, "weights")
        arrays[key] = arrays[key][:-1]
    elif kind == "bad index pointer":
        key = _key(arrays, "::indptr")
        ptr = arrays[key].copy()
        ptr[len(ptr) // 2] = ptr[-1] + 1000
        arrays[key] = ptr
    elif kind == "index out of range":
        key = _key(arrays, "::indices")
        idx = arrays[key].copy()
        idx[0] = 10 ** 6
        arrays[key] = idx
    elif kind == "repeated ids":
        items = arrays["__items__"].copy()
        items[1] = items[0]
        arrays["__items__"] = items
    elif kind == "seen table of another size":
        arrays["__seen__::shape"] = arrays["__seen__::shape"] + np.array([0, 1])
    elif kind == "unknown array":
        arrays["extra::blob"] = np.zeros(3)
    else:
        raise ValueError(kind)
    write(path, arrays)


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
def test_each_kind_of_damage_is_a_damaged_model_file(shop: Store, kind: str):
    model, reason = DAMAGE[kind]
    run = train_model(shop, "shop", model, keep_models=0)
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


def test_nan_weights_no_longer_give_an_empty_list(shop: Store):
    """The reported case: NaN weights gave "Top 0 for user"; now the run is passed over."""
    older = train_model(shop, "shop", "ease", keep_models=0)
    newer = train_model(shop, "shop", "ease", keep_models=0)
    damage_file(newer.artifact_path, "NaN weights")
    run = load_model(shop, "shop", "ease")
    assert run.run_id == older.run_id
    assert len(run.skipped) == 1 and f"Run {newer.run_id} (ease) was skipped" in run.skipped[0]
    recs = usecases.recommend_for(shop, "shop", "u001", "ease", k=5)
    assert recs.run_id == older.run_id and len(recs.items) == 5
    assert any("damaged" in n for n in recs.notes)


def test_when_every_run_is_damaged_the_model_is_trained_again(shop: Store):
    first = train_model(shop, "shop", "ease", keep_models=0)
    damage_file(first.artifact_path, "truncated")
    with pytest.raises(DamagedModel, match="damaged.*Train it again"):
        usecases.recommend_for(shop, "shop", "u001", "ease", k=5, train_if_missing=False)
    recs = usecases.recommend_for(shop, "shop", "u001", "ease", k=5)
    assert recs.run_id > first.run_id and len(recs.items) == 5
    assert any("trained again" in n for n in recs.notes)
    assert any(f"Run {first.run_id}" in n for n in recs.notes)


def test_a_damaged_run_asked_by_id_says_so(shop: Store):
    good = train_model(shop, "shop", "ease", keep_models=0)
    bad = train_model(shop, "shop", "ease", keep_models=0)
    damage_file(bad.artifact_path, "wrong-shape weights")
    with pytest.raises(DamagedModel, match=f"Run {bad.run_id} \\(ease\\): its model file .* "
                                           "is damaged.*Use another run"):
        usecases.recommend_for(shop, "shop", "u001", str(bad.run_id), k=5)
    assert usecases.recommend_for(shop, "shop", "u001", str(good.run_id), k=5).items


def test_evaluate_passes_over_a_damaged_run(shop: Store):
    first = usecases.evaluate(shop, "shop", ["ease"], ks=[10], protocol="random")
    run_id = int(first["run_id"].iloc[0])
    damage_file(shop.run(run_id)["artifact_path"], "NaN weights")
    again = usecases.evaluate(shop, "shop", ["ease"], ks=[10], protocol="random")
    assert int(again["run_id"].iloc[0]) != run_id                  # trained again
    notes = again.attrs["notes"]
    assert any(f"Run {run_id}" in n and "damaged" in n for n in notes)
    assert any("trained again" in n for n in notes)


def test_cli_recommend_notes_the_damaged_run(shop: Store, capsys):
    older = train_model(shop, "shop", "itemknn", keep_models=0)
    newer = train_model(shop, "shop", "itemknn", keep_models=0)
    damage_file(newer.artifact_path, "bad index pointer")
    path = str(shop.path)
    shop.close()
    code = main(["recommend", "--db", path, "--dataset", "shop", "--user", "u001",
                 "--model", "itemknn", "--k", "5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"run {older.run_id}" in out and "Top 5 for user u001" in out
    assert f"note: Run {newer.run_id} (itemknn) was skipped" in err and "Traceback" not in err
    code = main(["recommend", "--db", path, "--dataset", "shop", "--user", "u001",
                 "--model", str(newer.run_id)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: Run") and "damaged" in err


def _private_run(app_db: Path, model: str):
    """A new run of `model` in the test's own copy (its file lies beside that copy: the runs of
    the shared set-up must never be damaged)."""
    store = Store(app_db)
    try:
        return usecases.train(store, "demo", model).run
    finally:
        store.close()


def test_user_picks_page_offers_retraining_when_no_run_of_the_model_is_usable(app_db: Path):
    run = _private_run(app_db, "itemknn")          # the only itemknn run
    data = Path(run.artifact_path).read_bytes()
    Path(run.artifact_path).write_bytes(data[: len(data) // 3])
    at = app_test(app_db, "app_pages/user_picks.py")
    at.selectbox(key="up_run").set_value(run.run_id).run()
    assert not problems(at), problems(at)
    assert any(f"Run {run.run_id} (itemknn): its model file" in w.value and "is damaged" in
               w.value for w in at.warning)
    assert any("No picks" in e.value and "damaged" in e.value for e in at.error)
    retrain = [b for b in at.button if b.label.startswith("Train ") and "again" in b.label]
    assert retrain
    retrain[0].click().run()
    assert not problems(at), problems(at)
    assert not at.error
    assert 'class="rs-card"' in "\n".join(m.value for m in at.markdown)
    store = Store(app_db)
    runs = usecases.list_runs(store, "demo")
    store.close()
    assert (runs["model"] == "itemknn").sum() == 2


def test_user_picks_page_uses_the_next_run_of_the_same_model(app_db: Path):
    store = Store(app_db)
    default = usecases.default_model(store, "demo")
    store.close()
    newer = _private_run(app_db, default)          # becomes the page's default run
    Path(newer.artifact_path).write_bytes(b"not a model")
    at = app_test(app_db, "app_pages/user_picks.py")
    assert not problems(at), problems(at)
    assert any("is damaged" in w.value for w in at.warning)
    assert any(f"Run {newer.run_id}" in i.value and "skipped" in i.value for i in at.info)
    assert not at.error
    assert 'class="rs-card"' in "\n".join(m.value for m in at.markdown)


# -- the caches beside the models ------------------------------------------------------------------
@pytest.mark.parametrize("content", ["truncated", "wrong shape", "NaN", "objects", "fine"])
def test_a_damaged_catalog_map_cache_is_made_again(tmp_path: Path, content: str):
    from recsys.explore.projection import cached_projection

    path = tmp_path / "map.npz"
    good = np.arange(10, dtype=np.float32).reshape(5, 2)
    write(path, {"coords": good})
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif content == "wrong shape":
        write(path, {"coords": np.zeros((5, 3), np.float32)})
    elif content == "NaN":
        write(path, {"coords": np.full((5, 2), np.nan, np.float32)})
    elif content == "objects":
        import zipfile
        buf = io.BytesIO()
        np.save(buf, np.array([None] * 10, dtype=object).reshape(5, 2), allow_pickle=True)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("coords.npy", buf.getvalue())
    made = np.ones((5, 2), np.float32)
    coords, cached = cached_projection(path, lambda: made, rows=5)
    if content == "fine":
        assert cached and np.array_equal(coords, good)
    else:
        assert not cached and np.array_equal(coords, made)
        assert cached_projection(path, lambda: made * 2, rows=5)[1]       # rewritten whole


def test_a_damaged_tastes_cache_is_replayed(tmp_path: Path):
    from recsys.usecases.experiments import _read_tastes

    path = tmp_path / "t.npz"
    arrays = {"user_ids": np.array(["u1", "u2"]), "item_ids": np.array(["a", "b", "c"]),
              "affinity": np.zeros((2, 3)), "type_pref": np.zeros((2, 2)),
              "type_idx": np.array([0, 1, 1])}
    write(path, arrays)
    assert _read_tastes(path) is not None
    for change in ({"affinity": np.zeros((3, 2))}, {"type_idx": np.array([0, 5, 1])},
                   {"type_pref": np.full((2, 2), np.inf)}):
        write(path, {**arrays, **change})
        assert _read_tastes(path) is None
    path.write_bytes(b"PK\x03\x04 not really")
    assert _read_tastes(path) is None
