"""Paths typed into the web app are read only under the data roots (issue 19, item 2), and no
message quotes a server file (item 2a); video folders do not follow links out (item 11).

Attacker inputs: `/etc/passwd`, `/proc/self/environ`, `../../` traversal, a symlink inside a
root leading out, a root-prefix trick (`data-evil` next to root `data`), NUL bytes, very long
paths; through `check_allowed_path`, every use case that reads a server path, and the Data page
(AppTest). The command line (no policy) keeps full access.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from recsys import usecases
from recsys.core import config
from recsys.core.errors import RecsysError
from recsys.core.paths import (
    MAX_PATH_CHARS,
    PathNotAllowed,
    PathPolicy,
    check_allowed_path,
)
from recsys.data.datasets import (
    DataImportError,
    describe_columns,
    import_catalog,
    safe_reason,
)
from recsys.store import Store

from ..app_helpers import ROOT, app_test, problems
from ..data.test_datasets import snapshot

SECRET = "TOPSECRET-hunter2"


@pytest.fixture
def tree(tmp_path: Path) -> SimpleNamespace:
    """A data root with a catalog, and beside it what an attacker would like to read: a folder
    outside, a sibling whose name starts like the root's, and links from inside to outside."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "cat.csv").write_text("id,title\na,Alpha\nb,Beta\n")
    (root / "log.csv").write_text("user,item\nu1,a\nu2,b\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"id,title\ns1,{SECRET}\ns2,{SECRET}\n")
    (outside / "passwd").write_text(f"root:x:0:0:{SECRET}:/root:/bin/bash\n")
    evil = tmp_path / "data-evil"
    evil.mkdir()
    (evil / "cat.csv").write_text(f"id,title\ne1,{SECRET}\ne2,{SECRET}\n")
    os.symlink(outside / "secret.csv", root / "link.csv")
    os.symlink(outside, root / "linkdir")
    return SimpleNamespace(root=root, outside=outside, evil=evil, tmp=tmp_path,
                           policy=PathPolicy((root.resolve(),)))


def attacks(t: SimpleNamespace) -> list[str]:
    return ["/etc/passwd", "/proc/self/environ", str(t.outside / "secret.csv"),
            str(t.outside / "missing.csv"), str(t.root / ".." / "outside" / "secret.csv"),
            str(t.root / "../../../../../../etc/passwd"), str(t.root / "link.csv"),
            str(t.root / "linkdir" / "secret.csv"), str(t.evil / "cat.csv"), str(t.evil),
            str(t.root) + "-evil/cat.csv", str(t.root / "cat.csv") + "\x00.png",
            "\x00", str(t.root / ("a" * 300)) + "/" + "b" * 5000, "../" * 2000 + "etc/passwd",
            str(t.outside)]


# -- the check itself ----------------------------------------------------------------------------
def test_check_allowed_path_refuses_every_attack(tree):
    for typed in attacks(tree):
        with pytest.raises(PathNotAllowed) as err:
            check_allowed_path(typed, [tree.root])
        message = str(err.value)
        assert SECRET not in message and len(message) < 700
        if str(tree.outside) not in typed:
            assert str(tree.outside) not in message        # never where a link leads
        assert "RECSYS_DATA_ROOTS" in message or "NUL character" in message or \
            "longer than 255" in message or f"at most {MAX_PATH_CHARS:,}" in message


def test_refusal_does_not_tell_whether_the_path_exists(tree):
    def message(typed: str) -> str:
        with pytest.raises(PathNotAllowed) as err:
            check_allowed_path(typed, [tree.root])
        return str(err.value).replace(repr(typed), "PATH")

    existing, missing = tree.outside / "secret.csv", tree.outside / "nothere.csv"
    assert message(str(existing)) == message(str(missing))
    assert message("/etc/passwd") == message("/etc/no-such-file")
    assert message(str(tree.outside)) == message(str(tree.tmp / "no-such-folder"))


def test_check_allowed_path_accepts_paths_inside(tree, monkeypatch):
    root = tree.root
    assert check_allowed_path(root / "cat.csv", [root]) == (root / "cat.csv").resolve()
    assert check_allowed_path(str(root / "x" / ".." / "cat.csv"), [root]) == \
        (root / "cat.csv").resolve()
    assert check_allowed_path(root, [root]) == root.resolve()
    assert check_allowed_path(root / "not-yet.csv", [root])          # may not exist yet
    os.symlink(root / "cat.csv", root / "alias.csv")                   # a link inside
    assert check_allowed_path(root / "alias.csv", [root]) == (root / "cat.csv").resolve()
    monkeypatch.chdir(root)
    assert check_allowed_path("cat.csv", [root]) == (root / "cat.csv").resolve()
    # a root that is itself a symlink: paths through either name are inside
    os.symlink(root, tree.tmp / "data-link")
    assert check_allowed_path(tree.tmp / "data-link" / "cat.csv", [tree.tmp / "data-link"])
    assert check_allowed_path(root / "cat.csv", [tree.tmp / "data-link"])


def test_policy_without_roots_is_the_cli_full_access(tree, store):
    assert PathPolicy().check(tree.outside / "secret.csv") == tree.outside / "secret.csv"
    assert not PathPolicy().restricted and tree.policy.restricted
    with pytest.raises(PathNotAllowed):
        PathPolicy(()).check(tree.root / "cat.csv")                # no roots: nothing
    # what names no file is a clear message on the command line too (not an OSError from
    # the first is_file(): "File name too long", "embedded null byte")
    for typed in ("a" * 300 + ".csv", str(tree.root / ("b" * 256)), "x\x00.csv", "y" * 5000,
                  "   "):
        for call in (lambda: usecases.import_catalog(store, typed, dataset="x"),
                     lambda: usecases.import_interactions(store, typed, dataset="x"),
                     lambda: usecases.import_features(store, typed, "style", "x"),
                     lambda: usecases.load_myntra_sample(store, typed, users=10)):
            with pytest.raises(RecsysError):
                call()


def test_data_roots_setting(tree, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_ROOTS", os.pathsep.join([str(tree.root), "",
                                                             str(tree.tmp / "data-link")]))
    os.symlink(tree.outside, tree.tmp / "data-link")
    assert config.data_roots() == [tree.root.resolve(), tree.outside.resolve()]
    monkeypatch.delenv("RECSYS_DATA_ROOTS")
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(tree.outside))
    assert config.data_roots() == [(config.PROJECT_ROOT / "data").resolve(),
                                   tree.outside.resolve()]
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(tree.tmp / "absent"))
    assert config.data_roots() == [(config.PROJECT_ROOT / "data").resolve()]
    assert PathPolicy.for_app().roots == ((config.PROJECT_ROOT / "data").resolve(),)


