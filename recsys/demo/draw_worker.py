"""A drawing process of `art.render_catalog`: `python -m recsys.demo.draw_worker`.

Reads one JSON document from stdin, `{"dir": folder, "size": pixels, "specs": [spec, ...]}`,
draws each spec as `<item_id>.jpg` in the folder (`art._draw_file`) and prints the spec's
position in the list on its own line when its file is in place, so the parent can count
progress. A plain subprocess rather than a `multiprocessing` pool: a pool started by
"spawn" or "forkserver" runs the parent's main script again in every worker when that script
has no `if __name__ == "__main__"` guard, and one started by "fork" copies locks held by the
parent's other threads (the encoder's preload thread is importing torch meanwhile).
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from recsys.demo.art import _draw_file

    job = json.load(sys.stdin)
    for i, spec in enumerate(job["specs"]):
        _draw_file((spec, job["dir"], int(job["size"])))
        print(i, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
