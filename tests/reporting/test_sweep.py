"""sweep.py: bounded parallelism, GPU assignment, failure report, and the submitit path."""

import io
import sys

import sweep


def _slot_command(folder, i):
    # Each job holds a slot file for 0.5 s and records how many slots were held when it started.
    return f"touch {folder}/slot{i}; ls {folder} | grep -c slot >> {folder}/counts; sleep 0.5; rm {folder}/slot{i}"


def test_runs_n_at_a_time(tmp_path):
    commands = [_slot_command(tmp_path, i) for i in range(4)]
    codes = sweep.run_local(commands, jobs=2, log_dir=str(tmp_path / "logs"))
    assert codes == [0, 0, 0, 0]
    counts = [int(c) for c in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 4 and max(counts) == 2
    assert (tmp_path / "logs" / "job3.log").read_text().startswith("$ touch")


def test_one_job_per_gpu_with_its_own_device(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert sweep.visible_gpus() == ["2", "5"]
    commands = [f'echo "$CUDA_VISIBLE_DEVICES" > {tmp_path}/gpu{i}' for i in range(4)]
    assert sweep.run_local(commands, jobs=1, log_dir=str(tmp_path), gpus=sweep.visible_gpus()) == [0] * 4
    assert {(tmp_path / f"gpu{i}").read_text().strip() for i in range(4)} <= {"2", "5"}


def test_failures_are_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(sys, "stdin", io.StringIO("# a comment\ntrue\n\nexit 3\n"))
    assert sweep.main(["--jobs", "2", "--log-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1/2 jobs succeeded" in out and "FAILED (exit 3): job1: exit 3" in out


def test_submitit_local_executor(tmp_path, capsys):
    import submitit  # noqa: F401  (the test extra installs it)

    jobs = tmp_path / "jobs.txt"
    jobs.write_text(f"echo done > {tmp_path}/ok\nexit 2\n")
    assert sweep.main([str(jobs), "--executor", "submitit-local", "--log-dir", str(tmp_path / "logs")]) == 1
    assert (tmp_path / "ok").read_text() == "done\n"
    assert "1/2 jobs succeeded" in capsys.readouterr().out
