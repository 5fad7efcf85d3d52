"""interpret_prompt.py on a run's checkpoint reads the token embeddings of the backbone that run
recorded in its run.json (the original always used RN50, which also means a download offline)."""

import os

import interpret_prompt


def test_a_runs_checkpoint_is_read_with_the_runs_own_backbone(trained_coop, tiny_clip_path, capsys):
    _, run = trained_coop
    checkpoint = os.path.join(run, "prompt_learner", "model.pth.tar-1")
    assert interpret_prompt.main([checkpoint, "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Backbone: {tiny_clip_path} (from {os.path.join(run, 'run.json')})"
    assert "Size of context: (2, 64)" in out  # N_CTX 2 at the tiny CLIP's width
    assert [line.split(":")[0] for line in out[-2:]] == ["1", "2"]


def test_a_checkpoint_outside_a_run_keeps_the_original_default(tmp_path):
    checkpoint = tmp_path / "model.pth.tar-1"
    checkpoint.write_bytes(b"")
    assert interpret_prompt.recorded_backbone(str(checkpoint)) is None
