"""The shipped Streamlit settings (.streamlit/config.toml) that the app's speed depends on."""

from __future__ import annotations

import tomllib

from ..app_helpers import ROOT


def _server_settings() -> dict:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]


def test_shipped_config_turns_the_source_file_watcher_off():
    # With Streamlit's default watcher ("auto"), each browser session walks every module in
    # sys.modules on the server's event loop after a run that imported something new: a
    # visitor's first page and first photo upload waited 0.35-1.0 s after their results were
    # sent (benchmarks/app.py --first-upload). Development: --server.fileWatcherType auto.
    assert _server_settings().get("fileWatcherType") == "none"


def test_streamlit_accepts_the_shipped_watcher_setting():
    from streamlit import config

    option = config._config_options_template["server.fileWatcherType"]
    assert option.key == "server.fileWatcherType"
    assert _server_settings()["fileWatcherType"] in ("auto", "watchdog", "poll", "none")