# -- every use case that reads a server path -------------------------------------------------
def test_use_cases_refuse_paths_outside_the_roots(tree, store):
    import_catalog(store, tree.root / "cat.csv", dataset="shop")
    before = snapshot(store)
    p = tree.policy
    calls = []
    for typed in attacks(tree):
        calls += [
            lambda t=typed: usecases.import_catalog(store, t, dataset="x", path_policy=p),
            lambda t=typed: usecases.import_catalog(store, tree.root / "cat.csv", t,
                                                    dataset="x", path_policy=p),
            lambda t=typed: usecases.import_interactions(store, t, dataset="shop",
                                                         path_policy=p),
            lambda t=typed: usecases.import_features(store, t, "style", "shop",
                                                     path_policy=p),
            lambda t=typed: usecases.import_features(store, tree.root / "f.npy", "style",
                                                     "shop", ids=t, path_policy=p),
            lambda t=typed: usecases.load_myntra_sample(store, t, users=10, path_policy=p),
            lambda t=typed: usecases.find_myntra_sample(t, path_policy=p),
            lambda t=typed: usecases.embed(store, "shop", videos=t, path_policy=p),
        ]
    for call in calls:
        with pytest.raises(PathNotAllowed) as err:
            call()
        assert SECRET not in str(err.value)
    assert snapshot(store) == before
    # the CLI (no policy) reads where its user says
    rep = usecases.import_catalog(store, tree.outside / "secret.csv", dataset="cli")
    assert rep.imported == 2


