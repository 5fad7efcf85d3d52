"""Methods and datasets from outside the package: entry points, `--plugin MODULE_OR_FILE`, and what run.json records.

A plugin is Python code that registers trainers (`@TRAINER_REGISTRY.register()`) or datasets
(`@DATASET_REGISTRY.register()`) when it is imported. It is found in two ways:

- an installed distribution declares an entry point in the group `coop_toolkit.trainers` or
  `coop_toolkit.datasets` (pyproject.toml: `[project.entry-points."coop_toolkit.trainers"]
  my_method = "my_package.my_method"`); every such entry point is loaded with the toolkit's own
  trainers / datasets. Its value is a module (importing it registers its classes) or a class, which is
  registered under the entry point's name unless it registered itself;
- `--plugin MODULE_OR_FILE` on train.py and predict.py (`plugins=` in coop_toolkit.api): an importable
  module name or the path of a .py file, imported before the config is merged.

`run_plugins(cfg)` gives what run.json records: for the run's trainer and dataset, when a plugin
provides them, how it was found. Loading a run (`require_plugins`) never imports anything on its own:
a trainer from an installed distribution is there already; one from a module or a file must be
passed again (`--plugin`), otherwise loading stops with one line naming it.
"""

import importlib
import importlib.util
import logging
import os
import sys
from importlib.metadata import entry_points

from dasslite.errors import UserError

logger = logging.getLogger(__name__)

GROUPS = {"trainer": "coop_toolkit.trainers", "dataset": "coop_toolkit.datasets"}
BUILT_IN = ("coop_toolkit.", "dasslite.")  # modules whose classes need no plugin

# (kind, registered name) -> {"entry_point" | "module" | "file": ..., ["distribution": ...]}
_SOURCES = {}
_LOADED = set()  # entry points and --plugin values already imported


class PluginError(UserError, ValueError):
    """A plugin could not be imported, or a run needs one that was not given."""


def _registry(kind):
    if kind == "trainer":
        from dasslite.engine.build import TRAINER_REGISTRY

        return TRAINER_REGISTRY
    from dasslite.data.build import DATASET_REGISTRY

    return DATASET_REGISTRY


def _recording(source, load):
    """Run `load()` and note `source` for every trainer and dataset it registered."""
    before = {kind: set(_registry(kind).registered_names()) for kind in GROUPS}
    result = load()
    for kind in GROUPS:
        for name in set(_registry(kind).registered_names()) - before[kind]:
            _SOURCES[(kind, name)] = source
    return result


def load_entry_points(kind):
    """Import every installed entry point of the `kind` ("trainer" or "dataset") group, once each.

    A plugin that fails to import is skipped with a warning naming it, so one broken package does not
    stop the toolkit.
    """
    for ep in entry_points(group=GROUPS[kind]):
        key = (GROUPS[kind], ep.name, ep.value)
        if key in _LOADED:
            continue
        _LOADED.add(key)
        dist = getattr(ep, "dist", None)
        source = {"entry_point": f"{GROUPS[kind]}:{ep.name}"}
        if dist is not None:
            source["distribution"] = dist.metadata["Name"]
        try:
            obj = _recording(source, ep.load)
        except Exception as exc:  # a third-party package: any error in it is its own
            logger.warning(f'plugin entry point "{ep.name} = {ep.value}" ({GROUPS[kind]}) failed to load: {exc!r}')
            continue
        registry = _registry(kind)
        if isinstance(obj, type) and registry.name_of(obj) is None:
            _recording(source, lambda r=registry, o=obj, n=ep.name: r.register(o, name=n))


def load_plugins(plugins=()):
    """The installed entry points of both groups, then each of `plugins` (module names or .py paths)."""
    for kind in GROUPS:
        load_entry_points(kind)
    for plugin in plugins or ():
        load_plugin(plugin)


def load_plugin(plugin):
    """Import `plugin`: the path of a .py file, or a module name (each once, however it is spelt)."""
    path = os.path.abspath(os.path.expanduser(plugin))
    is_file = plugin.endswith(".py") or os.path.isfile(path)
    key = path if is_file else plugin
    if key in _LOADED:
        return
    if is_file:
        if not os.path.isfile(path):
            raise PluginError(f'--plugin "{plugin}": no such file; give a .py file or an importable module name')
        _recording({"file": path}, lambda: _import_file(path))
    else:
        try:
            _recording({"module": plugin}, lambda: importlib.import_module(plugin))
        except ModuleNotFoundError as exc:
            if exc.name is None or not (plugin == exc.name or plugin.startswith(exc.name + ".")):
                raise  # the plugin itself imports something missing: its traceback says what
            raise PluginError(
                f'--plugin "{plugin}": no module named "{exc.name}" on the Python path; give a .py file, '
                f"or install the package (pip install -e) or add its folder to PYTHONPATH"
            ) from None
    _LOADED.add(key)


def _import_file(path):
    name = "coop_toolkit_plugin_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def source_of(kind, name):
    """How the plugin registering `name` was found (None for the toolkit's own classes)."""
    if (kind, name) in _SOURCES:
        return _SOURCES[(kind, name)]
    registry = _registry(kind)
    if name not in registry:
        return None
    module = registry.get(name).__module__
    if module.startswith(BUILT_IN) or module == "__main__":
        return None
    return {"module": module}  # imported by the caller's own code (Python API)


def run_plugins(cfg):
    """run.json's "plugins": {"trainer" / "dataset": source} for the run's classes that come from plugins."""
    found = {"trainer": source_of("trainer", cfg.TRAINER.NAME), "dataset": source_of("dataset", cfg.DATASET.NAME)}
    return {kind: source for kind, source in found.items() if source}


def plugin_argument(source):
    """What the user does to get the plugin of `source` again."""
    if "entry_point" in source:
        dist = source.get("distribution", "the package that declares it")
        return f"install {dist} (entry point {source['entry_point']}), or pass its module with --plugin"
    return f"pass --plugin {source.get('file') or source.get('module')}"


def require_trainer(record, run_dir):
    """Stop with one line naming the plugin when the run's trainer is not registered here.

    Nothing named in run.json is imported: a file or module plugin must be passed with --plugin.
    """
    name = record.get("trainer")
    if name is None or name in _registry("trainer"):
        return
    source = (record.get("plugins") or {}).get("trainer")
    if not source:
        return  # not a plugin's: the registry's own error lists the names
    raise PluginError(
        f'the run "{run_dir}" was trained with trainer "{name}" from a plugin, which is not loaded here: '
        f"{plugin_argument(source)} (plugins=[...] in the Python API)"
    )
