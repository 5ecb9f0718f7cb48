"""Property tests over the importers: random CSV bytes, random rows, random JSON split files,
random and damaged photos, random and damaged zips and Parquet files, typed paths, long fields.

Invariants, for every input:
  * no traceback: the only exceptions are RecsysError subclasses (clear messages);
  * every row is imported or reported: `rows_read == imported + rows_skipped`, and for rows
    written with Python's csv writer `rows_read` is the number of rows written;
  * a refused import or an error leaves the database exactly as it was;
  * no photo outside the images folder is ever imported; a zip that fails leaves no file.

Bounded to about a minute in the default run and derandomized (the same examples every run,
so CI is deterministic). `RECSYS_FUZZ_SCALE=20 pytest tests/data/test_fuzz_importers.py`
explores 20x more examples with fresh randomness."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from PIL import Image

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.core.paths import PathNotAllowed, PathPolicy
from recsys.data.catalog_import import import_catalog
from recsys.data.images import WORK_SIDE, ImageError, load_image
from recsys.data.interactions_import import import_interactions
from recsys.data.readers import read_table
from recsys.data.uploads import extract_images
from recsys.store import Store

from ..fuzz_helpers import examples, flip_cut_insert
from ..import_helpers import snapshot

# PIL warns (UserWarning "Truncated File Read") about some damaged TIFFs it then refuses
pytestmark = pytest.mark.filterwarnings("ignore:Truncated File Read:UserWarning")



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One store with a catalog 'shop' (3 photos) and its interactions, and a work folder."""
    root = tmp_path_factory.mktemp("fuzz")
    images = root / "images"
    images.mkdir()
    for name, colour in (("a", "red"), ("b", "blue"), ("c", "green")):
        Image.new("RGB", (16, 16), colour).save(images / f"{name}.png")
    private = root / "private"
    private.mkdir()
    Image.new("RGB", (16, 16), "black").save(private / "secret.png")
    os.symlink(private / "secret.png", images / "link.png")
    (root / "cat.csv").write_text("id,title,image\na,A,a.png\nb,B,b.png\nc,C,c.png\n")
    store = Store(root / "fuzz.duckdb")
    import_catalog(store, root / "cat.csv", images, dataset="shop")
    (root / "log.csv").write_text("user,item\nu1,a\nu2,b\nu3,c\n")
    import_interactions(store, root / "log.csv", dataset="shop")
    yield store, root
    store.close()


def check_import(store: Store, call) -> None:
    """Run an import; check the invariants whatever happens."""
    before = snapshot(store)
    try:
        rep = call()
    except RecsysError:
        assert snapshot(store) == before
        return
    if rep.refused:
        assert rep.imported == 0 and snapshot(store) == before
    else:
        assert rep.rows_read == rep.imported + rep.rows_skipped, rep.summary()
    return rep


# -- CSV bytes and rows --------------------------------------------------------------------------
csv_bytes = st.one_of(
    st.binary(max_size=600),
    st.text(alphabet=st.sampled_from('ab,"\n\r\t;=1\x00é'), max_size=300).map(str.encode),
    st.builds(lambda head, body: head + body,
              st.sampled_from([b"user,item,event,timestamp,weight,split\n", b"user,item\n",
                               b"id,title,price,image,year\n", b"\xef\xbb\xbfid,title\n"]),
              st.binary(max_size=400)),
)


@given(data=csv_bytes, interactions=st.booleans())
@examples(150)
def test_random_bytes(world, data: bytes, interactions: bool):
    store, root = world
    path = root / "random.csv"
    path.write_bytes(data)
    if interactions:
        check_import(store, lambda: import_interactions(store, path, dataset="shop"))
    else:
        check_import(store, lambda: import_catalog(store, path, root / "images",
                                                   dataset="fz-cat"))


FIELDS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "a", "b", "zzz", "view", "cart", "purchase", "2024-01-01 10:00",
                     "2024-01-01T10:00+05:30", "1700000000", "1e400", "nan", "-1", "inf", "0",
                     '"', ",", "\n", "\r\n", " ", "=cmd|'/C calc'!A0", "train", "test", "x" * 300,
                     "a.png", "../private/secret.png", "/etc/passwd", "link.png", "\x00"]),
)


def rows_strategy(width: int):
    exact = st.lists(FIELDS, min_size=width, max_size=width)
    other = st.lists(FIELDS, min_size=0, max_size=width + 2)
    return st.lists(st.one_of(exact, exact, exact, other), max_size=25)


