"""The background work of the Look inside step: one loader for the model, one job per kind of
view, so no view's work cancels another's.

The model of the chosen source is loaded once by a :class:`ModelLoader`. Each
:class:`InspectJob` (the input's predictions, the feature maps, Grad-CAM, the ideal image, the
adversarial example) has its own :class:`~tlgui.gui.workers.TaskController`. A request made
while the model loads waits and runs when it has loaded; quick successive requests of one job
are coalesced — the newest wins, at most one pass runs and at most one waits.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from ..workers import TaskController

#: The source entry of the backbone chosen on the Model step.
PRETRAINED = "pretrained"

#: ``(PRETRAINED, backbone, "imagenet" | "none")`` or ``("checkpoint", path of best.pt)``.
SourceKey = tuple

#: ``compute(model, emit, control)``: the work of one pass, run in the job's thread on the
#: job's own copy of the model.
Compute = Callable[[object, Callable[[object], None], object], object]


def load_model(key: SourceKey):
    """The :class:`~tlgui.core.inspection.InspectModel` of ``key`` and its layers."""
    from ...core import inspection
    from ...core.feature_maps import describe_layers

    if key[0] == PRETRAINED:
        model = inspection.pretrained(key[1], key[2])
    else:
        model = inspection.fine_tuned(key[1])
    return model, describe_layers(model)


def private_copy(model):
    """A copy of the InspectModel ``model`` with modules of its own and the same weights.

    Feature maps and Grad-CAM register hooks on modules: two jobs running at once on one set
    of modules would each catch the other's activations. Copied modules sharing the weight
    tensors (in the deep copy's memo) take milliseconds and no memory for weights.
    """
    import copy
    import itertools

    module = model.model
    shared = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    return copy.deepcopy(model, shared)


class ModelLoader(QObject):
    """Loads the model of the chosen source in the background, once per source."""

    loaded = Signal()  #: :attr:`model` and :attr:`layers` are those of :attr:`key` now
    failed = Signal(str, str)  #: one-line message, details: the model could not be loaded

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = TaskController("inspect-model", self)
        self.key: SourceKey | None = None
        self.model = None  #: the loaded InspectModel; used read-only, copied by every job
        self.layers: list = []  #: the model's LayerInfo list
        self._loading: SourceKey | None = None

    def select(self, key: SourceKey) -> None:
        """Make ``key`` the source; its model loads at the next :meth:`ensure`."""
        if key != self.key:
            self.key, self.model, self.layers = key, None, []
            self.controller.cancel()
            self._loading = None

    def ensure(self) -> None:
        """Start loading the source's model unless it is loaded or loading."""
        if self.model is not None or self.key is None or self._loading == self.key:
            return
        key = self._loading = self.key
        self.controller.start(lambda emit, control: load_model(key),
                              on_succeeded=self._on_loaded, on_failed=self._on_failed,
                              on_cancelled=self._on_cancelled)

    def cancel(self) -> None:
        """Give up the load under way (a load cannot stop midway: its result is dropped);
        the next :meth:`ensure` starts another."""
        self.controller.cancel()
        self._loading = None

    def is_loading(self) -> bool:
        return self._loading is not None

    def _on_loaded(self, result) -> None:
        model, layers = result
        key, self._loading = self._loading, None
        if key == self.key:
            self.model, self.layers = model, layers
            self.loaded.emit()

    def _on_failed(self, message: str, details: str) -> None:
        self._loading = None
        self.failed.emit(message, details)

    def _on_cancelled(self) -> None:
        self._loading = None


class InspectJob(QObject):
    """One kind of work on the loaded model, with a thread of its own.

    :meth:`request` runs a pass as soon as the model is loaded and no pass of this job runs;
    a newer request replaces a waiting one and cancels the running one, whose result is then
    dropped. Results reach the handler given with the request, in the GUI thread, unless
    :meth:`cancel` was called since the request (a pass that ended just before the cancel
    was seen would otherwise still show an image or model cleared since).
    """

    failed = Signal(str, str)  #: one-line message, details

    def __init__(self, name: str, loader: ModelLoader, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = TaskController(name, self)
        self.loader = loader
        self._waiting: tuple | None = None
        self._cancels = 0  # requests made before the latest cancel are not answered
        loader.loaded.connect(self._start_waiting)
        loader.failed.connect(self.drop_waiting)
        self.controller.finished.connect(self._start_waiting)

    def request(self, compute: Compute, on_succeeded: Callable[[object], None],
                on_progress: Callable[[object], None] | None = None) -> None:
        """Run ``compute(model, emit, control)`` when it can; the newest request wins."""
        self._waiting = (compute, self._unless_cancelled(on_succeeded),
                         self._unless_cancelled(on_progress))
        if self.controller.is_running():
            self.controller.cancel()  # its result would be stale; the waiting one follows
        else:
            self._start_waiting()

    def show_progress_in(self, busy, what: str) -> None:
        """Show this job's passes in the :class:`~tlgui.gui.busy.BusyIndicator` ``busy``;
        its Cancel also forgets the request waiting behind the running pass, which would
        otherwise start as soon as the cancelled one ends."""
        busy.attach(self.controller, what)
        busy.cancel_requested.connect(self.cancel)

    def drop_waiting(self, *_) -> None:
        """Forget the request that has not started (the model it waited for failed)."""
        self._waiting = None

    def cancel(self) -> None:
        """Forget the waiting request and cancel the running one; neither is answered."""
        self._waiting = None
        self._cancels += 1
        self.controller.cancel()

    def _unless_cancelled(self, handler):
        if handler is None:
            return None
        cancels = self._cancels

        def answer(value) -> None:
            if cancels == self._cancels:
                handler(value)

        return answer

    def is_busy(self) -> bool:
        """True while a pass runs or waits."""
        return self._waiting is not None or self.controller.is_running()

    def _start_waiting(self) -> None:
        if self._waiting is None or self.controller.is_running():
            return
        model = self.loader.model
        if model is None:
            self.loader.ensure()  # the request runs when the model has loaded
            return
        compute, on_succeeded, on_progress = self._waiting
        self._waiting = None

        def task(emit, control):
            return compute(private_copy(model), emit, control)

        self.controller.start(task, on_succeeded=on_succeeded, on_progress=on_progress,
                              on_failed=self.failed.emit)
