"""CoPrompt: MaPLe's prompts plus adapters, kept consistent with the frozen CLIP on a second augmented view.

Roy and Etemad, "Consistency-guided Prompt Learning for Vision-Language Models" (ICLR 2024), as
ShuvenduRoy/CoPrompt runs it (trainers/coprompt.py, train.py, trainers/constants.py,
configs/trainers/coprompt.yaml):

* Prompts: MaPLe's multimodal prompt learner (coop_toolkit/trainers/maple.py) on TRAINER.CoPrompt
  (N_CTX, CTX_INIT, PREC, PROMPT_DEPTH).
* Adapters: Linear(d, d/4), ReLU, Linear(d/4, d), ReLU, bias-free (CLIP-Adapter's, clip_adapter.py), one
  on the image and one on the text features (d = the joint embedding width; the authors fix 512),
  mixed into the raw features before normalising: image 0.1 * adapter + 0.9 * f, text 0.2 / 0.8
  (literals in their code). State-dict keys adapter_image.fc.{0,2}.weight, adapter_text.fc.{0,2}.weight.
* Training reads two views per image (DATALOADER.K_TRANSFORMS 2, RandAugment): the prompted model sees
  the first, the frozen CLIP the second. Loss: cross-entropy + TRAINER.W * (consistency of the text
  features with the frozen CLIP's features of one LLM-written description per class, the same
  description index for every class, drawn at each step with Python's `random.randint` as theirs +
  consistency of the image features with the frozen image tower's on the second view), consistency
  1 - mean cosine (eps 1e-7) when TRAINER.DISTILL is "cosine", else the MSE of the normalised features.
  The indices a seed draws are theirs when their few-shot split of that seed already exists
  (split_fewshot/shot_K-seed_S.pkl, written by any earlier run on the same data folder): Dassl then
  draws nothing from the global generator before training, and neither does dasslite, whose few-shot
  draw has a generator of its own (dasslite/data/fewshot.py). On their first run of a seed the draw
  consumes the global generator first, and their indices differ from a later run's of the same seed.
  Both sides assume augmentation in DataLoader workers (their yaml's NUM_WORKERS 8), whose generators
  are their own; with DATALOADER.NUM_WORKERS 0, RandAugment also draws from the global generator.
* The descriptions come from a file in the authors' format that the user supplies (TRAINER.CoPrompt.
  GPT_FILE; class_descriptions.py). Without one, the dataset's hand-written prompt stands in, with a
  warning: the published numbers need the authors' descriptions.
* Their train.py forces per-dataset settings after the command line (PER_DATASET below); here
  coop_toolkit/config.py applies `forced_config` at the same point, unless TRAINER.CoPrompt.PER_DATASET
  is False.
* Their second, frozen CLIP is the same image tower run without prompts (its checkpoint keys,
  model_distill.*, are skipped when loading). Checkpoint: the whole model under MultiModalPromptLearner/,
  MaPLe's keys plus the adapters'. Their adapters (and MaPLe's ctx and proj) are fp16 under PREC fp16;
  here every learned parameter stays fp32, as for MaPLe.
* First draws: their two CLIP constructions (authors_init.py), MaPLe's prompt learner, then the image
  adapter's two linears and the text adapter's.
"""

import logging
import random
from collections import OrderedDict

import torch
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.errors import ConfigError
from dasslite.utils.logger import notice_once

from ..method_card import MethodCard, Published, base2new_rows
from .class_descriptions import description_features, descriptions_file, read_descriptions
from .clip_adapter import Adapter
from .deep_prompt import DeepPromptTrainer
from .handwritten import handwritten_class_features
from .maple import MaPLeCLIP, MultiModalPromptLearner
from .prompted_encoders import check_depth, prompted_image_features, vision_blocks
from .templates import template_for
from .text_tower import text_tower

logger = logging.getLogger(__name__)

NODE = "CoPrompt"  # the authors' config node, TRAINER.CoPrompt
IMAGE_RATIO, TEXT_RATIO = 0.1, 0.2  # adapter weights in the mixes (their image_adapter_m, text_adapter_m)
REDUCTION = 4  # adapter hidden width = d / 4
COSINE_EPS = 1e-7  # their nn.CosineSimilarity(dim=1, eps=1e-07)
DISTILL_CHOICES = ("cosine", "mse")

