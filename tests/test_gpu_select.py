"""Which GPU sampler a machine gets, and why the others were passed over."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.sampling import recorded
from orchestrator.sampling.autodetect import GPU_SAMPLERS, NoGpuSampler, describe, make_gpu_sampler
from orchestrator.sampling.recorded import NanoSysfs

FAKES = Path(__file__).parent / "fakes"


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """A machine with nothing: empty root, no tegrastats, no jtop or pynvml importable."""
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("EDGEBENCH_SYSROOT", str(root))
    monkeypatch.delenv("EDGEBENCH_TEGRASTATS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))
    for name in ("jtop", "pynvml"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "fakes" not in p and p != str(recorded.modules_dir())])
    return root


def with_fake_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKES / "modules"))
    monkeypatch.syspath_prepend(str(recorded.modules_dir()))


def test_nothing_available_gives_none_with_every_reason(bare):
    sampler = make_gpu_sampler(None, 0.5)
    assert isinstance(sampler, NoGpuSampler)
    info = sampler.info()
    assert info["name"] == "none" and info["kind"] == "gpu"
    assert set(info["selection"]) == {"jtop", "tegrastats", "sysfs", "nvml"}
    assert "no jtop service socket" in info["selection"]["jtop"]
    assert "not on PATH" in info["selection"]["tegrastats"]
    line = describe(sampler)
    assert line.startswith("GPU telemetry: none (jtop: no jtop service socket") and line.count("\n") == 0


def test_jtop_first_when_its_service_answers(bare, monkeypatch):
    with_fake_modules(monkeypatch)
    (bare / "run").mkdir()
    (bare / "run/jtop.sock").touch()
    monkeypatch.setenv("FAKE_JTOP_SERVICE", "active")
    monkeypatch.setenv("EDGEBENCH_TEGRASTATS", str(recorded.tegrastats_program()))
    sampler = make_gpu_sampler(None, 0.5)
    try:
        assert sampler.name == "jtop" and sampler.info()["selection"] == {"jtop": "chosen automatically"}
    finally:
        sampler.close()


def test_jtop_of_another_version_falls_back_to_tegrastats(bare, monkeypatch):
    with_fake_modules(monkeypatch)
    (bare / "run").mkdir()
    (bare / "run/jtop.sock").touch()
    monkeypatch.setenv("FAKE_JTOP_SERVICE", "active")
    monkeypatch.setenv("FAKE_JTOP_SERVICE_VERSION", "4.2.1")
    monkeypatch.setenv("EDGEBENCH_TEGRASTATS", str(recorded.tegrastats_program()))
    sampler = make_gpu_sampler(None, 0.5)
    assert sampler.name == "tegrastats"
    assert "Mismatch version jtop service" in sampler.info()["selection"]["jtop"]


def test_sysfs_then_nvml(bare, monkeypatch):
    with_fake_modules(monkeypatch)
    assert make_gpu_sampler(None, 0.01).name == "nvml"
    NanoSysfs(bare)
    assert make_gpu_sampler(None, 0.01).name == "sysfs"


def test_an_asked_sampler_that_cannot_run_is_a_user_error(bare):
    with pytest.raises(UserError) as err:
        make_gpu_sampler("tegrastats", 0.5)
    assert "not on PATH" in str(err.value) and "--gpu-sampler none" in err.value.fix
    with pytest.raises(UserError) as err:
        make_gpu_sampler("nvml", 0.5)
    assert "nvidia-ml-py is not installed" in str(err.value)
    assert "[nvidia]" in err.value.fix and "pip install" in err.value.fix
    with pytest.raises(UserError) as err:
        make_gpu_sampler("rocm", 0.5)
    assert err.value.fix == "--gpu-sampler " + "|".join(GPU_SAMPLERS)


def test_none_asked_is_none(bare):
    assert make_gpu_sampler("none", 0.5).info()["reason"] == "--gpu-sampler none was asked"
