"""Config files are YAML read with a safe loader (anything else is refused unread); YAML
syntax errors and non-mapping files name the file; values are checked before anything is written; a flag
after the KEY VALUE overrides is refused."""

import pytest

import train
from dasslite.errors import ConfigError

from .conftest import train_argv


@pytest.mark.parametrize("flag", ["--config-file", "--dataset-config-file"])
def test_python_config_file_is_refused_without_being_read(tmp_path, pets_root, tiny_clip_path, flag):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\ncfg = {{}}\n")
    out = tmp_path / "out"
    argv = train_argv(pets_root, out, tiny_clip_path)
    argv[argv.index(flag) + 1] = str(evil)
    with pytest.raises(
        ConfigError, match=rf'{flag}: "{evil}" is not a YAML file; config files must end in .yaml or .yml'
    ):
        train.main(argv)
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("OPTIM:\n  LR: [0.1\n", r"is not valid YAML: .*line"),
        ("- OPTIM\n- LR\n", r"must hold a mapping of config keys .*it holds a list"),
        ("just a string\n", r"must hold a mapping of config keys .*it holds a str"),
    ],
    ids=["syntax_error", "list", "scalar"],
)
def test_bad_yaml_names_the_file(tmp_path, pets_root, tiny_clip_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = tmp_path / "out"
    argv = train_argv(pets_root, out, tiny_clip_path)
    argv[argv.index("--config-file") + 1] = str(bad)
    with pytest.raises(ConfigError, match=rf'--config-file: "{bad}" {message}'):
        train.main(argv)
    assert not out.exists()


VALUES = [
    ("OPTIM.LR", "0.0", "a positive finite number"),
    ("OPTIM.LR", "-0.002", "a positive finite number"),
    ("OPTIM.LR", ".inf", "a positive finite number"),
    ("OPTIM.LR", ".nan", "a positive finite number"),
    ("DATALOADER.TRAIN_X.BATCH_SIZE", "0", "an integer >= 1"),
    ("DATALOADER.TEST.BATCH_SIZE", "-4", "an integer >= 1"),
    ("INPUT.SIZE", "[224]", "two positive integers"),
    ("INPUT.SIZE", "[224, 0]", "two positive integers"),
    ("INPUT.SIZE", "[224.5, 224]", "two positive integers"),
    ("DATALOADER.NUM_WORKERS", "-1", "an integer >= 0"),
    ("INPUT.PIXEL_STD", "[0.26, 0.0, 0.27]", "non-zero in every channel"),
]


@pytest.mark.parametrize("key, value, expected", VALUES, ids=[f"{k}={v}" for k, v, _ in VALUES])
def test_bad_values_are_refused_before_anything_is_written(tmp_path, pets_root, tiny_clip_path, key, value, expected):
    """Given in the --config-file yaml (YAML reads .inf / .nan as floats)."""
    parts = key.split(".")
    lines = [f"{'  ' * i}{part}:" for i, part in enumerate(parts[:-1])] + [
        f"{'  ' * (len(parts) - 1)}{parts[-1]}: {value}"
    ]
    config = tmp_path / "bad_value.yaml"
    config.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    argv = train_argv(pets_root, out, tiny_clip_path)
    if key in argv:  # the command-line override would replace the yaml's value
        del argv[argv.index(key) : argv.index(key) + 2]
    argv[argv.index("--config-file") + 1] = str(config)
    with pytest.raises(ConfigError, match=rf"{key} must be {expected}"):
        train.main(argv)
    assert not out.exists()


def test_flag_after_the_overrides_is_refused(tmp_path, pets_root, tiny_clip_path):
    out = tmp_path / "out"
    with pytest.raises(
        ConfigError,
        match=r'"--eval-only" comes after the KEY VALUE overrides .*flags go before the KEY VALUE overrides',
    ):
        train.main([*train_argv(pets_root, out, tiny_clip_path), "--eval-only"])
    assert not out.exists()
