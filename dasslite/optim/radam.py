"""Dassl's RAdam (dassl/optim/radam.py), for ported files that import it: torch's RAdam with the weight
decay decoupled (p -= lr * weight_decay * p before the step, as Dassl's does) and, in the first steps
where the variance is not yet tractable, the bias-corrected momentum step (Dassl's default
degenerated_to_sgd=True; torch's RAdam does the same)."""

import torch


class RAdam(torch.optim.RAdam):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, degenerated_to_sgd=True):
        if not degenerated_to_sgd:
            raise ValueError("RAdam(degenerated_to_sgd=False) (no update in the first steps) is not supported")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decoupled_weight_decay=True)
