"""TCP: class-aware text tokens, generated from the hand-written prompts' features, put into the text tower.

Yao et al., "TCP: Textual-based Class-aware Prompt tuning for Visual-Language Model" (CVPR 2024), as
htyao89/Textual-based_Class-aware_prompt_tuning runs it (trainers/tcp.py, trainers/clip_text/model.py):

* Prompts "<4 context tokens> <class>, a type of pet." (its per-dataset templates, TCP_PROMPTS), the
  context N(0, 0.02^2) (CTX_INIT False, as its yaml) or "a photo of a" (CTX_INIT True).
* A Meta-Net (Linear(embed, embed/4), QuickGELU, Linear(embed/4, 4 * width)) maps the frozen CLIP's
  features of the hand-written prompts (TCP_HANDWRITTEN, from a second CLIP, as KgCoOp's) to 4 tokens
  per class, which replace the 4 positions after SOS before text block 8 (weight 1.0, fixed in their
  code: TRAINER.COOP.W is not read there). A text tower of at most 8 blocks (the tests' tiny CLIPs) gets
  them before its last block.
* Loss: cross-entropy of logit_scale * image @ text^T (scale and image features detached, as theirs) +
  8.0 * (1 - mean cos(text, hand-written)), the 8.0 fixed in their code.
* The hand-written features and the Meta-Net run in fp16 whatever PREC says (their Meta-Net is
  `.half()` under the default TRAINER.COCOOP.PREC fp16, and the second CLIP stays fp16). Here the
  Meta-Net's parameters stay fp32 (the toolkit's master copies) and are cast to fp16 where it runs;
  theirs are fp16 themselves, so their updates are rounded to fp16. Their yaml's Adam eps 1e-3 (their
  README's edit of Dassl) is OPTIM.ADAM_EPS in configs/trainers/TCP/.
* Checkpoint: prompt_learner/ with their keys (ctx, token_prefix, token_suffix, meta_net.linear1.*,
  meta_net.linear2.*).
"""

from collections import OrderedDict

import torch
import torch.nn as nn

from dasslite.engine.build import TRAINER_REGISTRY

from ..method_card import MethodCard, Published, base2new_rows
from .clip_backbone import TextEncoder
from .coop import CoOp, CustomCLIP, PromptLearner
from .handwritten import features_from_a_second_clip
from .kgcoop import CTX_INIT_WORDS, knowledge_term
from .prompt_trainer import init_context
from .templates import DEFAULT_TEMPLATE, TCP_HANDWRITTEN, TCP_PROMPTS
from .text_tower import text_tower
from .transformer_blocks import run_blocks

