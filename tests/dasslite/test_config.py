import re

import pytest

import dasslite.config as config_module
from dasslite.config import (
    check_cfg_values,
    flat_keys,
    get_cfg_default,
    merge_from_file_checked,
    merge_from_list_checked,
)


def test_defaults_match_dassl():
    cfg = get_cfg_default()
    assert cfg.OPTIM.NAME == "adam" and cfg.OPTIM.LR == 0.0003
    assert cfg.OPTIM.WEIGHT_DECAY == 5e-4 and cfg.OPTIM.MOMENTUM == 0.9 and cfg.OPTIM.SGD_DAMPNING == 0
    assert cfg.OPTIM.LR_SCHEDULER == "single_step" and cfg.OPTIM.STEPSIZE == (-1,)
    assert cfg.OPTIM.WARMUP_EPOCH == -1 and cfg.OPTIM.WARMUP_CONS_LR == 1e-5 and cfg.OPTIM.WARMUP_RECOUNT
    assert cfg.INPUT.SIZE == (224, 224) and cfg.INPUT.INTERPOLATION == "bilinear"
    assert cfg.INPUT.PIXEL_MEAN == [0.485, 0.456, 0.406] and cfg.INPUT.RRCROP_SCALE == (0.08, 1.0)
    assert cfg.DATALOADER.NUM_WORKERS == 4 and cfg.DATALOADER.TRAIN_X.BATCH_SIZE == 32
    assert cfg.DATALOADER.TEST.SAMPLER == "SequentialSampler"
    assert cfg.TRAIN.CHECKPOINT_FREQ == 0 and cfg.TRAIN.PRINT_FREQ == 10
    assert cfg.TEST.FINAL_MODEL == "last_step" and cfg.TEST.SPLIT == "test"
    assert cfg.DATASET.SUBSAMPLE_CLASSES == "all" and cfg.DATASET.NUM_SHOTS == -1
    assert cfg.SEED == -1 and cfg.OUTPUT_DIR == "./output" and cfg.RESUME == ""
    assert list(cfg.TRAINER.keys()) == ["NAME"]  # trainers add their own nodes


def test_get_cfg_default_returns_a_copy():
    cfg = get_cfg_default()
    cfg.OPTIM.LR = 1.0
    assert get_cfg_default().OPTIM.LR == 0.0003


def test_every_key_has_a_comment():
    with open(config_module.__file__) as f:
        source = f.read()
    for key in flat_keys(get_cfg_default()):
        line = re.search(rf"^_C\.{re.escape(key)} = .*$", source, re.M)
        assert line and "  # " in line.group(0), f"{key} has no comment"


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_merge_file_coerces_like_yacs(tmp_path):
    cfg = get_cfg_default()
    path = write(tmp_path, "OPTIM:\n  LR: 1\n  WARMUP_CONS_LR: 1e-5\n  STEPSIZE: [3, 5]\nINPUT:\n  SIZE: [32, 32]\n")
    merge_from_file_checked(cfg, path, "--config-file")
    assert cfg.OPTIM.LR == 1.0 and isinstance(cfg.OPTIM.LR, float)  # int accepted for a float key
    assert cfg.OPTIM.WARMUP_CONS_LR == 1e-5 and cfg.OPTIM.STEPSIZE == (3, 5) and cfg.INPUT.SIZE == (32, 32)


def test_unknown_key_names_file_and_closest_key(tmp_path):
    path = write(tmp_path, "OPTIM:\n  MAX_EPOCHS: 5\n")
    with pytest.raises(KeyError) as err:
        merge_from_file_checked(get_cfg_default(), path, "--config-file")
    msg = str(err.value)
    assert "OPTIM.MAX_EPOCHS" in msg and path in msg and "--config-file" in msg and '"OPTIM.MAX_EPOCH"' in msg


def test_unknown_top_level_node(tmp_path):
    path = write(tmp_path, "OPTIMM:\n  LR: 0.1\n")
    with pytest.raises(KeyError, match=r'OPTIMM\.LR.*Did you mean "OPTIM\.LR"'):
        merge_from_file_checked(get_cfg_default(), path)


def test_missing_file_is_named(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        merge_from_file_checked(get_cfg_default(), missing, "--dataset-config-file")


def test_opts_wrong_type_names_key_type_and_value():
    with pytest.raises(ValueError) as err:
        merge_from_list_checked(get_cfg_default(), ["OPTIM.MAX_EPOCH", "ten"])
    msg = str(err.value)
    assert "OPTIM.MAX_EPOCH" in msg and "expected int" in msg and "'ten'" in msg


def test_opts_merge_and_errors():
    cfg = get_cfg_default()
    merge_from_list_checked(cfg, ["DATASET.NUM_SHOTS", "16", "TEST.PER_CLASS_RESULT", "True", "SEED", "0"])
    assert cfg.DATASET.NUM_SHOTS == 16 and cfg.TEST.PER_CLASS_RESULT is True and cfg.SEED == 0
    with pytest.raises(KeyError, match='Did you mean "DATASET.NUM_SHOTS"'):
        merge_from_list_checked(cfg, ["DATASET.NUM_SHOT", "4"])
    with pytest.raises(ValueError, match="KEY VALUE pairs"):
        merge_from_list_checked(cfg, ["SEED"])
    with pytest.raises(KeyError, match="is a group"):
        merge_from_list_checked(cfg, ["OPTIM", "1"])


def test_check_cfg_values():
    cfg = get_cfg_default()
    check_cfg_values(cfg)
    cfg.DATASET.SUBSAMPLE_CLASSES = "bases"
    with pytest.raises(ValueError, match='DATASET.SUBSAMPLE_CLASSES must be one of all, base, new; got "bases"'):
        check_cfg_values(cfg)
    cfg = get_cfg_default()
    cfg.TEST.FINAL_MODEL = "best"
    with pytest.raises(ValueError, match="TEST.FINAL_MODEL"):
        check_cfg_values(cfg)