def test_files_read_beside_a_path_cannot_lead_out(tree, store):
    """A folder inside the root whose files (Myntra images/, a .npy's id mapping, split JSON,
    a .inter) are links out: refused as well."""
    p, root, out = tree.policy, tree.root, tree.outside
    import_catalog(store, root / "cat.csv", dataset="shop")
    before = snapshot(store)
    myntra = root / "myntra"
    myntra.mkdir()
    (myntra / "styles.csv").write_text("id,productDisplayName\n1,A\n")
    (out / "images").mkdir()
    os.symlink(out / "images", myntra / "images")
    with pytest.raises(PathNotAllowed, match="images folder"):
        usecases.import_catalog(store, myntra / "styles.csv", fmt="myntra", dataset="m",
                                path_policy=p)
    assert usecases.find_myntra_sample(myntra, path_policy=p) is None
    feats = root / "feats"
    feats.mkdir()
    np.save(feats / "f.npy", np.ones((2, 3), dtype=np.float32))
    (out / "i_id_mapping.csv").write_text(f"asin\titemID\n{SECRET}\t0\n")
    os.symlink(out / "i_id_mapping.csv", feats / "i_id_mapping.csv")
    with pytest.raises(PathNotAllowed, match="id mapping"):
        usecases.import_features(store, feats / "f.npy", "style", "shop", path_policy=p)
    split = root / "split"
    split.mkdir()
    (split / "train.json").write_text('{"u1": ["a"]}')
    (out / "test.json").write_text('{"u2": ["b"]}')
    os.symlink(out / "test.json", split / "test.json")
    with pytest.raises(PathNotAllowed):
        usecases.import_interactions(store, split, fmt="json", dataset="shop", replace=True,
                                     path_policy=p)
    inter = root / "inter"
    inter.mkdir()
    (out / "x.inter").write_text("userID\titemID\tx_label\nu1\ta\t0\n")
    os.symlink(out / "x.inter", inter / "x.inter")
    with pytest.raises(PathNotAllowed):
        usecases.import_interactions(store, inter, fmt="mmrec", dataset="shop", path_policy=p)
    assert snapshot(store) == before
    # the same files inside the root are fine
    rep = usecases.import_interactions(store, root / "log.csv", dataset="shop", path_policy=p)
    assert rep.imported == 2


def test_pages_pass_the_app_policy_to_every_use_case_reading_a_path():
    """A guard for pages to come: every call of a use case that reads a server path passes
    `path_policy` (directly or through a helper such as `with_progress`)."""
    reading = {"import_catalog", "import_interactions", "import_features",
               "load_myntra_sample", "embed"}
    missing = []
    for page in sorted((ROOT / "app_pages").glob("*.py")) + sorted((ROOT / "ui").glob("*.py")):
        for node in ast.walk(ast.parse(page.read_text())):
            if not isinstance(node, ast.Call):
                continue
            named = [a.attr for a in [node.func, *node.args]
                     if isinstance(a, ast.Attribute) and a.attr in reading]
            if named and not any(k.arg == "path_policy" for k in node.keywords):
                missing.append(f"{page.name}:{node.lineno} {named[0]}")
    assert not missing, missing


