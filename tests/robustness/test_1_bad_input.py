"""Bad input gets a clear error naming the culprit and the fix, and leaves no half-written
output. Errors found while reading the config and looking up names come before train.py writes
anything (the output folder is not even created); errors found while building the data or the model
leave at most log.txt, never a checkpoint or metrics.json."""

import logging
import os

import pytest

import train
from dasslite.registry import UnknownNameError
from dasslite.utils.io import read_json

from .conftest import eval_argv, train_argv


def assert_nothing_written(out):
    assert not os.path.exists(out), f"{out} was created: {os.listdir(out)}"


def assert_no_results(out):
    """At most the failed run's log and the folder's lock file: no checkpoint folder, no metrics.json."""
    leftovers = set(os.listdir(out)) - {"log.txt", ".lock"} if os.path.isdir(out) else set()
    assert not leftovers, leftovers


def expect_rejected(tmp_path, pets_root, clip, error, match, *opts, check):
    """train.main with these overrides raises `error` matching `match`; `check` then inspects the output folder."""
    out = tmp_path / "out"
    with pytest.raises(error, match=match):
        train.main(train_argv(pets_root, out, clip, *opts))
    check(out)


def test_unknown_config_key_names_the_closest_valid_key(tmp_path, pets_root, tiny_clip_path):
    expect_rejected(
        tmp_path,
        pets_root,
        tiny_clip_path,
        KeyError,
        r'Unknown config key "OPTIM.MAX_EPOCHS" in the command-line options\. '
        r'Did you mean "OPTIM.MAX_EPOCH"\?',
        "OPTIM.MAX_EPOCHS",
        "3",
        check=assert_nothing_written,
    )


