"""Samplers by name (DATALOADER.*.SAMPLER)."""

import copy
import random
from collections import defaultdict

from torch.utils.data.sampler import RandomSampler, Sampler, SequentialSampler

from ..registry import unknown_name_message

AVAILABLE_SAMPLERS = ("RandomSampler", "SequentialSampler", "RandomClassSampler")


class RandomClassSampler(Sampler):
    """Batches of `n_ins` images from each of batch_size // n_ins random classes (Dassl's semantics).

    Draws from python's global `random`, as Dassl does, so SEED makes it repeatable.
    """

    def __init__(self, data_source, batch_size, n_ins):
        if batch_size < n_ins:
            raise ValueError(f"RandomClassSampler: batch size ({batch_size}) must be >= N_INS ({n_ins})")
        self.data_source = data_source
        self.n_ins = n_ins
        self.ncls_per_batch = batch_size // n_ins
        self.index_dic = defaultdict(list)
        for index, item in enumerate(data_source):
            self.index_dic[item.label].append(index)
        self.labels = list(self.index_dic)
        if len(self.labels) < self.ncls_per_batch:
            raise ValueError(
                f"RandomClassSampler needs {self.ncls_per_batch} classes per batch "
                f"(batch size // N_INS) but the data has only {len(self.labels)}"
            )
        self.length = len(list(self.__iter__()))

    def __iter__(self):
        batch_idxs_dict = defaultdict(list)
        for label in self.labels:
            idxs = copy.deepcopy(self.index_dic[label])
            if len(idxs) < self.n_ins:
                idxs = random.choices(idxs, k=self.n_ins)
            random.shuffle(idxs)
            batch_idxs = []
            for idx in idxs:
                batch_idxs.append(idx)
                if len(batch_idxs) == self.n_ins:
                    batch_idxs_dict[label].append(batch_idxs)
                    batch_idxs = []
        avai_labels = copy.deepcopy(self.labels)
        final_idxs = []
        while len(avai_labels) >= self.ncls_per_batch:
            for label in random.sample(avai_labels, self.ncls_per_batch):
                final_idxs.extend(batch_idxs_dict[label].pop(0))
                if not batch_idxs_dict[label]:
                    avai_labels.remove(label)
        return iter(final_idxs)

    def __len__(self):
        return self.length


def build_sampler(sampler_type, cfg=None, data_source=None, batch_size=32, n_domain=0, n_ins=16):
    if sampler_type == "RandomSampler":
        return RandomSampler(data_source)
    if sampler_type == "SequentialSampler":
        return SequentialSampler(data_source)
    if sampler_type == "RandomClassSampler":
        return RandomClassSampler(data_source, batch_size, n_ins)
    raise ValueError(
        unknown_name_message(
            "sampler",
            sampler_type,
            AVAILABLE_SAMPLERS,
            hint="(config keys DATALOADER.TRAIN_X.SAMPLER / DATALOADER.TEST.SAMPLER)",
        )
    )