def write_rows(path: Path, header: list[str], rows: list[list[str]], quoting: int,
               terminator: str) -> int:
    """Write with Python's csv writer; returns the number of rows a reader must find."""
    if quoting == csv.QUOTE_MINIMAL and "\r" not in terminator:
        # the writer quotes only the terminator's characters: a bare CR would end a line
        rows = [[f.replace("\r", "") for f in row] for row in rows]
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, quoting=quoting, lineterminator=terminator)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    path.write_bytes(buf.getvalue().encode("utf-8", errors="surrogatepass"))
    return sum(1 for row in rows if row)          # an empty row is a blank line


@given(rows=rows_strategy(6), quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
       terminator=st.sampled_from(["\n", "\r\n"]), mode=st.sampled_from(["skip", "refuse"]),
       append=st.booleans())
@examples(150)
def test_random_interaction_rows(world, rows, quoting, terminator, mode, append):
    store, root = world
    path = root / "rows.csv"
    written = write_rows(path, ["user", "item", "event", "timestamp", "weight", "split"], rows,
                         quoting, terminator)
    rep = check_import(store, lambda: import_interactions(
        store, path, dataset="fz-log", on_error=mode, append=append, replace=not append))
    if rep is not None:
        assert rep.rows_read == written
        if rep.refused and mode == "refuse" and not rep.reason:
            assert rep.problems


@given(rows=rows_strategy(5), quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
       mode=st.sampled_from(["skip", "refuse"]), with_folder=st.booleans())
@examples(120)
def test_random_catalog_rows(world, rows, quoting, mode, with_folder):
    store, root = world
    path = root / "items.csv"
    written = write_rows(path, ["id", "title", "price", "image", "year"], rows, quoting, "\n")
    images = root / "images" if with_folder else None
    rep = check_import(store, lambda: import_catalog(store, path, images, dataset="fz-items",
                                                     on_error=mode))
    if rep is not None:
        assert rep.rows_read == written
    inside = os.path.realpath(root / "images") + os.sep
    paths = store.items("fz-items")["image_path"].dropna() if "fz-items" in \
        store.dataset_names() else []
    assert all(os.path.realpath(p).startswith(inside) for p in paths)
    assert all(Path(p).name != "secret.png" for p in paths)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5),
                                                                      children, max_size=5),
    max_leaves=30)


@given(train=json_values, test=st.one_of(st.none(), json_values),
       users=st.dictionaries(st.text(max_size=4), st.lists(st.integers(0, 9) | st.text(
           max_size=3), max_size=6), max_size=8))
@examples(100)
def test_random_json_split_files(world, train, test, users):
    store, root = world
    folder = root / "json"
    folder.mkdir(exist_ok=True)
    (folder / "train.json").write_text(json.dumps(users if train is None else
                                                  {**users, "x": train}))
    if test is None:
        (folder / "test.json").unlink(missing_ok=True)
    else:
        (folder / "test.json").write_text(json.dumps(test))
    check_import(store, lambda: import_interactions(store, folder, fmt="json", dataset="fz-json",
                                                    replace=True))


