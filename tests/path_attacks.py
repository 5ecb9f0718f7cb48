"""What an attacker types into a path field: the `path_tree` fixture (conftest.py) lays out a
data root and what lies beside it; `attacks` lists the paths that must never be read."""

from __future__ import annotations

from types import SimpleNamespace

SECRET = "TOPSECRET-hunter2"


def attacks(t: SimpleNamespace) -> list[str]:
    return ["/etc/passwd", "/proc/self/environ", str(t.outside / "secret.csv"),
            str(t.outside / "missing.csv"), str(t.root / ".." / "outside" / "secret.csv"),
            str(t.root / "../../../../../../etc/passwd"), str(t.root / "link.csv"),
            str(t.root / "linkdir" / "secret.csv"), str(t.evil / "cat.csv"), str(t.evil),
            str(t.root) + "-evil/cat.csv", str(t.root / "cat.csv") + "\x00.png",
            "\x00", str(t.root / ("a" * 300)) + "/" + "b" * 5000, "../" * 2000 + "etc/passwd",
            str(t.outside)]
