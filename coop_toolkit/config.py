"""The config of a run of the command-line tools (train.py, lpclip/feat_extractor.py), in one merge order:

    engine defaults -> every trainer's TRAINER.<NAME> node -> dataset yaml -> method yaml -> flags -> KEY VALUE opts
    -> what the trainer forces (its `forced_config(cfg)`, where it has one)

the original's order (docs/reference-behaviour.md, "Configuration"), so a later source wins. The last step
is a method's authors' own: CoPrompt's train.py merges a per-dataset table after the command line.
"""

from dasslite.config import get_cfg_default, merge_from_file_checked, merge_from_list_checked

from . import trainers


def merge_run_config(args, apply_flags):
    """The merged, unfrozen config of `args` (dataset_config_file, config_file, opts); `apply_flags(cfg)`
    sets the keys the tool's own flags stand for."""
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)  # every trainer's node, whatever the trainer, so any method yaml merges
    if args.dataset_config_file:
        merge_from_file_checked(cfg, args.dataset_config_file, "--dataset-config-file")
    if args.config_file:
        merge_from_file_checked(cfg, args.config_file, "--config-file")
    apply_flags(cfg)
    merge_from_list_checked(cfg, args.opts or [])
    registry = trainers.TRAINER_REGISTRY
    trainer = registry.get(cfg.TRAINER.NAME) if cfg.TRAINER.NAME in registry else None  # unknown: named later
    forced = getattr(trainer, "forced_config", None)
    if forced is not None:
        merge_from_list_checked(cfg, forced(cfg))
    return cfg
