from typer.testing import CliRunner

from sonotell.bench import load_benchmark
from sonotell.cli import app

from .conftest import TINY


def test_bench_build_and_list(tmp_path):
    runner = CliRunner()
    args = ["bench", "build", "synthetic", "--out", str(tmp_path / "b"), "--seed", "3"]
    for kv in TINY:
        args += ["--set", kv]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    bench = load_benchmark(tmp_path / "b")
    assert len(bench.scans) == 2 and bench.seed == 3
    listed = runner.invoke(app, ["bench", "list"])
    assert listed.exit_code == 0 and "synthetic" in listed.output and "pocus" in listed.output


def test_bench_build_refuses_other_seed_in_same_folder(tmp_path):
    runner = CliRunner()
    base = ["bench", "build", "synthetic", "--out", str(tmp_path / "b")] + [x for kv in TINY for x in ("--set", kv)]
    assert runner.invoke(app, base + ["--seed", "1"]).exit_code == 0
    result = runner.invoke(app, base + ["--seed", "2"])
    assert result.exit_code != 0 and "another config or seed" in str(result.exception)
