"""Running `python -m recsys` commands inside the test process."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

from recsys.cli import main


def cli(*argv: str) -> tuple[int, dict | list | str, str]:
    """Run a command; (exit code, its JSON or text output, its error output).

    Not with pytest's capsys: AppTest re-creates Streamlit's log handlers on the stderr of the
    moment, and capsys closes its stream when the test ends."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    text = out.getvalue()
    return code, (json.loads(text) if "--json" in argv and code == 0 else text), err.getvalue()
