"""One labelled image: the record that dataset readers return and loaders consume."""


class Datum:
    """An image path with its label, domain and class name (read-only).

    Unlike Dassl's Datum this does not stat the file: on ImageNet that costs minutes, and missing
    images are reported all at once, with their paths, by the split reader instead.
    """

    __slots__ = ("_impath", "_label", "_domain", "_classname")

    def __init__(self, impath="", label=0, domain=0, classname=""):
        if not isinstance(impath, str):
            raise TypeError(f"Datum.impath must be a str, got {type(impath).__name__}")
        self._impath = impath
        self._label = int(label)
        self._domain = int(domain)
        self._classname = classname

    impath = property(lambda self: self._impath)
    label = property(lambda self: self._label)
    domain = property(lambda self: self._domain)
    classname = property(lambda self: self._classname)

    def __repr__(self):
        return f"Datum(impath={self._impath!r}, label={self._label}, classname={self._classname!r})"

    def __eq__(self, other):
        return isinstance(other, Datum) and (self._impath, self._label, self._domain, self._classname) == (
            other._impath,
            other._label,
            other._domain,
            other._classname,
        )

    def __hash__(self):
        return hash((self._impath, self._label, self._domain, self._classname))
