"""The binaries edgebench builds say which llama.cpp they are: a33e6a0, build 2275, in `main`'s
banner and in the `-ld` YAML, whatever git repository the build happens to sit in."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.bootstrap.build import BUILD_NUMBER, write_build_info
from orchestrator.bootstrap.ledger import Ledger
from orchestrator.engine.llamalog import parse_yaml


def test_main_names_a33e6a0_in_its_banner_and_yaml(llama_bin_dir, tiny_model, tmp_path):
    logdir = tmp_path / "ld"
    logdir.mkdir()
    res = subprocess.run([str(llama_bin_dir / "main"), "-m", str(tiny_model), "-p", "hello", "-n", "2", "-t", "2",
                          "--ignore-eos", "-ld", str(logdir)],
                         cwd=tmp_path, capture_output=True, text=True, errors="replace", timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"build = {BUILD_NUMBER} (a33e6a0)" in res.stderr
    (yml,) = logdir.glob("*.yml")
    doc = parse_yaml(yml)
    assert doc["build_commit"] == "a33e6a0" and doc["build_number"] == BUILD_NUMBER


def test_the_ledger_records_the_build_info_the_binaries_carry(llama_bin_dir):
    info = Ledger(Path(llama_bin_dir).parent / "ledger.json").get("build")["build_info"]
    assert info["commit"] == "a33e6a0" and info["build_number"] == BUILD_NUMBER
    banner = subprocess.run([str(llama_bin_dir / "main"), "--version"], capture_output=True, text=True, timeout=60)
    assert f"built with {info['compiler']} for {info['target']}" in banner.stdout + banner.stderr


def test_compiler_strings_are_escaped_for_c(tmp_path):
    (tmp_path / "common").mkdir()
    cc = tmp_path / "cc"
    cc.write_text('#!/bin/sh\n[ "$1" = -dumpmachine ] && echo x86_64-linux-gnu || echo \'cc "quoted" \\\\ 1.0\'\n')
    cc.chmod(0o755)
    facts = write_build_info(tmp_path, str(cc))
    text = (tmp_path / "common" / "build-info.cpp").read_text()
    assert facts["compiler"] == 'cc "quoted" \\ 1.0'
    assert 'LLAMA_COMPILER = "cc \\"quoted\\" \\\\ 1.0";' in text
    assert 'LLAMA_COMMIT = "a33e6a0";' in text and f"LLAMA_BUILD_NUMBER = {BUILD_NUMBER};" in text


def test_make_keeps_our_build_info_even_when_its_inputs_are_newer(llama_bin_dir, tmp_path):
    """llama.cpp's rule remakes build-info.cpp when scripts/build-info.sh or .git/index is newer
    (a fresh git clone): the build command tells make to leave it alone."""
    import os
    import shutil

    from orchestrator.bootstrap.build import BUILD_INFO, TARGETS, BuildLlama
    from orchestrator.bootstrap.steps import Context, Options

    tree = tmp_path / "build" / "llama.cpp"
    (tree / "common").mkdir(parents=True)
    shutil.copy(Path(llama_bin_dir) / "Makefile", tree / "Makefile")
    shutil.copytree(Path(llama_bin_dir) / "scripts", tree / "scripts")
    write_build_info(tree, "cc")
    (tree / ".git").mkdir()
    (tree / ".git" / "index").write_text("")
    for newer in (tree / "scripts" / "build-info.sh", tree / ".git" / "index"):
        os.utime(newer, (os.path.getmtime(tree / BUILD_INFO) + 60,) * 2)

    ctx = Context(Options(root=tmp_path, cache=tmp_path), Ledger(tmp_path / "ledger.json"), {"cpu_count": 1})
    cmds = BuildLlama().commands(ctx)
    assert [c.argv[0] for c in cmds] == ["make", "write", "make"]  # clean, ours, build: in that order
    make = [a for a in cmds[-1].argv if a not in TARGETS] + ["build-info.o"]
    plan = subprocess.run([make[0], "-n", *make[1:]], cwd=tree, capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    assert "build-info.o" in plan.stdout and "build-info.sh" not in plan.stdout
    # without -o, the same make would have regenerated it: the check above can fail
    plain = [a for a in make if a not in ("-o", BUILD_INFO)]
    assert "build-info.sh" in subprocess.run([plain[0], "-n", *plain[1:]], cwd=tree, capture_output=True,
                                             text=True, timeout=60).stdout