CLASS_TOKENS = 4  # tokens the Meta-Net makes per class (their reshape to (n_cls, -1, 512) of 4 * 512)
CLASS_LAYER = 8  # the text block that receives them (their layers=[8])
KNOWLEDGE_WEIGHT = 8.0  # their loss: CE + 8.0 * (1 - cos)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class TCPPromptLearner(PromptLearner):
    """CoOp's learner with TCP's templates, the frozen hand-written features and the Meta-Net."""

    def __init__(self, cfg, classnames, clip_model, node="COOP", knowledge=None):
        self.dataset_name = cfg.DATASET.NAME
        super().__init__(cfg, classnames, clip_model, node)
        # the hand-written prompts' normalised fp16 features: not saved, as in the authors' code
        self.register_buffer("knowledge", knowledge().half(), persistent=False)
        tower = text_tower(clip_model)
        embed, width = tower.embed_dim, tower.width
        self.meta_net = nn.Sequential(
            OrderedDict(
                [
                    ("linear1", nn.Linear(embed, embed // 4)),
                    ("relu", QuickGELU()),
                    ("linear2", nn.Linear(embed // 4, CLASS_TOKENS * width)),
                ]
            )
        )

    def class_template(self, cfg):
        return TCP_PROMPTS.get(self.dataset_name, "X X X X {}.")

    def initial_context(self, cfg, node, clip_model, n_cls):
        opts = cfg.TRAINER[node]
        words = CTX_INIT_WORDS if opts.CTX_INIT is True else opts.CTX_INIT
        return init_context(clip_model, opts.N_CTX, words, n_cls if opts.CSC else 0, key=f"TRAINER.{node}.CTX_INIT")

    def class_tokens(self):
        """(n_cls, 4, width) fp16: the Meta-Net of the hand-written features, run in fp16."""
        x = self.knowledge
        for layer in self.meta_net:
            linear = isinstance(layer, nn.Linear)
            x = nn.functional.linear(x, layer.weight.half(), layer.bias.half()) if linear else layer(x)
        return x.reshape(x.shape[0], CLASS_TOKENS, -1)


class TCPTextEncoder(TextEncoder):
    """TextEncoder whose block CLASS_LAYER (or the last) gets the class tokens at positions 1..4."""

    def run_transformer(self, x, mask, deep_prompts=()):
        (tokens,) = deep_prompts
        at = min(CLASS_LAYER, len(self.transformer.resblocks) - 1)

        def inject(k, x, seq_dim):
            if k != at:
                return x
            x = x.transpose(0, 1) if seq_dim == 0 else x
            x = torch.cat([x[:, :1], tokens.to(x.dtype), x[:, 1 + tokens.shape[1] :]], dim=1)
            return x.transpose(0, 1) if seq_dim == 0 else x

        return run_blocks(self.transformer, x, mask, inject)


class TCPCLIP(CustomCLIP):
    def __init__(self, cfg, classnames, clip_model, learner_class):
        super().__init__(cfg, classnames, clip_model, "COOP", learner_class=learner_class)
        self.text_encoder = TCPTextEncoder(clip_model)

    def cache_key(self):  # the Meta-Net learns too
        return tuple((p.data_ptr(), p._version) for p in self.prompt_learner.parameters())

    def _encode_text(self, normalize=True):
        learner = self.prompt_learner
        features = self.text_encoder(learner(), learner.token_ids, deep_prompts=(learner.class_tokens(),))
        return features / features.norm(dim=-1, keepdim=True) if normalize else features


@TRAINER_REGISTRY.register()
class TCP(CoOp):
    """TCP on CoOp's keys (TRAINER.COOP.*, W as KgCoOp adds it, unread as in the authors' code)."""

    card = MethodCard(
        reference_config="configs/trainers/TCP/vit_b16_ep100_ctxv1.yaml",
        # speed rows: benchmarks/speed_tcp_dept.py; no base2new_configs yet (the time projection would
        # need the configs its authors' base-to-new scripts run, not checked)
        published=(
            Published(
                "TCP",
                source="TCP paper (CVPR'24), ViT-B/16, 16 shots, base-to-new averages",
                base2new=base2new_rows((84.13, 75.36, 79.51)),
            ),
        ),
        # export.py writes its class text features: after training they depend on no image (the Meta-Net
        # reads the fixed hand-written features), so logit_scale * image @ them is its logits
    )

    def build_custom_clip(self, classnames, clip_model):
        def knowledge():
            # their second CLIP stays in OpenAI's fp16 whatever PREC is (fp32 off CUDA)
            prec = "fp16" if self.device.type == "cuda" else "fp32"
            templates = [TCP_HANDWRITTEN.get(self.cfg.DATASET.NAME, DEFAULT_TEMPLATE)]
            return features_from_a_second_clip(self.cfg.MODEL.BACKBONE.NAME, classnames, templates, prec, self.device)

        learner = lambda *args: TCPPromptLearner(*args, knowledge=knowledge)  # noqa: E731
        return TCPCLIP(self.cfg, classnames, clip_model, learner)

    def learned_parameters(self):
        learner = self.model.prompt_learner
        learned = OrderedDict([("prompt_learner.ctx", learner.ctx)])
        learned.update((f"prompt_learner.meta_net.{n}", p) for n, p in learner.meta_net.named_parameters())
        return learned

    def forward_train(self, image):
        return self.train_model(image, details=True)

    def compute_losses(self, output, label):
        logits, _, text_features = output
        kg = knowledge_term(text_features, self.model.prompt_learner.knowledge)
        return OrderedDict(ce=nn.functional.cross_entropy(logits.float(), label), kg=KNOWLEDGE_WEIGHT * kg)

    def logits_of(self, output):
        return output[0]
