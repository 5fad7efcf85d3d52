"""KgCoOp: CoOp plus a knowledge-guided term keeping the learned class text features close to those
of the hand-written prompt.

Yao et al., "Visual-Language Prompt Tuning with Knowledge-guided Context Optimization" (CVPR 2023).
Loss = CE + W * (1 - mean over classes of cos(learned text feature, hand-written text feature)),
as the authors' code computes it (htyao89/KgCoOp, trainers/kgcoop.py). Config keys, yamls and the
prompt learner's state-dict keys are theirs.
"""

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from dasslite.engine.build import TRAINER_REGISTRY

from ..method_card import MethodCard, Published, base2new_rows
from .clip_backbone import draw_dtype
from .coop import CoOp, CustomCLIP, PromptLearner
from .handwritten import features_from_a_second_clip
from .prompt_trainer import init_context
from .templates import CUSTOM_TEMPLATES, DEFAULT_TEMPLATE

# KgCoOp's own per-dataset templates: CoOp's, except DTD's.
KGCOOP_TEMPLATES = {**CUSTOM_TEMPLATES, "DescribableTextures": "a photo of a {}, a type of texture."}
CTX_INIT_WORDS = "a photo of a"  # what CTX_INIT True means in the authors' code, whatever the dataset
UNUSED_WIDTH = 512  # width of the authors' unused bias_vectors and meta_net, whatever the backbone


class KgPromptLearner(PromptLearner):
    """CoOp's prompt learner with the authors' two unused members, `bias_vectors` and `meta_net`.

    They never touch the prompts and never learn, but they are in the authors' checkpoints and their
    initialisation draws from the RNG before and after the second CLIP load, so they are kept: the
    state dict is the authors' (ctx, bias_vectors, token_prefix, token_suffix, meta_net.linear1.*)
    and a seed gives their batch order.
    """

    def __init__(self, cfg, classnames, clip_model, node="COOP", knowledge=None):
        super().__init__(cfg, classnames, clip_model, node)
        bias = torch.empty(1, UNUSED_WIDTH, dtype=draw_dtype(clip_model))
        nn.init.normal_(bias, std=0.02)
        self.bias_vectors = nn.Parameter(bias.float())
        # the hand-written prompts' class features: not saved, as in the authors' code
        self.register_buffer("knowledge", knowledge() if knowledge else torch.empty(0), persistent=False)
        self.meta_net = nn.Sequential(
            OrderedDict([("linear1", nn.Linear(UNUSED_WIDTH, UNUSED_WIDTH)), ("relu", nn.ReLU(inplace=True))])
        )

    def initial_context(self, cfg, node, clip_model, n_cls):
        opts = cfg.TRAINER[node]
        words = CTX_INIT_WORDS if opts.CTX_INIT is True else opts.CTX_INIT
        return init_context(clip_model, opts.N_CTX, words, n_cls if opts.CSC else 0, key=f"TRAINER.{node}.CTX_INIT")


@TRAINER_REGISTRY.register()
class KgCoOp(CoOp):
    """Learns `prompt_learner.ctx` under CE + TRAINER.COOP.W * (1 - mean cos to the hand-written features)."""

    config_node = "COOP"  # the authors' keys: TRAINER.COOP.W (and CoOp's)
    card = MethodCard(
        reference_config="configs/trainers/KgCoOp/vit_b16_ep100_ctxv1.yaml",
        base2new_configs=("vit_b16_ep100_ctxv1", "vit_b16_ep100_ctxv1"),
        published=(
            Published(
                "KgCoOp",
                source="KgCoOp paper (CVPR'23), ViT-B/16, 16 shots, 100 epochs, batch 128",
                base2new=base2new_rows(
                    (80.73, 73.6, 77.0),  # Average
                    (75.83, 69.96, 72.78),  # ImageNet
                    (97.72, 94.39, 96.03),  # Caltech101
                    (94.65, 97.76, 96.18),  # OxfordPets
                    (71.76, 75.04, 73.36),  # StanfordCars
                    (95.0, 74.73, 83.65),  # Flowers102
                    (90.5, 91.7, 91.09),  # Food101
                    (36.21, 33.55, 34.83),  # FGVCAircraft
                    (80.29, 76.53, 78.36),  # SUN397
                    (77.55, 54.99, 64.35),  # DTD
                    (85.64, 64.34, 73.48),  # EuroSAT
                    (82.89, 76.67, 79.65),  # UCF101
                ),
            ),
        ),
    )

    @classmethod
    def add_config(cls, cfg):
        super().add_config(cfg)
        cfg.TRAINER.COOP.setdefault("W", 1.0)  # weight of the knowledge-guided term (their scripts: 8.0)
        cfg.TRAINER.COOP.setdefault("ALPHA", 1.0)  # in the authors' config, unused by their trainers

    def templates(self):
        return [KGCOOP_TEMPLATES.get(self.cfg.DATASET.NAME, DEFAULT_TEMPLATE)]

    def build_custom_clip(self, classnames, clip_model):
        def knowledge():
            # the authors' second CLIP stays in OpenAI's fp16 whatever PREC is (fp32 off CUDA)
            prec = "fp16" if self.device.type == "cuda" else "fp32"
            return features_from_a_second_clip(
                self.cfg.MODEL.BACKBONE.NAME, classnames, self.templates(), prec, self.device
            )

        learner = lambda *args: KgPromptLearner(*args, knowledge=knowledge)  # noqa: E731
        model = CustomCLIP(self.cfg, classnames, clip_model, self.config_node, learner_class=learner)
        draw_like_the_unused_adapter()
        return model

    def learned_parameters(self):
        return OrderedDict([("prompt_learner.ctx", self.model.prompt_learner.ctx)])

    def forward_train(self, image):
        return self.train_model(image, details=True)

    def compute_losses(self, output, label):
        logits, _, text_features = output
        kg = knowledge_term(text_features, self.model.prompt_learner.knowledge)
        return OrderedDict(ce=F.cross_entropy(logits.float(), label), kg=self.opts.W * kg)

    def logits_of(self, output):
        return output[0]


def knowledge_term(text_features, handwritten):
    """1 - mean over classes of cos(learned, hand-written) (the authors' score; eps as theirs)."""
    handwritten = handwritten / handwritten.norm(dim=-1, keepdim=True)
    return 1.0 - F.cosine_similarity(text_features.float(), handwritten.float(), dim=1, eps=1e-7).mean()


def draw_like_the_unused_adapter():
    """The authors' CustomCLIP builds a two-layer adapter it never uses; building it (and dropping it)
    draws from the RNG as theirs does, so the seed's batch order is theirs."""
    nn.Linear(UNUSED_WIDTH, UNUSED_WIDTH // 4, bias=False)
    nn.Linear(UNUSED_WIDTH // 4, UNUSED_WIDTH, bias=False)
