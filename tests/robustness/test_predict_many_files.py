"""predict.py and Run.predict over a folder with broken files: the readable images are classified, each
unreadable one (zero bytes, truncated, not an image, a dangling link) is a row with its `error` and a line
of the summary, hidden files (macOS "._x.png") are skipped as training skips them, a file name that is
not UTF-8 prints and writes escaped, and --out is complete. `--strict` stops at the first bad file. The
loop streams: images are read a bounded number ahead of the model."""

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

import coop_toolkit as ct
import predict
from dasslite.data.images import ImageReadError

from .conftest import REPO, subprocess_env

CLASSES = ["red circle", "blue square", "green triangle"]
BAD_NAME = b"caf\xe9-latin1.png"  # a Latin-1 file name, as unzipped archives leave them


def png(colour, size=(48, 40)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """`good`: readable images only; `mixed`: the same images plus every kind of bad and hidden file."""
    base = tmp_path_factory.mktemp("predict_files")
    good, mixed = base / "good", base / "mixed"
    for folder in (good, mixed):
        (folder / "sub").mkdir(parents=True)
        for i, colour in enumerate([(250, 10, 10), (10, 10, 250), (10, 250, 10), (200, 200, 0)]):
            (folder / ("sub" if i % 2 else "") / f"img{i}.png").write_bytes(png(colour))
    (good / "sub" / os.fsdecode(BAD_NAME)).write_bytes(png((90, 0, 90)))
    (mixed / "sub" / os.fsdecode(BAD_NAME)).write_bytes(png((90, 0, 90)))
    (mixed / "empty.png").write_bytes(b"")
    (mixed / "cut.png").write_bytes(png((1, 2, 3), size=(200, 200))[:120])
    (mixed / "page.jpg").write_text("<html>404</html>")
    os.symlink(base / "moved-away.png", mixed / GONE)  # a dangling link: a row, not the end of the run
    (mixed / "._img0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS resource fork: skipped
    (mixed / ".hidden").mkdir()
    (mixed / ".hidden" / "x.png").write_bytes(b"")  # inside a hidden folder: skipped
    (mixed / "notes.txt").write_text("not an image name: skipped")
    names = base / "classes.txt"
    names.write_text("\n".join(CLASSES) + "\n")
    return good, mixed, names


BAD = {"empty.png": "corrupt or not an image", "cut.png": "truncated", "page.jpg": "corrupt or not an image"}
GONE = "gone.png"  # a dangling link: read_image's "Image file not found" error


@pytest.fixture(scope="module")
def run(tiny_clip_path):
    return ct.zero_shot(CLASSES, tiny_clip_path)


def argv(folders, tiny_clip_path, folder, *extra):
    _, _, names = folders
    return ["--trainer", "ZeroshotCLIP", "--classnames", str(names), "--backbone", tiny_clip_path, str(folder), *extra]


def test_a_folder_with_broken_hidden_and_non_utf8_files_gives_every_row_and_a_report(folders, tiny_clip_path, tmp_path):
    good, mixed, _ = folders
    out = tmp_path / "out" / "preds.csv"  # the folder does not exist yet: it is created
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "predict.py"), *argv(folders, tiny_clip_path, mixed, "--out", str(out))],
        cwd=REPO,
        env={**subprocess_env(), "PYTHONIOENCODING": "utf-8"},  # strict on stdout, as a terminal is
        capture_output=True,
        timeout=300,
    )
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "._img0" not in stdout + stderr and ".hidden" not in stdout + stderr
    printed = [line.split("\t")[0] for line in stdout.splitlines()]
    assert len(printed) == 5 and any(p.endswith("caf\\xe9-latin1.png") for p in printed)
    assert "4 of 9 files could not be read and were skipped" in stderr
    for name, reason in BAD.items():
        assert f'"{mixed / name}": {reason}' in stderr
    assert f'Image file not found: "{mixed / GONE}"' in stderr
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and list(rows[0]) == predict.header(3)  # path, label1, probability1, ..., error
    errors = {os.path.basename(r["path"]): r["error"] for r in rows if r["error"]}
    assert set(errors) == {*BAD, GONE} and all(BAD[n] in e for n, e in errors.items() if n != GONE)
    assert errors[GONE] == f'Image file not found: "{mixed / GONE}"'
    assert all(r["label1"] in CLASSES for r in rows if not r["error"])
    assert not [f for f in os.listdir(out.parent) if f != "preds.csv"]  # no temp file left


def test_readable_images_get_the_logits_they_get_without_the_broken_files(folders, run):
    """Batches hold readable images only, so a broken file changes nothing for the others."""
    good, mixed, _ = folders
    clean = run.predict([good], topk=3, batch_size=2)
    predictions = run.predict([mixed], topk=3, batch_size=2)
    broken = ("cut.png", "empty.png", GONE, "page.jpg")
    assert [p.path for p in predictions if p.error] == [str(mixed / n) for n in broken]
    kept = [p for p in predictions if not p.error]
    assert [os.path.relpath(p.path, mixed) for p in kept] == [os.path.relpath(p.path, good) for p in clean]
    assert [p.topk for p in kept] == [p.topk for p in clean]
    assert all(p.label is None and p.topk == [] for p in predictions if p.error)


def test_strict_stops_at_the_first_unreadable_file(folders, run, tiny_clip_path, capsys):
    _, mixed, _ = folders
    with pytest.raises(ImageReadError, match=r"cut\.png.*truncated"):
        run.predict([mixed], strict=True)
    with pytest.raises(SystemExit) as exit_:
        predict.run_cli(predict.main, argv(folders, tiny_clip_path, mixed, "--strict"))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "error: Cannot decode image" in err and "cut.png" in err


def test_json_out_is_complete_and_parses(folders, tiny_clip_path, tmp_path):
    _, mixed, _ = folders
    out = tmp_path / "preds.json"
    summary = predict.main(argv(folders, tiny_clip_path, mixed, "--out", str(out), "--topk", "1"))
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert summary.predicted == 5 and len(summary.failed) == 4 and len(rows) == 9
    assert sum(r["error"] is None for r in rows) == 5 and all(len(r["topk"]) == (r["error"] is None) for r in rows)
    assert any(r["path"].endswith("caf\\xe9-latin1.png") for r in rows)


def test_images_are_read_a_bounded_number_ahead(run, folders):
    """Streaming: the first prediction comes after at most a few batches of images were taken."""
    good, _, _ = folders
    taken = []

    def paths():
        for i in range(10_000):
            taken.append(i)
            yield str(good / "img0.png")

    first = next(run.iter_predict(paths(), batch_size=4, workers=2))
    assert first.label is not None and len(taken) <= 3 * 4
