"""Name -> class registries.

Contract: ``@REGISTRY.register()`` on a class registers it under its ``__name__`` (the public name
users write in configs, e.g. ``TRAINER.NAME CoCoOp``); ``@REGISTRY.register(name="CLIP_Adapter")`` (or
``REGISTRY.register(cls, name=...)``) under the name given, e.g. the one a method's authors use.
Registering a name twice is an error.
``REGISTRY.get(name)`` on an unknown name raises :class:`UnknownNameError`, which lists every
registered name and suggests the closest one.
"""

import difflib

from .errors import UserError


class UnknownNameError(UserError, KeyError):
    """An unknown name was looked up; the message lists the valid names (UserError prints it unquoted)."""


def unknown_name_message(kind, name, choices, hint=""):
    """Message for an unknown `name` of `kind`, listing `choices` and the closest match."""
    choices = sorted(choices)
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.5)
    msg = f'Unknown {kind} "{name}".'
    if close:
        msg += f' Did you mean "{close[0]}"?'
    msg += f" Valid {kind} names: {', '.join(choices) or '(none registered)'}."
    if hint:
        msg += " " + hint
    return msg


class Registry:
    def __init__(self, name):
        self._name = name
        self._obj_map = {}

    def _do_register(self, name, obj):
        if name in self._obj_map:
            raise KeyError(f'An object named "{name}" was already registered in the {self._name} registry')
        self._obj_map[name] = obj

    def register(self, obj=None, name=None):
        if obj is None:  # used as @REGISTRY.register() or @REGISTRY.register(name="...")

            def deco(cls):
                self._do_register(name or cls.__name__, cls)
                return cls

            return deco
        self._do_register(name or obj.__name__, obj)
        return obj

    def name_of(self, obj):
        """The name `obj` is registered under (None when it is not registered)."""
        return next((name for name, registered in self._obj_map.items() if registered is obj), None)

    def get(self, name):
        if name not in self._obj_map:
            raise UnknownNameError(unknown_name_message(self._name.lower(), name, self._obj_map))
        return self._obj_map[name]

    def registered_names(self):
        return list(self._obj_map)

    def __contains__(self, name):
        return name in self._obj_map
