"""VPT: deep vision prompts only; the classes are read with the frozen text features of "a photo of a {}.".

Jia et al., "Visual Prompt Tuning" (ECCV 2022), as the MaPLe authors run it on CLIP: config node
TRAINER.VPT and checkpoint folder prompt_learner/ as in their code, which runs CLIP in fp32 whatever
PREC says and rounds the prompts to fp16 where they enter the image tower (as for every deep-prompt
method: deep_prompt.authors_fp16); both are kept.
"""

from yacs.config import CfgNode as CN

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.errors import ConfigError

from ..method_card import MethodCard, Published, base2new_rows
from .deep_prompt import DEEP_EXPORT, DEEP_SOURCE, DeepPromptCLIP, DeepPrompts, DeepPromptTrainer, Prompts
from .handwritten import handwritten_class_features

VPT_TEMPLATE = "a photo of a {}."  # the authors' code fixes it (TRAINER.VPT.CTX_INIT is not read)


class VPTCLIP(DeepPromptCLIP):
    def __init__(self, clip_model, vision_prompts, classnames, prec):
        super().__init__(clip_model, vision_prompts=vision_prompts)
        features = handwritten_class_features(clip_model, classnames, [VPT_TEMPLATE], prec)
        self.register_buffer("fixed_text_features", features, persistent=False)

    def prompts(self):  # the towers round them to fp16 as the authors' code does (authors_fp16)
        return Prompts(None, [], self.vision_prompts.first, list(self.vision_prompts.deep))

    def text_features(self, prompts):
        return self.fixed_text_features


@TRAINER_REGISTRY.register()
class VPT(DeepPromptTrainer):
    config_node = "VPT"
    model_name = "prompt_learner"
    card = MethodCard(
        reference_config="configs/trainers/VPT/vit_b16_c2_ep5_batch4_4.yaml",
        base2new_configs=("vit_b16_c2_ep5_batch4_4", "vit_b16_c2_ep5_batch4_4"),
        published=(
            Published(
                "VPT",
                source=DEEP_SOURCE,
                base2new=base2new_rows((80.24, 73.43, 76.68)),  # averages only
            ),
        ),
        **DEEP_EXPORT,
    )

    @classmethod
    def add_config(cls, cfg):
        if "VPT" in cfg.TRAINER:
            return
        cfg.TRAINER.VPT = CN()
        cfg.TRAINER.VPT.N_CTX_VISION = 2  # learned tokens of the image tower
        cfg.TRAINER.VPT.CTX_INIT = "a photo of a"  # kept for the authors' yamls; the text is "a photo of a {}."
        cfg.TRAINER.VPT.PREC = "fp16"  # fp16 runs CLIP in fp32 (as the authors' VPT); amp and bf16 autocast
        cfg.TRAINER.VPT.PROMPT_DEPTH_VISION = 1  # image layers with prompts (>= 1)

    @property
    def opts(self):
        opts = self.cfg.TRAINER.VPT
        if opts.PREC != "fp16":
            return opts
        opts = opts.clone()  # the authors' VPT always runs CLIP in fp32; the saved config keeps fp16
        opts.defrost()
        opts.PREC = "fp32"
        return opts

    def build_custom_clip(self, classnames, clip_model):
        opts = self.opts
        if opts.PROMPT_DEPTH_VISION < 1:
            raise ConfigError(f"TRAINER.VPT.PROMPT_DEPTH_VISION must be >= 1, got {opts.PROMPT_DEPTH_VISION}")
        first, deep, _ = self.replay_authors_init(clip_model, vision=(opts.N_CTX_VISION, opts.PROMPT_DEPTH_VISION))
        clip_model.to(self.device)  # the class features are computed once, on the device that runs
        return VPTCLIP(clip_model, DeepPrompts(first, deep), classnames, self.prec)
