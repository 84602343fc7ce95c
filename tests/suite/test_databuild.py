"""suite.databuild.parallel_map: ordered results, and Ctrl-C that stops the parent alone."""
import os
import signal
import subprocess
import sys
import textwrap
import time

from suite.databuild import parallel_map


def _square_chunk(task):
    return [x * x for x in range(*task)]


def _dispositions(_task):
    return [(signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), os.getpid())]


def test_results_come_back_in_order_with_progress_counted_in_items():
    seen = []
    out = parallel_map(_square_chunk, [(0, 3), (3, 5), (5, 9)], workers=2, progress=lambda d, t: seen.append((d, t)),
                       total=9)
    assert out == [[0, 1, 4], [9, 16], [25, 36, 49, 64]]
    assert seen == [(3, 9), (5, 9), (9, 9)]
    assert parallel_map(_square_chunk, [(0, 3), (3, 5)], workers=1) == [[0, 1, 4], [9, 16]]


def test_workers_leave_ctrl_c_and_sigterm_to_the_parent():
    """Both signals reach the whole process group; a worker that took them could die holding a pool lock."""
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    results = parallel_map(_dispositions, range(6), workers=2)
    pids = {r[0][2] for r in results}
    assert os.getpid() not in pids
    assert all(r[0][:2] == (signal.SIG_IGN, signal.SIG_IGN) for r in results), results
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # the parent's untouched


def test_ctrl_c_to_the_process_group_stops_the_pool_and_every_worker(tmp_path):
    script = textwrap.dedent("""
        import os, signal, sys, time
        from suite.databuild import parallel_map

        # as in a terminal's foreground job: a shell's background job (nohup, &) starts with SIGINT ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)

        def slow(task):
            time.sleep(0.2)
            return [task]

        if __name__ == "__main__":
            def shown(done, total):
                if done == 4:
                    print("running", flush=True)
            try:
                parallel_map(slow, range(400), workers=2, progress=shown)
            except KeyboardInterrupt:
                import multiprocessing
                left = multiprocessing.active_children()
                print("interrupted", len(left), flush=True)
                sys.exit(130)
            sys.exit(0)
    """)
    (tmp_path / "job.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "job.py"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    assert proc.stdout.readline().strip() == "running"
    t0 = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: parent and workers alike
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert out.strip() == "interrupted 0", (out, err)  # active_children() joined every worker: none left
    assert "Traceback" not in err, err
    assert time.perf_counter() - t0 < 10  # the running tasks (0.2 s each) finish, the other 390 are cancelled