# What their train.py forces after the command line (trainers/constants.py: get_dataset_specified_config)
PER_DATASET = {
    "ImageNet": {"TRAINER.CoPrompt.PROMPT_DEPTH": 12, "TRAINER.CoPrompt.N_CTX": 4, "TRAINER.W": 8.0},
    "Caltech101": {"TRAINER.CoPrompt.PROMPT_DEPTH": 12, "TRAINER.CoPrompt.N_CTX": 4, "TRAINER.W": 4.0},
    "OxfordPets": {"TRAINER.CoPrompt.PROMPT_DEPTH": 12, "TRAINER.CoPrompt.N_CTX": 2, "TRAINER.W": 0.1},
    "StanfordCars": {"TRAINER.CoPrompt.PROMPT_DEPTH": 12, "TRAINER.CoPrompt.N_CTX": 4, "TRAINER.W": 4.0},
    "OxfordFlowers": {"TRAINER.CoPrompt.PROMPT_DEPTH": 9, "TRAINER.CoPrompt.N_CTX": 4, "TRAINER.W": 8.0},
    "Food101": {
        "TRAINER.CoPrompt.PROMPT_DEPTH": 9,
        "TRAINER.CoPrompt.N_CTX": 4,
        "TRAINER.W": 0.5,
        "OPTIM.MAX_EPOCH": 5,
    },
    "FGVCAircraft": {"TRAINER.CoPrompt.PROMPT_DEPTH": 9, "TRAINER.CoPrompt.N_CTX": 4, "TRAINER.W": 2.0},
    "SUN397": {"TRAINER.CoPrompt.PROMPT_DEPTH": 12, "TRAINER.CoPrompt.N_CTX": 4, "TRAINER.W": 8.0},
    "DescribableTextures": {"TRAINER.CoPrompt.PROMPT_DEPTH": 12, "TRAINER.CoPrompt.N_CTX": 2, "TRAINER.W": 8.0},
    "EuroSAT": {"TRAINER.CoPrompt.PROMPT_DEPTH": 12, "TRAINER.CoPrompt.N_CTX": 2, "TRAINER.W": 0.1},
    "UCF101": {"TRAINER.CoPrompt.PROMPT_DEPTH": 12, "TRAINER.CoPrompt.N_CTX": 4, "TRAINER.W": 2.0},
}


def consistency(features, frozen, kind):
    """1 - mean cosine (kind "cosine") or the MSE between two (N, d) feature sets, as their loss."""
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(features, frozen, dim=1, eps=COSINE_EPS).mean()
    return F.mse_loss(features, frozen)


def coprompt_losses(output, label, weight, kind):
    """{"ce", "consistency"}: their loss + W * (text term + image term), the sum taken as theirs."""
    text = consistency(output["text"], output["frozen_text"], kind)
    image = consistency(output["image"], output["frozen_image"], kind)
    return OrderedDict(ce=F.cross_entropy(output["logits"], label), consistency=weight * (text + image))


class CoPromptCLIP(MaPLeCLIP):
    """MaPLe's model with the two adapters mixed into its raw features; with a second view (training) it
    also returns the frozen model's features."""

    def __init__(self, clip_model, prompt_learner, frozen_text):
        super().__init__(clip_model, prompt_learner)
        width = text_tower(clip_model).embed_dim
        self.adapter_image = Adapter(width, REDUCTION)
        self.adapter_text = Adapter(width, REDUCTION)
        # (n_descriptions, n_cls, d) normalised frozen text features: not saved, as in the authors' code
        self.register_buffer("frozen_text", frozen_text, persistent=False)

    def learned_parameters(self):
        learned = super().learned_parameters()
        learned.update((n, p) for n, p in self.named_parameters() if n.startswith(("adapter_image.", "adapter_text.")))
        return learned

    def encode_text(self, prompts, normalize=True):
        raw = super().encode_text(prompts, normalize=False).float()
        mixed = TEXT_RATIO * self.adapter_text(raw) + (1 - TEXT_RATIO) * raw
        return mixed / mixed.norm(dim=-1, keepdim=True) if normalize else mixed

    def image_features(self, image, prompts, normalize=True):
        raw = super().image_features(image, prompts, normalize=False).float()
        mixed = IMAGE_RATIO * self.adapter_image(raw) + (1 - IMAGE_RATIO) * raw
        return mixed / mixed.norm(dim=-1, keepdim=True) if normalize else mixed

    def forward(self, image, frozen_view=None):
        image_f, text_f, logits = self.features_and_logits(image)
        if frozen_view is None:
            return logits
        with torch.no_grad():
            frozen_image = prompted_image_features(self.image_encoder, frozen_view).float()
            frozen_image = frozen_image / frozen_image.norm(dim=-1, keepdim=True)
        # one description index for every class, drawn as theirs (the global generator, saved in checkpoints)
        frozen_text = self.frozen_text[random.randint(0, self.frozen_text.shape[0] - 1)]
        return dict(logits=logits, text=text_f, image=image_f, frozen_text=frozen_text, frozen_image=frozen_image)


