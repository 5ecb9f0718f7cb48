"""Nothing the app and the CLI run deserialises unsafely: no pickle,
`torch.load(weights_only=False)`, `np.load(allow_pickle=True)` or `joblib.load` in `recsys/`,
`app.py`, `app_pages/`, `ui/` (a text search, and a syntax-tree check that every `torch.load`
says `weights_only=True`). The loaders
themselves: tests/encoders/test_checkpoints.py, tests/models/test_damaged_model_files.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVED = [ROOT / "recsys", ROOT / "app.py", ROOT / "app_pages", ROOT / "ui"]
FORBIDDEN = {
    "weights_only=False": re.compile(r"weights_only\s*=\s*False"),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "joblib.load": re.compile(r"\bjoblib\s*\.\s*load"),
    "pickle": re.compile(r"\bimport\s+(c?pickle|dill|cloudpickle|shelve|marshal)\b|"
                         r"\bfrom\s+(c?pickle|dill|cloudpickle|shelve|marshal)\s+import|"
                         r"\b(c?pickle|dill|cloudpickle|marshal)\s*\.\s*loads?\s*\(|"
                         r"\bread_pickle\s*\(|\bshelve\s*\.\s*open\s*\("),
}


def served_files() -> list[Path]:
    out = []
    for root in SERVED:
        out += [root] if root.is_file() else sorted(root.rglob("*.py"))
    return out


def test_no_unsafe_deserialisation_in_the_served_code():
    found = []
    for path in served_files():
        text = path.read_text()
        for what, pattern in FORBIDDEN.items():
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not found, "unsafe deserialisation:\n" + "\n".join(found)


def test_every_torch_and_numpy_load_is_the_safe_one():
    """`torch.load` only with a literal `weights_only=True`; `np.load` never with
    `allow_pickle` other than a literal False (its default is False)."""
    bad = []
    for path in served_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) or \
                    node.func.attr != "load" or not isinstance(node.func.value, ast.Name):
                continue
            kw = {k.arg: k.value for k in node.keywords}
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if node.func.value.id == "torch":
                v = kw.get("weights_only")
                if not (isinstance(v, ast.Constant) and v.value is True):
                    bad.append(f"{where}: torch.load without weights_only=True")
            elif node.func.value.id in ("np", "numpy"):
                v = kw.get("allow_pickle")
                if v is not None and not (isinstance(v, ast.Constant) and v.value is False):
                    bad.append(f"{where}: np.load with allow_pickle not False")
    assert not bad, "\n".join(bad)
