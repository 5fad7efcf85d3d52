"""The names of the toolkit's trainers, read from the source of coop_toolkit/trainers/ without importing it.

Importing the trainers loads torch and open_clip (seconds); `train.py --help` lists the names at once.
tests/test_quick_start.py checks that this list equals TRAINER_REGISTRY's.
"""

import ast
import pathlib


def trainer_names():
    """Sorted names of the classes decorated with `@TRAINER_REGISTRY.register()` in coop_toolkit/trainers/."""
    names = []
    for path in sorted(pathlib.Path(__file__).with_name("trainers").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names += [node.name for node in tree.body if isinstance(node, ast.ClassDef) and _registered(node)]
    return sorted(names)


def _registered(node):
    return any(
        isinstance(d, ast.Call)
        and isinstance(d.func, ast.Attribute)
        and d.func.attr == "register"
        and getattr(d.func.value, "id", None) == "TRAINER_REGISTRY"
        for d in node.decorator_list
    )