@TRAINER_REGISTRY.register()
class CoPrompt(DeepPromptTrainer):
    config_node = NODE
    model_name = "MultiModalPromptLearner"  # the authors' register_model name
    card = MethodCard(
        reference_config="configs/trainers/CoPrompt/coprompt.yaml",
        base2new_configs=("coprompt", "coprompt"),
        published=(
            Published(
                "CoPrompt",
                source="CoPrompt README (ICLR'24), ViT-B/16, 16 shots, base-to-new averages over 3 seeds",
                base2new=base2new_rows((84.0, 77.23, 80.48)),
            ),
        ),
        export=None,
        no_export_reason="learns prompts inside the image encoder and adapters on both towers' features, so "
        "open_clip's frozen image encoder would not give this run's image features and no exported head could "
        "reproduce its logits",
    )
    checkpoint_ignore_keys = DeepPromptTrainer.checkpoint_ignore_keys + ("model_distill.",)
    learning_keys = ("TRAINER.W", "TRAINER.DISTILL")  # its keys outside TRAINER.CoPrompt: a resume must keep them

    @classmethod
    def add_config(cls, cfg):
        if NODE in cfg.TRAINER:
            return
        node = cfg.TRAINER[NODE] = CN()
        node.N_CTX = 2  # learned tokens per layer (text, and their images in the image tower)
        node.CTX_INIT = "a photo of a"  # first layer's context from these words' embeddings
        node.PREC = "fp16"  # fp16, fp32, amp or bf16
        node.PROMPT_DEPTH = 9  # layers that get prompts (at most the depth)
        # the class descriptions: a JSON file in the authors' format, or a folder of theirs (not in their config)
        node.GPT_FILE = ""
        node.PER_DATASET = True  # apply their train.py's per-dataset table after the command line (not theirs)
        cfg.TRAINER.W = 8.0  # weight of the consistency terms (their key; their yaml sets 1.0)
        cfg.TRAINER.DISTILL = "cosine"  # consistency measure: cosine, or mse (their key)

    @classmethod
    def forced_config(cls, cfg):
        """KEY VALUE pairs their train.py merges after the command line for cfg.DATASET.NAME."""
        if not cfg.TRAINER[NODE].PER_DATASET:
            return []
        return [item for pair in PER_DATASET.get(cfg.DATASET.NAME, {}).items() for item in pair]

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        if cfg.TRAINER.DISTILL not in DISTILL_CHOICES:
            raise ConfigError(
                f'TRAINER.DISTILL must be one of {", ".join(DISTILL_CHOICES)}, got "{cfg.TRAINER.DISTILL}"'
            )

    def build_custom_clip(self, classnames, clip_model):
        self.log_forced_config()
        depth = self.opts.PROMPT_DEPTH
        # Their two CLIPs (prompted, and frozen for the consistency terms) draw before the learner does.
        for _ in range(2):
            self.replay_authors_init(clip_model)
        check_depth(depth, text_tower(clip_model).transformer, f"TRAINER.{NODE}.PROMPT_DEPTH (text tower)")
        check_depth(depth, vision_blocks(clip_model.visual), f"TRAINER.{NODE}.PROMPT_DEPTH (image tower)")
        clip_model.to(self.device)
        frozen_text = self.frozen_text_features(clip_model, classnames)
        learner = MultiModalPromptLearner(self.cfg, classnames, clip_model, node=NODE)
        return CoPromptCLIP(clip_model, learner, frozen_text)

    def log_forced_config(self):
        forced = self.forced_config(self.cfg)
        if forced:
            settings = ", ".join(f"{k} {v}" for k, v in zip(forced[::2], forced[1::2]))
            logger.info(
                f"CoPrompt: the authors' per-dataset settings for {self.cfg.DATASET.NAME}, applied after the command "
                f"line as their train.py does: {settings} (TRAINER.{NODE}.PER_DATASET False leaves them to the "
                f"yaml and the command line)"
            )

    def frozen_text_features(self, clip_model, classnames):
        """(n_descriptions, n_cls, d): the descriptions' features, or the hand-written prompt's without a file.

        Computed outside autocast, as theirs (under amp their frozen CLIP is fp32 and encodes them in fp32).
        """
        key, path = f"TRAINER.{NODE}.GPT_FILE", self.opts.GPT_FILE
        prec = "fp32" if self.prec == "amp" else self.prec
        if path:
            path = descriptions_file(path, self.cfg.DATASET.NAME, key)
            per_class = read_descriptions(path, classnames, key)
            logger.info(f"Class descriptions: {len(per_class[0])} per class from {path}")
            return description_features(clip_model, per_class, prec)
        template = template_for(self.cfg.DATASET.NAME)
        logger.warning(
            f'{key} is not set: the text consistency term uses the hand-written prompt "{template}" instead of '
            f"LLM-written class descriptions; the published numbers need the authors' descriptions (a JSON file "
            f"{{class name: [sentences]}}, their gpt_file/<dataset>_prompt.json)"
        )
        return handwritten_class_features(clip_model, classnames, [template], prec).unsqueeze(0)

    def parse_batch_train(self, batch):
        """(first view, second view), label; with one view (K_TRANSFORMS 1) both are that view."""
        views = batch["img"]
        if torch.is_tensor(views):
            notice_once(
                logger,
                "CoPrompt: one view per image (DATALOADER.K_TRANSFORMS 1), so the frozen CLIP sees the prompted "
                "model's view; the authors train on two RandAugment views (K_TRANSFORMS 2, their yaml)",
            )
            views = [views, views]
        return (views[0].to(self.device), views[1].to(self.device)), batch["label"].to(self.device)

    def forward_train(self, image):
        view, frozen_view = image
        return self.train_model(view, frozen_view)

    def compute_losses(self, output, label):
        return coprompt_losses(output, label, self.cfg.TRAINER.W, self.cfg.TRAINER.DISTILL)

    def logits_of(self, output):
        return output["logits"]
