"""Dassl's top-k accuracy helper, for trainers that log it (`compute_accuracy(output, label)[0].item()`)."""

import torch


@torch.no_grad()
def compute_accuracy(output, target, topk=(1,)):
    """Top-k accuracies in percent, as a list of one-element tensors (one per k).

    `output` may be a tuple or list (a model returning logits and more); its first item is used.
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    maxk = max(topk)
    _, pred = output.topk(maxk, 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand(maxk, -1))
    return [correct[:k].reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / target.size(0)) for k in topk]
