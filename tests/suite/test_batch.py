"""suite batch on a LocalCluster over loopback: results, bad and hanging inputs, killed workers and drivers."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from suite.batch import BatchError, expand_inputs, read_results, run_batch, start_client

JOB = "tests.suite.batch_jobs:JOB"
ROOT = Path(__file__).resolve().parents[2]


def _inputs(folder, texts):
    folder.mkdir(exist_ok=True)
    paths = []
    for i, text in enumerate(texts):
        p = folder / f"{i:04d}.in"
        p.write_text(text)
        paths.append(str(p))
    return paths


@pytest.fixture(scope="module")
def client():
    client, cluster = start_client("local", 2)
    yield client
    client.close()
    cluster.close()


def _records(out):
    return [json.loads(line) for line in Path(out).read_text().splitlines()]


def test_every_input_once_bad_ones_as_error_lines_and_a_hang_times_out(client, tmp_path):
    paths = _inputs(tmp_path / "in", ["a", "b", "fail", "hang", "c", "d", "e"])
    out = tmp_path / "r.jsonl"
    summary = run_batch(JOB, {}, paths, out, client=client, timeout=2.0, retries=1)
    records = {r["input"]: r for r in _records(out)}
    assert sorted(records) == sorted(paths) and len(_records(out)) == len(paths)
    assert records[paths[0]] == records[paths[0]] | {"status": "ok", "result": {"said": "a"}, "error": None}
    assert records[paths[2]]["status"] == "error" and "poisoned input" in records[paths[2]]["error"]
    assert records[paths[3]]["status"] == "error" and "timed out after 2 s" in records[paths[3]]["error"]
    assert summary.done == 7 and summary.failed == 2 and summary.retried == 1  # the hang was tried twice
    assert set(records[paths[0]]) == {"input", "status", "result", "error", "seconds"}


def test_a_killed_worker_loses_nothing(client, tmp_path):
    paths = _inputs(tmp_path / "in", [f"x{i}" for i in range(40)])
    out = tmp_path / "r.jsonl"
    pids = list(client.run(os.getpid).values())
    killed = []

    def kill_one(record):
        if len(_records(out)) >= 5 and not killed:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    summary = run_batch(JOB, {"delay": 0.05}, paths, out, client=client, timeout=30, retries=2, progress=kill_one)
    records = _records(out)
    assert killed and sorted(r["input"] for r in records) == sorted(paths)
    assert all(r["status"] == "ok" for r in records) and summary.failed == 0
    client.wait_for_workers(2, timeout=60)


def test_in_flight_is_bounded(client, tmp_path):
    paths = _inputs(tmp_path / "in", [f"x{i}" for i in range(30)])
    most = []
    submit = client.submit

    def counting_submit(*args, **kwargs):
        most.append(sum(not f.done() for f in futures) + 1)
        future = submit(*args, **kwargs)
        futures.append(future)
        return future

    futures = []
    client.submit = counting_submit
    try:
        run_batch(JOB, {}, paths, tmp_path / "r.jsonl", client=client, in_flight=3)
    finally:
        del client.submit
    assert len(_records(tmp_path / "r.jsonl")) == 30 and max(most) <= 3


def test_inputs_from_folders_lists_and_globs(tmp_path):
    paths = _inputs(tmp_path / "in", ["a", "b"])
    (tmp_path / "in" / "skip.wav").write_text("other")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my inputs\n{paths[1]}\n\n{paths[0]}\n")
    assert expand_inputs([str(tmp_path / "in")], (".in",)) == paths
    assert expand_inputs([str(listing), str(tmp_path / "in")], (".in",)) == [paths[1], paths[0]]
    assert expand_inputs([str(tmp_path / "in" / "*.in")], (".in",)) == paths
    with pytest.raises(BatchError, match="no such file"):
        expand_inputs([str(tmp_path / "nothing-*.in")], (".in",))


def test_a_torn_last_line_is_cut_before_resuming(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"input": "a", "status": "ok"}\n{"input": "b", "sta')
    assert list(read_results(out)) == ["a"]
    assert out.read_text() == '{"input": "a", "status": "ok"}\n'
    (tmp_path / "notes.jsonl").write_text("my own notes\n")
    with pytest.raises(BatchError, match="not a result line"):
        read_results(tmp_path / "notes.jsonl")


def _cli(args, cwd, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "suite.cli", "batch", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_driver_killed_then_resume_gives_each_input_exactly_once(tmp_path):
    paths = _inputs(tmp_path / "in", [f"x{i}" for i in range(60)])
    out = tmp_path / "r.jsonl"
    proc = _cli([JOB, "--delay", "0.1", "--inputs", "in", "--out", "r.jsonl", "--workers", "2", "--quiet"], tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 10):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    first = len(_records(out))
    assert 10 <= first
    r = _cli([JOB, "--inputs", "in", "--out", "r.jsonl"], tmp_path)
    assert r.wait(timeout=180) == 1 and "already exists" in r.communicate()[1]
    again = _cli([JOB, "--inputs", "in", "--out", "r.jsonl", "--resume", "--quiet"], tmp_path)
    _, err = again.communicate(timeout=180)
    assert again.returncode == 0, err
    records = _records(out)
    assert sorted(r["input"] for r in records) == sorted(str(Path("in") / Path(p).name) for p in paths)
    assert "already in the output" in err and "Traceback" not in err