# -- messages never quote a server file (item 2a) -----------------------------------------------
def test_messages_quote_no_server_file(tree, store):
    """The CLI may read any file, but what it says about one that is not a table quotes none
    of it: a passwd file, an environment (NUL-separated), a .env (also with commas), a
    non-.npy given as .npy."""
    out = tree.outside
    import_catalog(store, tree.root / "cat.csv", dataset="shop")
    files = {"passwd": f"root:x:0:0:{SECRET}:/root:/bin/bash\ndaemon:x:1:1::/:/bin/sh\n",
             "environ": f"HOME=/root\x00TOKEN={SECRET}\x00PATH=/bin,/usr/bin\x00",
             ".env": f"SECRET_KEY={SECRET}\nDB_URL=postgres://u:{SECRET}@h/db\n",
             "keys.env": f"KEYS={SECRET},{SECRET}2\nOTHER=a,b\n",
             "mixed.csv": f"a b,{SECRET}=1\n1,2\n"}
    for name, text in files.items():
        (out / name).write_text(text)
        for call in (lambda: usecases.import_features(store, out / name, "style", "shop"),
                     lambda: usecases.import_features(store, out / name, "style", "shop",
                                                      columns={"item_id": "x"}),
                     lambda: import_catalog(store, out / name, dataset="z"),
                     lambda: import_catalog(store, out / name, dataset="z",
                                            columns={"item_id": "nope"}),
                     lambda: usecases.import_interactions(store, out / name, dataset="shop"),
                     lambda: usecases.import_interactions(store, out / name, fmt="json",
                                                          dataset="shop")):
            try:
                result = call()
                text_out = result.summary()
            except RecsysError as exc:
                text_out = str(exc)
            assert SECRET not in text_out and "root:x" not in text_out, (name, text_out)
    (out / "bad.npy").write_bytes(b"root:x:0:0:" + SECRET.encode())
    with pytest.raises(DataImportError) as err:
        usecases.import_features(store, out / "bad.npy", "style", "shop")
    assert "root" not in str(err.value) and "not a .npy" in str(err.value)


def test_column_names_are_shown_only_for_a_real_header():
    assert describe_columns(["id", "title", "Unnamed: 2", "price (EUR)"]) == \
        "its columns: id, title, Unnamed: 2, price (EUR)"
    for names in (["root:x:0:0:root:/root:/bin/bash"], ["SECRET=x", "b"], ["id"],
                  ["a", "b\x00c"], ["a", "x" * 80], ["HOME=/root TOKEN=1", "y"]):
        assert describe_columns(names) == \
            "its first line does not read as column names (not shown)"
    assert "13 more" in describe_columns([f"c{i}" for i in range(25)])
    assert safe_reason(ValueError("expected b'\\x93NUMPY', got b'root:x'")) == \
        "expected …, got …"
    assert safe_reason(ValueError("Expected 3 fields in line 5, saw 4")) == \
        "Expected 3 fields in line 5, saw 4"
    assert "position 4" in safe_reason(_unicode_error())


def _unicode_error() -> UnicodeDecodeError:
    try:
        b"abcd\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError


# -- the Data page -------------------------------------------------------------------------------
def page_text(at) -> str:
    return "\n".join(str(e.value) for kind in ("error", "warning", "success", "info",
                                               "markdown", "caption")
                     for e in getattr(at, kind))


