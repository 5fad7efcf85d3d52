"""Datasets -> torch DataLoaders (docs/reference-behaviour.md, "Data loaders and transforms"): the reference's
loader table, plus DDP for training."""

import logging

import torch
import torchvision.transforms as T
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from ..utils.dist import get_world_size, is_dist
from .build import build_dataset
from .images import check_images, read_image
from .samplers import build_sampler
from .transforms import INTERPOLATION_MODES, build_transform

logger = logging.getLogger(__name__)


class DatasetWrapper(Dataset):
    """A list of Datum as a torch Dataset yielding {"img", "label", "domain", "impath", "index"}.

    `transform` may be a list (outputs "img", "img2", ...); training applies each K_TRANSFORMS times.
    """

    def __init__(self, cfg, data_source, transform=None, is_train=False):
        self.data_source = data_source
        self.transform = transform
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0
        if self.k_tfm > 1 and transform is None:
            raise ValueError("DATALOADER.K_TRANSFORMS > 1 needs a transform (INPUT.NO_TRANSFORM is True)")
        to_tensor = [
            T.Resize(tuple(cfg.INPUT.SIZE), interpolation=INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]),
            T.ToTensor(),
        ]
        if "normalize" in cfg.INPUT.TRANSFORMS:
            to_tensor.append(T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
        self.to_tensor = T.Compose(to_tensor)  # the un-augmented "img0"

    def __len__(self):
        return len(self.data_source)

    def __getitem__(self, idx):
        item = self.data_source[idx]
        output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        img0 = read_image(item.impath)
        if self.transform is None:
            output["img"] = img0
        elif isinstance(self.transform, (list, tuple)):
            for i, tfm in enumerate(self.transform):
                output["img" if i == 0 else f"img{i + 1}"] = self._apply(tfm, img0)
        else:
            output["img"] = self._apply(self.transform, img0)
        if self.return_img0:
            output["img0"] = self.to_tensor(img0)
        return output

    def _apply(self, tfm, img0):
        imgs = [tfm(img0) for _ in range(self.k_tfm)]
        return imgs[0] if len(imgs) == 1 else imgs


def _train_sampler_ddp(cfg, sampler_type, dataset, drop_last):
    if sampler_type not in ("RandomSampler", "SequentialSampler"):
        raise NotImplementedError(f"{sampler_type} is not supported with torch.distributed; use RandomSampler")
    seed = cfg.SEED if cfg.SEED >= 0 else 0
    # drop_last drops the same tail as one process would, instead of padding with repeated items,
    # so that N processes see the same global batches as one process (each takes every N-th index).
    return DistributedSampler(dataset, shuffle=sampler_type == "RandomSampler", seed=seed, drop_last=drop_last)


def build_data_loader(
    cfg,
    sampler_type="SequentialSampler",
    data_source=None,
    batch_size=64,
    n_domain=0,
    n_ins=2,
    tfm=None,
    is_train=True,
    dataset_wrapper=None,
    split="data",
):
    """One loader; drop_last only when there is at least one full batch (so it is never empty).

    Under torch.distributed a training loader shards the data with a DistributedSampler and takes
    batch_size // world_size per process; evaluation loaders stay whole on every process.
    """
    if not data_source:
        raise ValueError(
            f"Cannot build the {split} loader: the {split} split of DATASET.NAME "
            f'"{cfg.DATASET.NAME}" is empty (check DATASET.ROOT, NUM_SHOTS and SUBSAMPLE_CLASSES)'
        )
    dataset = (dataset_wrapper or DatasetWrapper)(cfg, data_source, transform=tfm, is_train=is_train)
    drop_last = is_train and len(data_source) >= batch_size
    world = get_world_size()
    if is_train and is_dist():
        if batch_size % world:
            raise ValueError(
                f"The {split} batch size ({batch_size}) must be divisible by the number of "
                f"processes ({world}): DATALOADER.{split.upper()}.BATCH_SIZE is the global batch and "
                f"each process takes BATCH_SIZE / {world} of it. Set it to a multiple of {world} or "
                f"run fewer processes (a batch of 1, as in CoCoOp's configs, cannot be split)."
            )
        sampler, batch_size = _train_sampler_ddp(cfg, sampler_type, dataset, drop_last), batch_size // world
    else:
        sampler = build_sampler(
            sampler_type, cfg=cfg, data_source=data_source, batch_size=batch_size, n_domain=n_domain, n_ins=n_ins
        )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
    )
    if len(loader) == 0:
        raise ValueError(f"The {split} loader is empty ({len(data_source)} items, batch size {batch_size})")
    return loader


class DataManager:
    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None):
        dataset = build_dataset(cfg)
        if cfg.DATASET.CHECK_DATA:
            self.check_data(cfg, dataset)
        tfm_train = self._transform(cfg, custom_tfm_train, True)
        tfm_test = self._transform(cfg, custom_tfm_test, False)

        def loader(node, data_source, split, is_train):
            per_domain = dict(n_domain=node.N_DOMAIN, n_ins=node.N_INS) if is_train else {}
            return build_data_loader(
                cfg,
                sampler_type=node.SAMPLER,
                data_source=data_source,
                batch_size=node.BATCH_SIZE,
                tfm=tfm_train if is_train else tfm_test,
                is_train=is_train,
                dataset_wrapper=dataset_wrapper,
                split=split,
                **per_domain,
            )

        x, test = cfg.DATALOADER.TRAIN_X, cfg.DATALOADER.TEST
        u = x if cfg.DATALOADER.TRAIN_U.SAME_AS_X else cfg.DATALOADER.TRAIN_U
        self.train_loader_x = loader(x, dataset.train_x, "train_x", True)
        self.train_loader_u = loader(u, dataset.train_u, "train_u", True) if dataset.train_u else None
        self.val_loader = loader(test, dataset.val, "val", False) if dataset.val else None
        self.test_loader = loader(test, dataset.test, "test", False)
        self.dataset = dataset
        self.tfm_train, self.tfm_test = tfm_train, tfm_test
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @staticmethod
    def check_data(cfg, dataset):
        """DATASET.CHECK_DATA (train.py --check-data): decode every image of the splits once, up front."""
        splits = [dataset.train_x, dataset.train_u, dataset.val, dataset.test]
        paths = [d.impath for items in splits for d in items]
        logger.info(f"Checking that the {len(paths):,} images of the splits can be read (DATASET.CHECK_DATA)")
        checked = check_images(paths, cfg.DATALOADER.NUM_WORKERS)
        logger.info(f"All {checked:,} images can be read")

    @staticmethod
    def _transform(cfg, custom, is_train):
        if custom is None:
            return build_transform(cfg, is_train=is_train)
        logger.info(f"* Using custom transform for {'training' if is_train else 'testing'}")
        return custom

    @property
    def num_classes(self):
        return self.dataset.num_classes

    @property
    def num_source_domains(self):
        return self._num_source_domains

    @property
    def lab2cname(self):
        return self.dataset.lab2cname

    @property
    def classnames(self):
        return self.dataset.classnames

    def show_dataset_summary(self, cfg):
        ds = self.dataset
        table = [
            ["Dataset", cfg.DATASET.NAME],
            ["# classes", f"{self.num_classes:,}"],
            ["# train_x", f"{len(ds.train_x):,}"],
        ]
        if ds.train_u:
            table.append(["# train_u", f"{len(ds.train_u):,}"])
        if ds.val:
            table.append(["# val", f"{len(ds.val):,}"])
        table.append(["# test", f"{len(ds.test):,}"])
        logger.info(tabulate(table))
