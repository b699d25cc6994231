"""The replica benchmark end to end on a tiny random Llama, with a redis-server it starts."""

from __future__ import annotations

import json
import shutil

import pytest

from bench.cli import main


@pytest.mark.skipif(shutil.which("redis-server") is None,
                    reason="redis-server is not installed (scripts/test.sh installs it)")
def test_replica_benchmark_writes_its_results(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "replica"
    assert main(["replica", "--model", str(tiny_model_dir), "--device", "cpu", "--dtype",
                 "float32", "--num-chunks", "3", "--chunk-tokens", "48", "--repeats", "2",
                 "--algorithm", "legolink-4", "--out", str(out)]) == 0
    result = json.loads((out / "replica.json").read_text())
    assert result["algorithm"] == "legolink-4" and result["num_chunks"] == 3
    assert result["same_answer"], "the second replica answered differently"
    assert result["kv_bytes"] == result["context_tokens"] * 2 * 2 * 2 * 16 * 4
    transfer = result["transfer"]
    assert transfer["value_bytes"] > transfer["kv_bytes"], "values carry K, V, ids and metadata"
    assert all(v > 0 for v in result["ttft_ms_median"].values())
    assert result["targets"][0]["name"] == "second_replica_over_local_hit"
    running = result["running_replica"]
    assert running["ttft_ms_median"] > 0 and running["prefetch_lag_ms_median"] >= 0
    assert running["over_local_hit"] == running["ttft_ms_median"] / running["local_hit_ms_median"]
    printed = capsys.readouterr().out
    assert "second replica / local hit" in printed and "running replica" in printed


def test_replica_benchmark_needs_a_reachable_store(tiny_model_dir, tmp_path, capsys):
    assert main(["replica", "--model", str(tiny_model_dir), "--device", "cpu",
                 "--store-url", "redis://127.0.0.1:1/0", "--repeats", "1",
                 "--out", str(tmp_path)]) == 2
    assert "redis://127.0.0.1:1/0 unreachable" in capsys.readouterr().err
