"""fp16 and amp fall back to fp32 on CPU (bf16: test_bf16_cpu.py); CoCoOp's text pass is chunked at large
batch x classes."""

import torch

from coop_toolkit.trainers.cocoop import CustomCLIP
from coop_toolkit.trainers.prompt_trainer import resolve_precision
from tests.trainers.helpers import clip_fp32, make_cfg


def test_fp16_and_amp_fall_back_to_fp32_without_cuda(caplog):
    cpu = torch.device("cpu")
    assert resolve_precision("fp16", cpu, "TRAINER.COOP.PREC") == "fp32"
    assert resolve_precision("amp", cpu, "TRAINER.COOP.PREC") == "fp32"
    assert "needs CUDA" in caplog.text


def test_cocoop_1000_classes_batch_8_goes_through_the_text_encoder_in_chunks(tiny_clip_path):
    cfg = make_cfg(tiny_clip_path, **{"TRAINER.COCOOP.N_CTX": 4, "TRAINER.COCOOP.TEXT_CHUNK_SIZE": 512})
    names = [f"class {i}" for i in range(1000)]
    model = CustomCLIP(cfg, names, clip_fp32(tiny_clip_path)).eval()
    sizes = []
    encode = model.text_encoder._encode
    model.text_encoder._encode = lambda x, eot: sizes.append(x.shape[0]) or encode(x, eot)
    with torch.no_grad():
        logits = model(torch.randn(8, 3, 224, 224))
    assert logits.shape == (8, 1000)
    assert max(sizes) == 512 and sum(sizes) == 8000
