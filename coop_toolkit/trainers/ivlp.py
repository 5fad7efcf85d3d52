"""IVLP: independent deep vision and language prompts (the MaPLe authors' baseline).

Config node TRAINER.IVLP and checkpoint folder VLPromptLearner/ as in the authors' code. With
PROMPT_DEPTH_VISION 0 it is deep language prompting only (configs/trainers/IVLP/*language_only.yaml).
"""

from yacs.config import CfgNode as CN

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.errors import ConfigError

from ..method_card import MethodCard, Published, base2new_rows
from .deep_prompt import DEEP_EXPORT, DEEP_SOURCE, ClassPromptLearner, DeepPromptCLIP, DeepPrompts, DeepPromptTrainer


def build_vl_clip(trainer, opts, node, classnames, clip_model, model_class=DeepPromptCLIP):
    """IVLP's model (also PromptSRC's): the towers' prompts as the authors' CLIP draws them, then ctx."""
    if opts.PROMPT_DEPTH_TEXT < 1:
        raise ConfigError(f"TRAINER.{node}.PROMPT_DEPTH_TEXT must be >= 1; for vision prompts only use the VPT trainer")
    first, vision_deep, text_deep = trainer.replay_authors_init(
        clip_model,
        vision=(opts.N_CTX_VISION, opts.PROMPT_DEPTH_VISION),
        text=(opts.N_CTX_TEXT, opts.PROMPT_DEPTH_TEXT),
    )
    learner = ClassPromptLearner(clip_model, classnames, opts.N_CTX_TEXT, opts.CTX_INIT, f"TRAINER.{node}.CTX_INIT")
    return model_class(clip_model, learner, DeepPrompts(first, vision_deep), DeepPrompts(None, text_deep))


def add_vl_config(node, n_ctx, depth):
    node.N_CTX_VISION = n_ctx  # learned tokens of the image tower
    node.N_CTX_TEXT = n_ctx  # learned tokens of the text tower
    node.CTX_INIT = "a photo of a"  # first text layer's context from these words (when N_CTX_TEXT <= 4)
    node.PREC = "fp16"  # fp16, fp32, amp or bf16
    node.PROMPT_DEPTH_VISION = depth  # image layers with prompts (0 = none)
    node.PROMPT_DEPTH_TEXT = depth  # text layers with prompts (>= 1)


@TRAINER_REGISTRY.register()
class IVLP(DeepPromptTrainer):
    config_node = "IVLP"
    model_name = "VLPromptLearner"
    needs_vision_prompts = False  # language-only prompting runs on any backbone
    card = MethodCard(
        reference_config="configs/trainers/IVLP/vit_b16_c2_ep20_batch4_4+4ctx.yaml",
        base2new_configs=("vit_b16_c2_ep5_batch4_2+2ctx", "vit_b16_c2_ep5_batch4_2+2ctx"),
        published=(
            Published(
                "IVLP",  # MaPLe README, 2+2 ctx, 5 epochs
                source=DEEP_SOURCE,
                base2new=base2new_rows((82.15, 74.07, 77.9)),  # averages only
            ),
            Published(
                "IVLP (4+4 ctx)",  # PromptSRC README, 20 epochs
                source=DEEP_SOURCE,
                base2new=base2new_rows((84.21, 71.79, 77.51)),  # averages only
            ),
            Published(
                "Deep language prompting",
                source=DEEP_SOURCE,
                base2new=base2new_rows((81.72, 73.81, 77.56)),  # averages only
            ),
        ),
        published_for_config={
            "vit_b16_c2_ep5_batch4_4ctx_language_only": "Deep language prompting",
            "vit_b16_c2_ep20_batch4_4+4ctx": "IVLP (4+4 ctx)",
        },
        **DEEP_EXPORT,
    )

    @classmethod
    def add_config(cls, cfg):
        if "IVLP" not in cfg.TRAINER:
            cfg.TRAINER.IVLP = CN()
            add_vl_config(cfg.TRAINER.IVLP, n_ctx=2, depth=9)

    def build_custom_clip(self, classnames, clip_model):
        return build_vl_clip(self, self.opts, self.config_node, classnames, clip_model)