def test_data_page_reads_only_under_the_data_roots(app_db: Path, tree, monkeypatch):
    """The same attacks typed into every path field of the Data page: an error in the page
    quoting nothing of the file, nothing imported; a table inside the root still imports."""
    monkeypatch.setenv("RECSYS_DATA_ROOTS", str(tree.root))
    before = Store(app_db)
    try:
        was = snapshot(before)
    finally:
        before.close()
    at = app_test(app_db, "app_pages/data.py")
    at.radio(key="cat_source").set_value("Folder path on this machine").run()
    at.radio(key="inter_source").set_value("Path on this machine").run()
    assert str(tree.root.resolve()) in page_text(at)            # the page says where

    def submit(label: str) -> None:
        next(b for b in at.button if b.label == label).click().run()

    def fields(label: str):
        return [w for w in at.text_input if w.label == label]

    typed = ["/etc/passwd", "/proc/self/environ", str(tree.root / "link.csv"),
             str(tree.evil / "cat.csv"), str(tree.root / "../../../../../../../etc/passwd")]
    for path in typed:
        fields("Table path")[0].input(path)
        submit("Import catalog")
        assert at.error and ("not inside the folders" in at.error[0].value or
                             "characters long" in at.error[0].value)
        fields("Table path")[0].input(str(tree.root / "cat.csv"))
        fields("Images folder")[0].input(path)
        submit("Import catalog")
        assert at.error and "images folder" in at.error[0].value.lower()
        fields("Path")[0].input(path)
        submit("Import interactions")
        assert at.error and "interaction file path" in at.error[0].value
        at.text_input(key="feat_modality").input("style")
        at.text_input(key="feat_path").input(path)
        submit("Import features")
        assert at.error and "feature file path" in at.error[0].value
        at.text_input(key="feat_path").input(str(tree.root / "f.npy"))
        at.text_input(key="feat_ids_path").input(path)
        submit("Import features")
        assert at.error and "id mapping path" in at.error[0].value
        at.text_input(key="feat_ids_path").input("")
        at.text_input(key="myntra_folder").input(path)
        at.button(key="myntra_load").click().run()
        assert at.error and "Myntra folder" in at.error[0].value
        text = page_text(at)
        assert SECRET not in text and "root:x" not in text and not problems(at)
    store = Store(app_db)
    try:
        assert snapshot(store) == was
    finally:
        store.close()
    fields("Table path")[0].input(str(tree.root / "cat.csv"))
    fields("Images folder")[0].input(str(tree.root))             # a folder inside: fine
    next(w for w in at.text_input if w.label == "Dataset name").input("inside")
    submit("Import catalog")
    assert not problems(at) and not at.error, [e.value for e in at.error]
    assert any("Imported 2 items into 'inside'" in s.value
                                    for s in at.success)


# -- video folders (item 11) ---------------------------------------------------------------------
def test_video_folder_links_out_are_refused_per_file(tmp_path):
    from recsys.vectors.embed import item_videos

    folder, outside = tmp_path / "videos", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "a.mp4").write_bytes(b"video a")
    (outside / "secret.mp4").write_bytes(b"not yours")
    os.symlink(outside / "secret.mp4", folder / "b.mp4")          # a link out: refused
    os.symlink(folder / "a.mp4", folder / "c.webm")               # a link inside: fine
    os.symlink(outside, folder / "sub")
    os.symlink(outside / "missing.mp4", folder / "d.mp4")         # dangling, outside
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d", "e"]})
    refused: dict[str, str] = {}
    found = item_videos(items, folder, refused=refused)
    assert found == {"a": str((folder / "a.mp4").resolve()),
                     "c": str((folder / "a.mp4").resolve())}
    assert set(refused) == {"b", "d"} and all("link out of the videos folder" in r
                                              for r in refused.values())
    assert str(outside) not in " ".join(refused.values())


@pytest.fixture
def video_folder_shop(tmp_path):
    pytest.importorskip("av")
    from ..encoder_helpers import import_shapes
    from ..data.test_video import product_clip

    store = Store(tmp_path / "v.duckdb")
    import_shapes(store, tmp_path, copies=1)
    ids = store.item_ids("shapes")
    folder, outside = tmp_path / "videos", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / f"{ids[0]}.mp4").write_bytes(product_clip("polygon", "Black"))
    (outside / "private.mp4").write_bytes(product_clip("ellipse", "Red"))
    os.symlink(outside / "private.mp4", folder / f"{ids[1]}.mp4")
    yield store, folder, ids
    store.close()


def test_embed_reports_a_video_linking_out_of_its_folder(video_folder_shop, frozen):
    """`embed --videos FOLDER` (and the use case): the file that links out is reported in the
    embed report, not read; the video inside is embedded."""
    from recsys.vectors.embed import embed_items

    store, folder, ids = video_folder_shop
    rep = embed_items(store, "shapes", frozen, videos=folder)
    assert rep.embedded["video"] == 1
    assert set(rep.failed_videos) == {ids[1]}
    assert "link out of the videos folder" in rep.summary()
