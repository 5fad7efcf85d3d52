"""MaPLe: text prompts at layers 0..J-1, coupled into the image tower by linear maps.

Khattak et al., "MaPLe: Multi-modal Prompt Learning" (CVPR 2023). Config node TRAINER.MAPLE and
checkpoint folder MultiModalPromptLearner/ as in the authors' code. The coupling maps go from the
text width to the image width read from the backbone (the authors' code fixes 512 -> 768).
"""

import copy

import torch.nn as nn
from yacs.config import CfgNode as CN

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.errors import ConfigError

from ..method_card import CROSS_DATASET_COLUMNS, DG_COLUMNS, MethodCard, Published, base2new_rows, columns
from .deep_prompt import DEEP_EXPORT, DEEP_SOURCE, ClassPromptLearner, DeepPromptCLIP, DeepPromptTrainer, Prompts
from .prompted_encoders import check_depth, vision_blocks, vision_width
from .text_tower import text_tower


class MultiModalPromptLearner(ClassPromptLearner):
    """ctx; proj (text -> image width) of ctx for the image tower's first tokens; compound_prompts_text
    for text blocks 1..J-1 and compound_prompt_projections mapping them into image blocks 1..J-1."""

    def __init__(self, cfg, classnames, clip_model, node="MAPLE"):
        opts = cfg.TRAINER[node]
        if opts.PROMPT_DEPTH < 1:
            raise ConfigError(f"TRAINER.{node}.PROMPT_DEPTH must be >= 1 (1 = shallow MaPLe), got {opts.PROMPT_DEPTH}")
        super().__init__(clip_model, classnames, opts.N_CTX, opts.CTX_INIT, f"TRAINER.{node}.CTX_INIT")
        text_w, image_w = text_tower(clip_model).width, vision_width(clip_model.visual)
        # Draw order as in the authors' code: proj, the text prompts, then one map copied to every layer.
        self.proj = nn.Linear(text_w, image_w)
        texts = [
            nn.Parameter(nn.init.normal_(self.ctx.new_empty(self.n_ctx, text_w), std=0.02))
            for _ in range(opts.PROMPT_DEPTH - 1)
        ]
        self.compound_prompts_text = nn.ParameterList(texts)
        single_layer = nn.Linear(text_w, image_w)
        self.compound_prompt_projections = nn.ModuleList(copy.deepcopy(single_layer) for _ in texts)

    def all_prompts(self):
        deep_text = list(self.compound_prompts_text)
        deep_vision = [proj(p) for proj, p in zip(self.compound_prompt_projections, deep_text)]
        return Prompts(self.text_prompts, deep_text, self.proj(self.ctx), deep_vision)


class MaPLeCLIP(DeepPromptCLIP):
    def prompts(self):
        return self.prompt_learner.all_prompts()


@TRAINER_REGISTRY.register()
class MaPLe(DeepPromptTrainer):
    config_node = "MAPLE"
    model_name = "MultiModalPromptLearner"
    card = MethodCard(
        reference_config="configs/trainers/MaPLe/vit_b16_c2_ep5_batch4_2ctx.yaml",
        base2new_configs=("vit_b16_c2_ep5_batch4_2ctx", "vit_b16_c2_ep5_batch4_2ctx"),
        published=(
            Published(
                "MaPLe",
                source=DEEP_SOURCE,
                base2new=base2new_rows(
                    (82.28, 75.14, 78.55),  # Average
                    (76.66, 70.54, 73.47),  # ImageNet
                    (97.74, 94.36, 96.02),  # Caltech101
                    (95.43, 97.76, 96.58),  # OxfordPets
                    (72.94, 74.0, 73.47),  # StanfordCars
                    (95.92, 72.46, 82.56),  # Flowers102
                    (90.71, 92.05, 91.38),  # Food101
                    (37.44, 35.61, 36.5),  # FGVCAircraft
                    (80.82, 78.7, 79.75),  # SUN397
                    (80.36, 59.18, 68.16),  # DTD
                    (94.07, 73.23, 82.35),  # EuroSAT
                    (83.0, 78.66, 80.77),  # UCF101
                ),
                cross_dataset=columns(
                    CROSS_DATASET_COLUMNS,
                    (70.72, 93.53, 90.49, 65.57, 72.23, 86.2, 24.74, 67.01, 46.49, 48.06, 68.69, 66.3),
                ),
                domain_generalization=columns(DG_COLUMNS, (70.72, 64.07, 49.15, 50.9, 76.98, 60.27)),
            ),
        ),
        **DEEP_EXPORT,
    )

    @classmethod
    def add_config(cls, cfg):
        if "MAPLE" in cfg.TRAINER:
            return
        cfg.TRAINER.MAPLE = CN()
        cfg.TRAINER.MAPLE.N_CTX = 2  # learned tokens per layer (text, and their images in the image tower)
        cfg.TRAINER.MAPLE.CTX_INIT = "a photo of a"  # first layer's context from these words' embeddings
        cfg.TRAINER.MAPLE.PREC = "fp16"  # fp16, fp32, amp or bf16
        cfg.TRAINER.MAPLE.PROMPT_DEPTH = 9  # layers J that get prompts (1 = shallow MaPLe; at most the depth)

    def build_custom_clip(self, classnames, clip_model):
        depth = self.opts.PROMPT_DEPTH
        self.replay_authors_init(clip_model)  # their CLIP has no prompt parameters; the learner draws after it
        check_depth(depth, text_tower(clip_model).transformer, "TRAINER.MAPLE.PROMPT_DEPTH (text tower)")
        check_depth(depth, vision_blocks(clip_model.visual), "TRAINER.MAPLE.PROMPT_DEPTH (image tower)")
        return MaPLeCLIP(clip_model, MultiModalPromptLearner(self.cfg, classnames, clip_model))
