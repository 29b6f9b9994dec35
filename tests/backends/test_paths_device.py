from pathlib import Path

import pytest

from backends.core.device import available_devices, resolve_device
from backends.core.paths import cache_dir


def test_cache_dir_env_var_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("LLMPG_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "llm-playground"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == Path(tmp_path / "home" / ".cache" / "llm-playground")
    assert cache_dir().is_dir()


def test_auto_device_is_the_first_available_and_cpu_is_always_there():
    assert resolve_device("auto") == available_devices()[0]
    assert resolve_device("cpu") == "cpu"


def test_unknown_or_missing_devices_are_errors_not_silent_fallbacks():
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        resolve_device("tpu")
    for device in ("cuda", "mps"):
        if device not in available_devices():
            with pytest.raises(ValueError, match="not available"):
                resolve_device(device)
