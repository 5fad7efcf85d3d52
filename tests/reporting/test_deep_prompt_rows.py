"""MaPLe / IVLP / VPT / PromptSRC: the protocol scripts run them, results.py prints their published rows."""

import pytest

import results
from tests.reporting.test_results import _b2n
from tests.reporting.test_scripts import _arg, _run, stub  # noqa: F401  (stub is a fixture)


@pytest.mark.parametrize(
    "trainer, cfg, epoch",
    [
        ("MaPLe", "vit_b16_c2_ep5_batch4_2ctx", "5"),
        ("IVLP", "vit_b16_c2_ep5_batch4_2+2ctx", "5"),
        ("VPT", "vit_b16_c2_ep5_batch4_4", "5"),
        ("PromptSRC", "vit_b16_c2_ep20_batch4_4+4ctx", "20"),
    ],
)
def test_the_base2new_scripts_run_the_method_in_the_authors_layout(tmp_path, stub, trainer, cfg, epoch):  # noqa: F811
    env = dict(TRAINER=trainer, CFG=cfg)
    _, (train,) = _run("cocoop/base2new_train.sh", "dtd", "1", stub=stub, cwd=tmp_path, **env)
    _, (_, test) = _run("cocoop/base2new_test.sh", "dtd", "1", stub=stub, cwd=tmp_path, **env)
    common = f"dtd/shots_16/{trainer}/{cfg}/seed1"  # the authors' scripts' folders
    assert _arg(train, "--output-dir") == f"{tmp_path}/out/base2new/train_base/{common}"
    assert _arg(train, "--config-file") == f"configs/trainers/{trainer}/{cfg}.yaml"
    assert _arg(test, "--load-epoch") == epoch and _arg(test, "--output-dir").endswith(f"test_new/{common}")


@pytest.mark.parametrize(
    "trainer, cfg, published",
    [
        ("MaPLe", "vit_b16_c2_ep5_batch4_2ctx", "(paper 95.43"),  # OxfordPets base, MaPLe README
        ("PromptSRC", "vit_b16_c2_ep20_batch4_4+4ctx", "(paper 95.33"),
        ("IVLP", "vit_b16_c2_ep20_batch4_4+4ctx", "(paper 84.21"),  # only the average is published
        ("IVLP", "vit_b16_c2_ep5_batch4_4ctx_language_only", "(paper 81.72"),
    ],
)
def test_results_print_the_published_row_of_the_method_and_config(tmp_path, capsys, trainer, cfg, published):
    root = tmp_path / "output"
    _b2n(root, "oxford_pets", 1, 90.0, 50.0, trainer=trainer, cfg=cfg, dataset="OxfordPets")
    _b2n(root, "dtd", 1, 60.0, 80.0, trainer=trainer, cfg=cfg, dataset="DescribableTextures")
    assert results.main([str(root), "--out", str(tmp_path / "tables"), "--paper"]) == 0
    assert published in capsys.readouterr().out
