"""Test set-up: offscreen Qt, a private cache and torch hub folder, and no network at all."""

import os
import urllib.request

# Before any QApplication exists.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Each test sees an empty torch hub cache; the sample data set is made once per session."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
    monkeypatch.setenv("TLGUI_CACHE_DIR", str(_session_cache(tmp_path_factory)))
    # Stored backbone features are the test's own: no test trains on another's.
    monkeypatch.setenv("TLGUI_FEATURE_STORE_DIR", str(tmp_path_factory.mktemp("features")))


_CACHE = {}


def _session_cache(factory):
    if "dir" not in _CACHE:
        _CACHE["dir"] = factory.mktemp("tlgui_cache")
    return _CACHE["dir"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests never reach the network: any attempt fails as it would offline."""

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
