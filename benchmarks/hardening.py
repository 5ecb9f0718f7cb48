"""Costs of the import and image safeguards: Myntra import time and peak memory per photo.

Runs each measurement in a fresh subprocess so that peak RSS is that of the one job, and can
compare two checkouts side by side (e.g. the code before and after a change):

    python benchmarks/hardening.py                       # this checkout
    python benchmarks/hardening.py --root /tmp/base .    # two checkouts, alternating runs

Prints one line per measurement: checkout, job, seconds, peak RSS in MB, and the job's output.
Photos that would exhaust memory before the safeguards are run under `ulimit -v` (default
3 GB) so that a regression cannot take the machine down.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JOBS = {
    "read styles.csv": """
from recsys.data.readers import read_table
import time
t = time.perf_counter(); frame = read_table({csv!r})[0]
print(f"{{len(frame)}} rows in {{time.perf_counter() - t:.2f}} s")
""",
    "import myntra": """
import time
from recsys.store import Store
from recsys.data.catalog_import import import_catalog
s = Store({db!r})
t = time.perf_counter()
rep = import_catalog(s, {csv!r}, fmt="myntra")
print(f"{{rep.imported}} items in {{time.perf_counter() - t:.2f}} s")
""",
}

IMAGE_JOB = """
from recsys.data.images import load_image, ImageError
try:
    img = load_image({path!r}, target_size=224)
    print("loaded", img.size)
except ImageError as exc:
    print("refused:", str(exc)[:90])
"""

PREPARE_JOB = """
from recsys.encoders.clip_encoder import prepare_image
from recsys.data.images import ImageError
try:
    print("prepared", prepare_image({path!r}, 224).shape)
except ImageError as exc:
    print("refused:", str(exc)[:90])
"""


def make_images(folder: Path) -> dict[str, Path]:
    """Wide and huge photos that are tiny on disk."""
    from PIL import Image

    specs = {"39000x1000 L png": ("L", (39000, 1000), {}),
             "4000000x10 L png": ("L", (4_000_000, 10), {}),
             "20000x1000 L png": ("L", (20000, 1000), {}),
             "6300x6300 RGBA png": ("RGBA", (6300, 6300), {}),
             "6300x6300 P png": ("P", (6300, 6300), {"transparency": 0}),
             "6300x6300 I;16 png": ("I;16", (6300, 6300), {}),
             "7000x5700 RGB jpeg": ("RGB", (7000, 5700), {}),
             "6300x6300 RGB progressive jpeg": ("RGB", (6300, 6300), {"progressive": True}),
             "6300x6300 RGB 4:4:4 progressive jpeg": ("RGB", (6300, 6300),
                                                      {"progressive": True, "subsampling": 0}),
             "6300x6300 CMYK jpeg": ("CMYK", (6300, 6300), {}),
             "6300x6300 RGB lzw tiff": ("RGB", (6300, 6300), {"compression": "tiff_lzw"}),
             "6300x6300 RGB bmp": ("RGB", (6300, 6300), {}),
             "6300x6300 P gif": ("P", (6300, 6300), {}),
             "6300x6300 RGBA webp": ("RGBA", (6300, 6300), {"lossless": True}),
             "3600x3600 RGBA webp": ("RGBA", (3600, 3600), {"lossless": True})}
    out = {}
    for name, (mode, size, options) in specs.items():
        ext = {"jpeg": "jpg", "tiff": "tif"}.get(name.rsplit(" ", 1)[1], name.rsplit(" ", 1)[1])
        path = folder / f"{name.replace(' ', '_').replace(':', '')}.{ext}"
        if not path.exists():
            Image.new(mode, size).save(path, **options)
        out[name] = path
    return out


def run(root: Path, code: str, limit_mb: int) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, last output line) of `code` run with `root` on sys.path."""
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    script = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit_mb << 20}, "
              f"{limit_mb << 20}))\n" + code +
              "\nprint('RSS', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, cwd=root)
    seconds = time.perf_counter() - t
    lines = out.stdout.strip().splitlines()
    rss = next((int(line.split()[1]) / 1024 for line in lines if line.startswith("RSS")), -1.0)
    text = next((line for line in lines if not line.startswith("RSS")), "")
    if out.returncode:
        err = out.stderr.strip().splitlines()
        text = f"exit {out.returncode}: {err[-1][:90] if err else 'killed'}"
    return seconds, rss, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", default=[str(ROOT)], help="checkouts to compare")
    parser.add_argument("--root", action="append", default=[], help="another checkout")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--limit-mb", type=int, default=3072, help="address-space cap per job")
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()
    roots = [Path(r).resolve() for r in args.root + args.roots]
    from recsys.core.config import shared_datasets_dir

    csv = shared_datasets_dir() / "myntra_fashion" / "styles.csv"
    with tempfile.TemporaryDirectory() as tmp:
        images = make_images(Path(tmp))
        if not args.skip_import and csv.is_file():
            for job, code in JOBS.items():
                for i in range(args.repeat):
                    for root in roots:
                        db = Path(tmp) / f"bench-{i}-{abs(hash(root))}.duckdb"
                        sec, rss, text = run(root, code.format(csv=str(csv), db=str(db)),
                                             args.limit_mb)
                        print(f"{root}\t{job}\t{sec:.2f} s\t{rss:.0f} MB\t{text}", flush=True)
        for name, path in images.items():
            for label, code in (("load_image", IMAGE_JOB), ("prepare_image", PREPARE_JOB)):
                for root in roots:
                    sec, rss, text = run(root, code.format(path=str(path)), args.limit_mb)
                    print(f"{root}\t{label} {name}\t{sec:.2f} s\t{rss:.0f} MB\t{text}",
                          flush=True)


if __name__ == "__main__":
    main()