def test_unknown_config_key_in_a_yaml_names_the_file(tmp_path, pets_root, tiny_clip_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("TRAINER:\n  COCOOP:\n    N_CTXX: 4\n")
    out = tmp_path / "out"
    argv = train_argv(pets_root, out, tiny_clip_path)
    argv[argv.index("--config-file") + 1] = str(bad)
    with pytest.raises(
        KeyError,
        match=rf'"TRAINER.COCOOP.N_CTXX" in --config-file "{bad}"\. '
        r'Did you mean "TRAINER.COCOOP.N_CTX"\?',
    ):
        train.main(argv)
    assert_nothing_written(out)


def test_value_of_the_wrong_type_names_the_key_and_the_expected_type(tmp_path, pets_root, tiny_clip_path):
    expect_rejected(
        tmp_path,
        pets_root,
        tiny_clip_path,
        ValueError,
        r"Wrong type for config key OPTIM.MAX_EPOCH in the command-line options: "
        r"expected int .* got str 'ten'",
        "OPTIM.MAX_EPOCH",
        "ten",
        check=assert_nothing_written,
    )


@pytest.mark.parametrize(
    "kind, args, message",
    [
        (
            "trainer",
            ["--trainer", "CoCoOP"],
            r'Unknown trainer "CoCoOP"\. Did you mean "CoCoOp"\? Valid trainer names: .*CoCoOp, CoOp, .*TRAINER.NAME',
        ),
        (
            "dataset",
            ["DATASET.NAME", "OxfordPet"],
            r'Unknown dataset "OxfordPet"\. Did you mean "OxfordPets"\? '
            r"Valid dataset names: .*OxfordFlowers, OxfordPets",
        ),
        (
            "backbone",
            ["MODEL.BACKBONE.NAME", "ViT-B/61"],
            r'Unknown MODEL.BACKBONE.NAME "ViT-B/61": not a file, not an OpenAI name \(RN50, .*ViT-B/16',
        ),
        (
            "transform",
            ["INPUT.TRANSFORMS", "['random_flip', 'random_resized_crap']"],
            r'Unknown transform "random_resized_crap"\. Did you mean "random_resized_crop"\? .*INPUT.TRANSFORMS',
        ),
        (
            "optimizer",
            ["OPTIM.NAME", "sgdd"],
            r'Unknown optimizer "sgdd"\. Did you mean "sgd"\? '
            r"Valid optimizer names: adam, adamw, amsgrad, .*OPTIM.NAME",
        ),
        (
            "scheduler",
            ["OPTIM.LR_SCHEDULER", "cosin"],
            r'Unknown LR scheduler "cosin"\. Did you mean "cosine"\? Valid LR scheduler names: cosine, multi_step, '
            r"single_step.*OPTIM.LR_SCHEDULER",
        ),
    ],
)
def test_unknown_name_lists_the_valid_names_before_writing_anything(
    tmp_path, pets_root, tiny_clip_path, kind, args, message
):
    out = tmp_path / "out"
    if kind == "trainer":
        argv = train_argv(pets_root, out, tiny_clip_path, trainer=args[1])
    else:
        argv = train_argv(pets_root, out, tiny_clip_path, *args)
    with pytest.raises((UnknownNameError, ValueError, FileNotFoundError), match=message):
        train.main(argv)
    assert_nothing_written(out)


@pytest.mark.parametrize("flag", ["--config-file", "--dataset-config-file"])
def test_config_file_that_does_not_exist_is_named(tmp_path, pets_root, tiny_clip_path, flag):
    out = tmp_path / "out"
    missing = tmp_path / "configs" / "nope.yaml"
    argv = train_argv(pets_root, out, tiny_clip_path)
    argv[argv.index(flag) + 1] = str(missing)
    with pytest.raises(FileNotFoundError, match=rf'{flag}: config file not found: "{missing}"'):
        train.main(argv)
    assert_nothing_written(out)


def test_num_shots_larger_than_a_class_has_warns_and_takes_all(tmp_path, pets_root, tiny_clip_path, caplog):
    """The miniature Oxford Pets has 4 training images per class; ask for 8 (as the reference: warn, use all)."""
    out = tmp_path / "out"
    argv = train_argv(pets_root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "8", trainer="CoOp")
    with caplog.at_level(logging.WARNING):
        train.main(
            argv + ["TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "4"]
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "shots" in r.getMessage()]
    assert (
        len(warnings) == 1
        and "Few-shot: 5 of 5 classes have fewer images than the shots asked for (8 train" in (warnings[0])
    ), warnings
    assert (out / "metrics.json").is_file()
    cache = read_json(os.path.join(pets_root, "oxford_pets", "split_fewshot", "shot_8-seed_1.json"))
    assert len(cache["train"]) == 20  # every training image of all 5 classes (base/new is split afterwards)


def test_subsample_classes_other_than_all_base_new_is_rejected(tmp_path, pets_root, tiny_clip_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r'DATASET.SUBSAMPLE_CLASSES must be one of all, base, new; got "novel"'):
        train.main(train_argv(pets_root, out, tiny_clip_path, "DATASET.SUBSAMPLE_CLASSES", "novel"))
    assert_nothing_written(out)


def test_ctx_init_with_more_words_than_the_context_allows_is_rejected(tmp_path, pets_root, tiny_clip_path):
    out = tmp_path / "out"
    words = "_".join(["photo"] * 80)
    with pytest.raises(
        ValueError,
        match=r'TRAINER.COCOOP.CTX_INIT "photo photo .*" has 80 tokens; at most 74 fit '
        r"in the 77-token context of .*tiny-ViT\.pt\. Use fewer words\.",
    ):
        train.main(train_argv(pets_root, out, tiny_clip_path, "TRAINER.COCOOP.CTX_INIT", words))
    assert_no_results(out)


def test_image_size_that_does_not_match_the_backbone_is_rejected(tmp_path, pets_root, tiny_clip_path):
    expect_rejected(
        tmp_path,
        pets_root,
        tiny_clip_path,
        ValueError,
        r"INPUT.SIZE is \(192, 192\) but this CLIP backbone takes \(224, 224\) "
        r"images; set INPUT.SIZE '\(224, 224\)'",
        "INPUT.SIZE",
        "(192, 192)",
        check=assert_no_results,
    )


# ---------------------------------------------------------------- checkpoints given to --eval-only


def test_checkpoint_folder_without_the_expected_files_is_named(tmp_path, trained_coop, tiny_clip_path):
    root, _ = trained_coop
    empty = tmp_path / "not_a_run"
    (empty / "prompt_learner").mkdir(parents=True)
    out = tmp_path / "eval"
    with pytest.raises(
        FileNotFoundError,
        match=rf'Model not found at "{empty}/prompt_learner/model.pth.tar-1"; '
        rf'no checkpoint files in "{empty}/prompt_learner"',
    ):
        train.main(eval_argv(root, out, empty, tiny_clip_path, "TRAINER.COOP.N_CTX", "2"))
    assert_no_results(out)


def test_checkpoint_from_another_trainer_is_rejected_naming_the_keys(tmp_path, trained_coop, tiny_clip_path):
    """A CoOp checkpoint shares `ctx` with CoCoOp's prompt learner but has no Meta-Net: loading it must fail
    (not leave the Meta-Net at its random initialisation with only a warning)."""
    root, coop_out = trained_coop
    out = tmp_path / "eval"
    with pytest.raises(ValueError, match=r'saved by trainer "CoOp".*missing keys \[.*meta_net\.linear1\.weight'):
        train.main(
            eval_argv(
                root,
                out,
                coop_out,
                tiny_clip_path,
                "TRAINER.COCOOP.N_CTX",
                "2",
                "TRAINER.COCOOP.CTX_INIT",
                "",
                trainer="CoCoOp",
            )
        )
    assert_no_results(out)


def test_checkpoint_with_mismatched_shapes_names_the_keys(tmp_path, trained_coop, tiny_clip_path):
    root, coop_out = trained_coop
    out = tmp_path / "eval"
    with pytest.raises(
        ValueError,
        match=r"^Shape mismatch loading [^\n]*model\.pth\.tar-1[^\n]*ctx: checkpoint \(2, 64\), "
        r"model \(4, 64\)[^\n]*$",
    ):
        train.main(eval_argv(root, out, coop_out, tiny_clip_path, "TRAINER.COOP.N_CTX", "4"))
    assert_no_results(out)
