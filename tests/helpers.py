"""Small builders shared by test packages (fixtures live in the conftest.py files)."""


def cpu_run_opts(backbone):
    """KEY VALUE overrides of every short CPU run in the tests: the tiny CLIP, no workers, small test batches."""
    return [
        "MODEL.BACKBONE.NAME",
        backbone,
        "DATALOADER.NUM_WORKERS",
        "0",
        "DATALOADER.TEST.BATCH_SIZE",
        "8",
        "USE_CUDA",
        "False",
    ]


def set_keys(cfg, opts, sep="."):
    """Set config values given as {"OPTIM.LR": 0.1} (or with another `sep` between the key's parts)."""
    for key, value in opts.items():
        node = cfg
        *parents, leaf = key.split(sep)
        for part in parents:
            node = node[part]
        node[leaf] = value
    return cfg


# 1-epoch fp32 CoOp with two context vectors: the quickest run that trains and writes a checkpoint.
QUICK_COOP_OPTS = ("OPTIM.MAX_EPOCH", "1", "TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX", "2")
