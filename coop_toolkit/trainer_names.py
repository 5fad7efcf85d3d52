"""The names of the toolkit's trainers, read from the source of coop_toolkit/trainers/ without importing it.

Importing the trainers loads torch and open_clip (seconds); `train.py --help` lists the names at once.
tests/test_quick_start.py checks that this list equals TRAINER_REGISTRY's.
"""

import ast
import pathlib


def trainer_names():
    """Sorted names of the classes decorated with `@TRAINER_REGISTRY.register()` in coop_toolkit/trainers/
    (the `name=` given there, else the class name)."""
    names = []
    for path in sorted(pathlib.Path(__file__).with_name("trainers").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                names += [_registered_name(d, node.name) for d in node.decorator_list if _is_register(d)]
    return sorted(names)


def _is_register(decorator):
    return (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr == "register"
        and getattr(decorator.func.value, "id", None) == "TRAINER_REGISTRY"
    )


def _registered_name(decorator, class_name):
    given = [k.value for k in decorator.keywords if k.arg == "name"]
    return given[0].value if given and isinstance(given[0], ast.Constant) else class_name
