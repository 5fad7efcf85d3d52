"""interpret_prompt.py: nearest vocabulary tokens of learned contexts, on a tiny CLIP loaded by path."""

import os
import subprocess
import sys

import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer

import interpret_prompt
from coop_toolkit.trainers.clip_backbone import load_clip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ["a</w>", "photo</w>", "of</w>", "dog</w>"]


@pytest.fixture(scope="module")
def table(tiny_clip_path):
    return load_clip(tiny_clip_path, "fp32").token_embedding.weight.detach()


def _ids(words=WORDS):
    encoder = SimpleTokenizer().encoder
    return [encoder[w] for w in words]


def _save(path, ctx):
    """A prompt-learner checkpoint as the engine writes it (extra keys and buffers included)."""
    torch.save(
        {
            "state_dict": {"ctx": ctx, "token_prefix": torch.zeros(2, 1, ctx.shape[-1])},
            "epoch": 3,
            "optimizer": None,
            "scheduler": None,
            "val_result": None,
        },
        path,
    )
    return str(path)


def test_copies_of_token_embeddings_come_first_at_distance_zero(tmp_path, tiny_clip_path, table):
    path = _save(tmp_path / "model.pth.tar-3", table[_ids()].clone())
    rows = interpret_prompt.interpret(interpret_prompt.read_ctx(path), table, 3, SimpleTokenizer().decoder)
    assert [row[0][0] for row in rows] == WORDS
    assert all(row[0][1] == 0.0 for row in rows)
    assert all(row[0][1] < row[1][1] <= row[2][1] for row in rows)


def test_class_specific_contexts_per_class(tmp_path, tiny_clip_path, table):
    per_class = [WORDS[:2], ["cat</w>", "car</w>"]]
    ctx = torch.stack([table[_ids(words)] for words in per_class])  # (n_cls=2, M=2, width)
    rows = interpret_prompt.interpret(ctx, table, 2, SimpleTokenizer().decoder)
    assert [[pos[0][0] for pos in cls] for cls in rows] == per_class
    path = _save(tmp_path / "csc.pth.tar-1", ctx)
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "interpret_prompt.py"),
            path,
            "2",
            "--backbone",
            tiny_clip_path,
            "--class-index",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert "Class 1:" in lines and "Class 0:" not in lines
    assert any(line.startswith("  1: ['cat</w>'") and "'0.0000'" in line for line in lines)
    assert any(line.startswith("  2: ['car</w>'") for line in lines)


def test_main_prints_the_reference_lines(tmp_path, tiny_clip_path, table, capsys):
    path = _save(tmp_path / "model.pth.tar-3", table[_ids()].clone())
    assert interpret_prompt.main([path, "1", "--backbone", tiny_clip_path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Return the top-1 matched words"
    assert out[-4:] == [f"{m + 1}: ['{w}'] ['0.0000']" for m, w in enumerate(WORDS)]


def test_width_mismatch_names_both_widths_and_the_flag(tmp_path, tiny_clip_path, table):
    path = _save(tmp_path / "model.pth.tar-1", torch.randn(4, 512))
    with pytest.raises(ValueError, match=r"width 512.*width 64.*--backbone"):
        interpret_prompt.main([path, "3", "--backbone", tiny_clip_path])


def test_checkpoint_without_ctx_is_explained(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, path)
    with pytest.raises(KeyError, match='no learned context "ctx"'):
        interpret_prompt.read_ctx(str(path))


def test_checkpoints_are_loaded_without_unpickling_objects(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"ctx": torch.zeros(2, 4)}, "extra": SimpleTokenizer}, path)
    with pytest.raises(Exception, match="(?i)weights.only|allowlist|refusing"):
        interpret_prompt.read_ctx(str(path))


def test_reference_checkpoints_with_a_pickled_scheduler_load_through_the_engines_allowlist(tmp_path):
    """The original's checkpoints pickle the LR scheduler object (and its optimizer): a bare weights-only
    load rejects them, the engine's loader (dasslite/engine/checkpoint.py) accepts exactly these."""
    ctx = torch.randn(2, 4)
    optimizer = torch.optim.SGD([torch.nn.Parameter(ctx.clone())], lr=0.002)
    successor = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    path = tmp_path / "model.pth.tar-10"
    torch.save({"state_dict": {"ctx": ctx}, "epoch": 10, "scheduler": {"successor": successor}}, path)
    with pytest.raises(Exception, match="(?i)weights.only"):
        torch.load(path, weights_only=True)
    assert torch.equal(interpret_prompt.read_ctx(str(path)), ctx)