# -- photos ----------------------------------------------------------------------------------
def _encoded(fmt: str, mode: str, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    img = Image.effect_noise(size, 40).convert(mode)
    img.save(buf, fmt)
    return buf.getvalue()


SEEDS = {f"{fmt}-{mode}": _encoded(fmt, mode, (37, 23)) for fmt, mode in
         [("PNG", "RGBA"), ("PNG", "P"), ("JPEG", "RGB"), ("JPEG", "CMYK"), ("GIF", "P"),
          ("WEBP", "RGB"), ("BMP", "RGB"), ("TIFF", "RGB")]}


@st.composite
def damaged(draw, seeds: dict[str, bytes]) -> bytes:
    """A valid file with a few bytes changed, a cut, or bytes inserted."""
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    return flip_cut_insert(draw, data, 6)


@given(data=st.one_of(st.binary(max_size=300), damaged(SEEDS)))
@examples(300)
def test_random_and_damaged_photos(data: bytes):
    try:
        img = load_image(data, target_size=64)
    except ImageError:
        return
    assert img.mode == "RGB" and max(img.size) <= WORK_SIDE and min(img.size) >= 1


@given(photos=st.lists(st.one_of(st.binary(max_size=200), damaged(SEEDS)), min_size=1,
                       max_size=4))
@examples(40)
def test_catalog_with_random_photos(world, photos):
    store, root = world
    folder = root / "fzphotos"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    lines = ["id,title,image"]
    for i, data in enumerate(photos):
        (folder / f"p{i}.png").write_bytes(data)
        lines.append(f"p{i},Photo {i},p{i}.png")
    (root / "photos.csv").write_text("\n".join(lines) + "\n")
    rep = check_import(store, lambda: import_catalog(store, root / "photos.csv", folder,
                                                     dataset="fz-photos"))
    if rep is not None and not rep.refused:
        assert rep.imported + rep.problems.get("unreadable image", 0) == len(photos)


# -- zips ------------------------------------------------------------------------------------
def _zip(entries: dict[str, bytes], method: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


ZIPS = {f"{method}": _zip({"a.png": SEEDS["PNG-RGBA"], "dir/b.jpg": SEEDS["JPEG-RGB"],
                           "c.txt": b"notes", "d.gif": SEEDS["GIF-P"]}, method)
        for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                       zipfile.ZIP_LZMA)}


@given(data=st.one_of(st.binary(max_size=300), damaged(ZIPS)), limit=st.sampled_from(
    [None, 0.001, 0.01]))
@examples(200)
def test_random_and_damaged_zips(world, data: bytes, limit):
    _, root = world
    dest = root / "unzipped"
    if dest.exists():
        for f in dest.iterdir():
            f.unlink()
    try:
        n = extract_images(io.BytesIO(data), dest, max_unpacked_mb=limit)
    except RecsysError:
        assert not dest.exists() or [f for f in dest.iterdir()] == []
        return
    files = [f for f in dest.iterdir()]
    assert all(f.is_file() for f in files) and len(files) == n
    if limit is not None:
        assert sum(f.stat().st_size for f in files) <= limit * 2**20


# -- paths typed into the app, long fields, Parquet -----------------------------------------------
class FileWatch:
    """Paths the process opens or lists while `active` (a Python audit hook: `open`,
    `os.listdir`, `os.scandir`; C libraries that open files themselves are not seen, which is
    why the policy is checked before any of them runs)."""

    def __init__(self):
        self.active = False
        self.installed = False
        self.seen: list[str] = []

    def install(self) -> None:
        """Once per process (a hook cannot be removed; it returns at once when idle)."""
        if not self.installed:
            sys.addaudithook(self._hook)
            self.installed = True

    def _hook(self, event: str, args: tuple) -> None:
        if self.active and event in ("open", "os.listdir", "os.scandir") and args:
            path = args[0]
            if isinstance(path, (str, bytes, os.PathLike)):
                self.seen.append(os.fsdecode(path))


WATCH = FileWatch()


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """A data root with a catalog and a .npy, and outside it: secrets, a sibling named like
    the root (`data-evil`), links from inside to outside."""
    base = tmp_path_factory.mktemp("roots")
    root, outside, evil = base / "data", base / "outside", base / "data-evil"
    for folder in (root, outside, evil):
        folder.mkdir()
    (root / "cat.csv").write_text("id,title\na,A\nb,B\n")
    np.save(root / "f.npy", np.ones((2, 3), dtype=np.float32))
    (outside / "secret.csv").write_text("id,title\ns,SECRET\nt,SECRET\n")
    (evil / "cat.csv").write_text("id,title\ne,SECRET\nf,SECRET\n")
    os.symlink(outside / "secret.csv", root / "link.csv")
    os.symlink(outside, root / "linkdir")
    (base / "db").mkdir()
    store = Store(base / "db" / "p.duckdb")
    import_catalog(store, root / "cat.csv", dataset="shop")
    yield store, base, PathPolicy((root.resolve(),))
    store.close()


PATH_PARTS = st.sampled_from(["..", ".", "", "data", "data-evil", "outside", "link.csv",
                              "linkdir", "secret.csv", "cat.csv", "f.npy", "\x00", "~", "etc",
                              "passwd", "proc", "self", "environ", "%2e%2e", "..\\..", " ",
                              "data/../outside", "a" * 300])


@st.composite
def typed_paths(draw, base: Path) -> str:
    """Traversal strings, and (a third of the time) paths inside the root with detours
    (`x/..`, `.`, `//`) that must still resolve to the right file."""
    if draw(st.integers(0, 2)) == 0:
        detours = draw(st.lists(st.sampled_from([".", "x/..", "", "linkdir/.."]), max_size=3))
        name = draw(st.sampled_from(["cat.csv", "f.npy", "", "link.csv", "linkdir/secret.csv"]))
        return "/".join([str(base / "data"), *detours, name])
    parts = draw(st.lists(PATH_PARTS, min_size=1, max_size=8))
    start = draw(st.sampled_from([str(base), str(base / "data"), "/", "", "../.."]))
    text = "/".join([start, *parts]) if start else "/".join(parts)
    return text * draw(st.sampled_from([1, 1, 1, 20]))         # sometimes very long


@given(data=st.data(), which=st.sampled_from(["catalog", "images", "interactions",
                                              "features", "ids", "myntra"]))
@examples(150)
def test_typed_paths_never_read_outside_the_roots(roots, data, which):
    """Every path field of the app, fuzzed with traversal strings through the use cases the
    pages call with the app's policy: refused (`PathNotAllowed`) or resolved inside the root;
    no file or folder outside the root is opened or listed, the database is unchanged unless
    a table inside was imported."""
    store, base, policy = roots
    typed = data.draw(typed_paths(base))
    WATCH.install()
    calls = {
        "catalog": lambda: usecases.import_catalog(store, typed, dataset="fz-p",
                                                   path_policy=policy),
        "images": lambda: usecases.import_catalog(store, base / "data" / "cat.csv", typed,
                                                  dataset="fz-p", path_policy=policy),
        "interactions": lambda: usecases.import_interactions(store, typed, dataset="shop",
                                                             replace=True, path_policy=policy),
        "features": lambda: usecases.import_features(store, typed, "style", "shop",
                                                     path_policy=policy),
        "ids": lambda: usecases.import_features(store, base / "data" / "f.npy", "style",
                                                "shop", ids=typed, path_policy=policy),
        "myntra": lambda: usecases.load_myntra_sample(store, typed, users=10,
                                                      path_policy=policy),
    }
    WATCH.seen.clear()
    WATCH.active = True
    try:
        calls[which]()
        event("accepted")
    except PathNotAllowed:
        event("refused: outside the roots")
    except RecsysError as exc:
        event("accepted, then a clear error")
        assert "SECRET" not in str(exc)
    finally:
        WATCH.active = False
    allowed = [str((base / "data").resolve()), str((base / "db").resolve())]

    def read_outside(path: str) -> bool:
        real = os.path.realpath(path)
        return real.startswith(str(base.resolve())) and not any(
            real == a or real.startswith(a + os.sep) for a in allowed)

    outside = [p for p in WATCH.seen if read_outside(p)]
    assert not outside, (typed, outside)


@given(rows=st.lists(st.tuples(st.integers(0, 300_000), st.booleans(), st.booleans()),
                     min_size=1, max_size=6))
@examples(15)
def test_long_fields_are_reported_in_bounded_memory(world, rows):
    """Rows with fields up to 300 KB (quoted or not, some with line breaks) under a 16 KB
    field limit (64 KB lines and rows): every row imported or reported with its line, and the
    reader's peak allocation does not grow with the long fields (only with what it keeps)."""
    import tracemalloc

    store, root = world
    path = root / "long.csv"
    limit_mb = 16 / 1024
    with open(path, "w", newline="") as fh:
        fh.write("id,title,description\n")
        for i, (size, quoted, breaks) in enumerate(rows):
            text = ("a" * 63 + "\n" if breaks else "a" * 64) * (size // 64)
            fh.write(f'i{i},T{i},"{text}"\n' if quoted or breaks else f"i{i},T{i},{text}\n")
    lines = path.read_text().splitlines(keepends=True)
    kept = sum(len(line) for line in lines if len(line) <= 64 * 1024)
    tracemalloc.start()
    try:
        frame, bad = read_table(path, max_field_mb=limit_mb)
    except RecsysError as exc:                 # most lines not rows of the table: refused
        assert "does not look like a table" in str(exc)
        frame = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if frame is not None:
        assert all(len(v) <= 16 * 1024 for v in frame["description"].dropna())
        short_rows = {f"i{i}" for i, (size, quoted, breaks) in enumerate(rows)
                      if size < 16 * 1024 and not breaks}
        assert short_rows <= set(frame["id"])          # rows under the limit are all read
    budget = 4 * 64 * 1024 + 40 * len(lines) * 8 + 6 * kept + 2**20
    assert peak < budget, (peak, kept, len(lines))
    os.environ["RECSYS_MAX_CSV_FIELD_MB"] = str(limit_mb)
    try:
        check_import(store, lambda: import_catalog(store, path, dataset="fz-long"))
    finally:
        del os.environ["RECSYS_MAX_CSV_FIELD_MB"]


def _parquet(frame: pd.DataFrame, **options) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, **options)
    return buf.getvalue()


PARQUETS = {
    "plain": _parquet(pd.DataFrame({"id": ["a", "b", "c"], "title": ["A", "B", "C"],
                                    "price": [1.5, None, 3.0]})),
    "dict": _parquet(pd.DataFrame({"user": ["u1"] * 40, "item": ["a", "b"] * 20}),
                     compression="zstd"),
}


@given(data=st.one_of(st.binary(max_size=300), damaged(PARQUETS)))
@examples(60)
def test_random_and_damaged_parquet(world, data):
    """Random bytes and damaged Parquet files: `DataImportError`, or a frame of strings, and
    never more than a few MB allocated while reading these small files."""
    import tracemalloc

    _, root = world
    path = root / "random.parquet"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        frame, bad = read_table(path)
    except RecsysError:
        frame = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if frame is not None:
        assert all(str(t) == "string" for t in frame.dtypes)
    assert peak < 64 * 2**20
