"""What a model needs to know about the data when no dataset is read: the class names in label order.

`build_trainer(cfg, classnames=[...])` gives a trainer one of these in place of a DataManager, so its
`build_model()` runs unchanged (it reads `self.dm.dataset.classnames`, `self.num_classes`,
`self.lab2cname`) for prediction from a run folder, without the dataset folder.
"""


class ClassList:
    """Stands in for a DataManager (and its dataset): class names and label maps, no splits or loaders."""

    train_x = train_u = val = test = None
    train_loader_x = train_loader_u = val_loader = test_loader = None
    tfm_train = tfm_test = None
    num_source_domains = 0

    def __init__(self, classnames):
        classnames = [str(name) for name in classnames]
        if not classnames:
            raise ValueError("A model needs at least one class name; the class name list is empty")
        repeated = sorted({name for name in classnames if classnames.count(name) > 1})
        if repeated:
            raise ValueError(f"Class names must be distinct; repeated: {', '.join(repeated[:5])}")
        self.classnames = classnames
        self.lab2cname = dict(enumerate(classnames))
        self.num_classes = len(classnames)

    @property
    def dataset(self):
        return self
