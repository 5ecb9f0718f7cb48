"""Paths typed into the web app are read only under the data roots, and no message quotes a
server file.

Attacker inputs (`path_attacks`): `/etc/passwd`, `/proc/self/environ`, `../../` traversal, a
symlink inside a root leading out, a root-prefix trick (`data-evil` next to root `data`), NUL
bytes, very long paths; through `check_allowed_path` and every use case that reads a server
path. The command line (no policy) keeps full access. The Data page: tests/app/test_data.py."""

from __future__ import annotations

import os

import numpy as np
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
from recsys.data.catalog_import import import_catalog
from recsys.data.report import DataImportError

from ..import_helpers import snapshot
from ..path_attacks import SECRET, attacks


# -- the check itself ----------------------------------------------------------------------------
def test_check_allowed_path_refuses_every_attack(path_tree):
    for typed in attacks(path_tree):
        with pytest.raises(PathNotAllowed) as err:
            check_allowed_path(typed, [path_tree.root])
        message = str(err.value)
        assert SECRET not in message and len(message) < 700
        if str(path_tree.outside) not in typed:
            assert str(path_tree.outside) not in message        # never where a link leads
        assert "RECSYS_DATA_ROOTS" in message or "NUL character" in message or \
            "longer than 255" in message or f"at most {MAX_PATH_CHARS:,}" in message


def test_refusal_does_not_tell_whether_the_path_exists(path_tree):
    def message(typed: str) -> str:
        with pytest.raises(PathNotAllowed) as err:
            check_allowed_path(typed, [path_tree.root])
        return str(err.value).replace(repr(typed), "PATH")

    existing, missing = path_tree.outside / "secret.csv", path_tree.outside / "nothere.csv"
    assert message(str(existing)) == message(str(missing))
    assert message("/etc/passwd") == message("/etc/no-such-file")
    assert message(str(path_tree.outside)) == message(str(path_tree.tmp / "no-such-folder"))


def test_check_allowed_path_accepts_paths_inside(path_tree, monkeypatch):
    root = path_tree.root
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
    os.symlink(root, path_tree.tmp / "data-link")
    assert check_allowed_path(path_tree.tmp / "data-link" / "cat.csv",
                              [path_tree.tmp / "data-link"])
    assert check_allowed_path(root / "cat.csv", [path_tree.tmp / "data-link"])


def test_policy_without_roots_is_the_cli_full_access(path_tree, store):
    assert PathPolicy().check(path_tree.outside / "secret.csv") == path_tree.outside / "secret.csv"
    assert not PathPolicy().restricted and path_tree.policy.restricted
    with pytest.raises(PathNotAllowed):
        PathPolicy(()).check(path_tree.root / "cat.csv")                # no roots: nothing
    # what names no file is a clear message on the command line too (not an OSError from
    # the first is_file(): "File name too long", "embedded null byte")
    for typed in ("a" * 300 + ".csv", str(path_tree.root / ("b" * 256)), "x\x00.csv", "y" * 5000,
                  "   "):
        for call in (lambda: usecases.import_catalog(store, typed, dataset="x"),
                     lambda: usecases.import_interactions(store, typed, dataset="x"),
                     lambda: usecases.import_features(store, typed, "style", "x"),
                     lambda: usecases.load_myntra_sample(store, typed, users=10)):
            with pytest.raises(RecsysError):
                call()


def test_data_roots_setting(path_tree, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_ROOTS", os.pathsep.join([str(path_tree.root), "",
                                                             str(path_tree.tmp / "data-link")]))
    os.symlink(path_tree.outside, path_tree.tmp / "data-link")
    assert config.data_roots() == [path_tree.root.resolve(), path_tree.outside.resolve()]
    monkeypatch.delenv("RECSYS_DATA_ROOTS")
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(path_tree.outside))
    assert config.data_roots() == [(config.PROJECT_ROOT / "data").resolve(),
                                   path_tree.outside.resolve()]
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(path_tree.tmp / "absent"))
    assert config.data_roots() == [(config.PROJECT_ROOT / "data").resolve()]
    assert PathPolicy.for_app().roots == ((config.PROJECT_ROOT / "data").resolve(),)


# -- every use case that reads a server path -------------------------------------------------
def test_use_cases_refuse_paths_outside_the_roots(path_tree, store):
    import_catalog(store, path_tree.root / "cat.csv", dataset="shop")
    before = snapshot(store)
    p = path_tree.policy
    calls = []
    for typed in attacks(path_tree):
        calls += [
            lambda t=typed: usecases.import_catalog(store, t, dataset="x", path_policy=p),
            lambda t=typed: usecases.import_catalog(store, path_tree.root / "cat.csv", t,
                                                    dataset="x", path_policy=p),
            lambda t=typed: usecases.import_interactions(store, t, dataset="shop",
                                                         path_policy=p),
            lambda t=typed: usecases.import_features(store, t, "style", "shop",
                                                     path_policy=p),
            lambda t=typed: usecases.import_features(store, path_tree.root / "f.npy", "style",
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
    rep = usecases.import_catalog(store, path_tree.outside / "secret.csv", dataset="cli")
    assert rep.imported == 2


def test_files_read_beside_a_path_cannot_lead_out(path_tree, store):
    """A folder inside the root whose files (Myntra images/, a .npy's id mapping, split JSON,
    a .inter) are links out: refused as well."""
    p, root, out = path_tree.policy, path_tree.root, path_tree.outside
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


# -- messages never quote a server file -----------------------------------------------------------
def test_messages_quote_no_server_file(path_tree, store):
    """The CLI may read any file, but what it says about one that is not a table quotes none
    of it: a passwd file, an environment (NUL-separated), a .env (also with commas), a
    non-.npy given as .npy."""
    out = path_tree.outside
    import_catalog(store, path_tree.root / "cat.csv", dataset="shop")
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
