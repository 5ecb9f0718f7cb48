"""The test suite mirrors the code: `tests/<package>/test_<module>.py` tests
`recsys/<package>/<module>.py` (a suffix names one aspect, e.g. `data/test_image_limits.py`);
`tests/usecases/`, `tests/cli/` and `tests/app/` test the use cases, the commands and the pages
(`app_pages/`, `ui/`, AppTest and the browser); `tests/test_architecture.py` checks the floors.
Shared fixtures live in `conftest.py`, shared helpers in the modules beside it. Timing
assertions are marked `perf` and run only with RECSYS_PERF_TESTS=1."""
