"""Image lists: sorting and filtering done by the model, thumbnails only for the rows on screen,
stale thumbnail requests never decoded, and a per-list loader that decodes newest first."""

import math
import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPalette

from tlgui.gui import thumbnails
from tlgui.gui.image_table import (
    CACHE_LIMIT,
    ImageProxyModel,
    ImageTableView,
    PixmapCache,
    _text_ranks,
    stable_order,
)
from tlgui.gui.thumbnails import ThumbnailLoader

ASC, DESC = Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder
WAIT = 10_000  # ms: generous, the work waited for takes milliseconds


@pytest.fixture
def make_view(qtbot):
    """Image lists that are shut down (their loader joined) before qtbot closes them."""

    def make(headers=("File", "Class", "Confidence"), **kwargs):
        view = ImageTableView(list(headers), **kwargs)
        qtbot.addWidget(view, before_close_func=lambda v: v.shutdown())
        return view

    return make


@pytest.fixture
def gate(monkeypatch):
    """Holds every thumbnail decode until ``gate.open.set()``; ``gate.paths`` lists the paths
    decodes started for, in order. The wait is bounded, so a failing test cannot hang."""

    class Gate:
        open = threading.Event()
        paths: list[str] = []

    real = thumbnails.decode_thumbnail

    def held(path, size):
        Gate.paths.append(path)
        Gate.open.wait(WAIT / 1000)
        return real(path, size)

    monkeypatch.setattr(thumbnails, "decode_thumbnail", held)
    yield Gate
    Gate.open.set()


def tiny_images(folder, names):
    """A 32-pixel PNG per name (hard links to one file: only the names differ)."""
    folder.mkdir(exist_ok=True)
    first = folder / "first.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(first)
    paths = []
    for name in names:
        path = folder / name
        path.hardlink_to(first)
        paths.append(str(path))
    return paths


def header_state(view):
    header = view.table.horizontalHeader()
    return header.sortIndicatorSection(), header.sortIndicatorOrder()


def shown_rows(view) -> int:
    """Rows the viewport can show at once."""
    table = view.table
    return table.viewport().height() // table.verticalHeader().defaultSectionSize() + 1


# -- sorting, filtering, order ---------------------------------------------------------------

def test_numbers_sort_numerically_and_text_without_case_both_ways_with_the_header_showing_it(
        make_view):
    view = make_view(thumbnails=False)
    paths = ["p0", "p1", "p2", "p3", "p4"]
    view.set_rows(paths, [["b.png", "A.png", "c.png", "a.png", "B.png"],
                          ["x", "y", "x", "y", "x"],
                          [10, 9, 100, 2.5, float("nan")]])
    assert view.paths() == paths  # the given order until a sort is asked for

    view.sort_by(2, ASC)
    assert view.paths() == ["p3", "p1", "p0", "p2", "p4"]  # 2.5 < 9 < 10 < 100, NaN last
    assert header_state(view) == (2, ASC)
    view.sort_by(2, DESC)
    assert view.paths() == ["p2", "p0", "p1", "p3", "p4"]
    assert header_state(view) == (2, DESC)  # the mistakes list once showed ▲ here

    view.sort_by(0, ASC)  # "A" and "a" are equal and keep their order, as do "b" and "B"
    assert view.paths() == ["p1", "p3", "p0", "p4", "p2"]
    assert header_state(view) == (0, ASC)
    view.sort_by(0, DESC)
    assert view.paths() == ["p2", "p0", "p4", "p1", "p3"]
    assert header_state(view) == (0, DESC)


def test_a_header_click_sorts_ascending_then_descending(make_view, qtbot):
    view = make_view()
    view.resize(500, 300)
    view.show()
    qtbot.waitExposed(view)
    view.set_rows(["a", "b", "c"], [["a", "b", "c"], ["x", "x", "x"], [0.5, 0.9, 0.1]])
    view.sort_by(0, DESC)
    header = view.table.horizontalHeader()
    section = 3  # Confidence, after the thumbnail column
    click = QPoint(header.sectionViewportPosition(section) + header.sectionSize(section) // 2,
                   header.height() // 2)

    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=click)
    assert view.paths() == ["c", "a", "b"]
    assert header_state(view) == (section, ASC)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=click)
    assert view.paths() == ["b", "a", "c"]
    assert header_state(view) == (section, DESC)


def arrow_widths(view, section) -> list[int]:
    """Dark pixels per row of the header's sort arrow, top to bottom (the arrow sits at the
    right end of a wide section, away from the centred label)."""
    header = view.table.horizontalHeader()
    image = header.grab().toImage()
    right = header.sectionViewportPosition(section) + header.sectionSize(section)
    widths = [sum(image.pixelColor(x, y).lightness() < 128 for x in range(right - 40, right))
              for y in range(image.height())]
    return [w for w in widths if w]


def test_the_sort_arrow_points_up_for_ascending_and_down_for_descending(make_view, qtbot):
    view = make_view(thumbnails=False)
    view.resize(600, 200)
    view.show()
    qtbot.waitExposed(view)
    view.set_rows(["p0", "p1"], [["a", "b"], ["x", "y"], [1, 2]])
    view.sort_by(2, DESC)
    widths = arrow_widths(view, 2)
    assert widths and widths[0] > widths[-1]  # ▼: wide at the top (Fusion on Linux drew ▲)
    view.sort_by(2, ASC)
    widths = arrow_widths(view, 2)
    assert widths and widths[0] < widths[-1]  # ▲


def test_stable_order_keeps_equal_keys_in_their_order_both_ways():
    keys = np.array([2, 1, 2, 1, 3])
    assert stable_order(keys, descending=False).tolist() == [1, 3, 0, 2, 4]
    assert stable_order(keys, descending=True).tolist() == [4, 0, 2, 1, 3]
    floats = np.array([1.0, math.nan, 3.0, 1.0])
    assert stable_order(floats, descending=True).tolist() == [2, 0, 3, 1]


def test_text_ranks_ignore_case_with_few_or_many_distinct_texts():
    few = ["b", "A", "a", "B", "c", "b", "a", "a", "a", None]  # ranked through a dictionary
    assert _text_ranks(few).tolist() == [2, 1, 1, 2, 3, 2, 1, 1, 1, 0]
    many = ["b", "A", "c", "10", 3]  # all distinct: ranked by numpy
    assert _text_ranks(many).tolist() == [3, 2, 4, 0, 1]


def test_the_filter_matches_text_columns_without_case_and_keeps_the_selection(make_view):
    view = make_view(thumbnails=False)
    view.set_rows(["p0", "p1", "p2", "p3"], [["cat_1.png", "dog_1.png", "Cat_2.png", "owl.png"],
                                            ["cat", "dog", "cat", "owl"],
                                            [0.25, 0.5, 0.75, 1.0]])
    view.sort_by(2, DESC)
    view.select_row(1)
    assert view.selected_path() == "p2"
    changes = []
    view.selection_changed.connect(lambda: changes.append(view.selected_path()))

    view.set_filter("  CAT ")
    assert view.paths() == ["p2", "p0"]  # still sorted by confidence, descending
    assert view.row_count() == 2
    assert view.selected_path() == "p2"
    view.set_filter("0.5")  # numbers are not searched
    assert view.paths() == []
    assert view.selected_path() is None and changes[-1] is None
    view.set_filter("")
    assert view.paths() == ["p3", "p2", "p1", "p0"]
    view.set_filter("g_1")  # within one column, never across two
    assert view.paths() == ["p1"]


def test_typing_in_the_filter_field_filters_once_the_typing_pauses(make_view, qtbot):
    view = make_view(thumbnails=False)
    view.set_rows(["p0", "p1", "p2"], [["cat_1.png", "dog_1.png", "Cat_2.png"],
                                      ["cat", "dog", "cat"], [0.25, 0.5, 0.75]])
    view.show()
    qtbot.waitExposed(view)
    assert not view.shown_label.isVisible()  # nothing hidden, nothing to count
    filtered = []
    view.model.modelReset.connect(lambda: filtered.append(view.model.filter_text()))
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=WAIT)
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(view.filter_field.hasFocus, timeout=WAIT)
    qtbot.keyClicks(view.filter_field, "dog")
    assert view.row_count() == 3 and filtered == []  # no pass per letter
    qtbot.waitUntil(lambda: view.row_count() == 1, timeout=WAIT)
    assert filtered == ["dog"] and view.paths() == ["p1"]
    assert view.shown_label.isVisible() and view.shown_label.text() == "1 of 3 shown"
    view.filter_field.clear()  # the clear button, or selecting and deleting
    qtbot.keyClick(view.filter_field, Qt.Key.Key_Return)  # Enter filters at once
    assert view.row_count() == 3 and not view.shown_label.isVisible()


def test_a_filter_set_by_code_shows_in_the_field_and_new_rows_keep_it(make_view):
    view = make_view(thumbnails=False)
    view.set_filter("cat")
    assert view.filter_field.text() == "cat"
    view.set_rows(["p0", "p1"], [["cat.png", "dog.png"], ["cat", "dog"], [0.1, 0.2]])
    assert view.paths() == ["p0"] and view.shown_label.text() == "1 of 2 shown"
    plain = make_view(thumbnails=False, filterable=False)
    assert plain.filter_field is None
    plain.set_filter("x")  # still works without the field
    assert plain.row_count() == 0


def test_numbers_are_shown_through_formats_and_right_aligned(make_view):
    view = make_view(thumbnails=False)
    view.set_rows(["p0", "p1", "p2"], [["a", "b", "c"], [3, 12, None], [0.5, None, 0.125]],
                  formats={2: lambda v: f"{v:.1%}"})
    model = view.model
    text = [[model.data(model.index(r, c)) for c in range(3)] for r in range(3)]
    assert text == [["a", "3", "50.0%"], ["b", "12", ""], ["c", "", "12.5%"]]
    alignment = model.data(model.index(0, 2), Qt.ItemDataRole.TextAlignmentRole)
    assert Qt.AlignmentFlag(alignment) & Qt.AlignmentFlag.AlignRight
    assert model.data(model.index(0, 0), Qt.ItemDataRole.TextAlignmentRole) is None
    assert model.data(model.index(2, 0), Qt.ItemDataRole.ToolTipRole) == "p2"
    view.sort_by(1, DESC)  # the missing number goes last
    assert view.paths() == ["p1", "p0", "p2"]


def test_rows_and_columns_that_do_not_match_are_refused(make_view):
    view = make_view(thumbnails=False)
    with pytest.raises(ValueError, match="2 columns given for 3 headers"):
        view.set_rows(["p0"], [["a"], ["b"]])
    with pytest.raises(ValueError, match="'Class' has 2 values for 1 images"):
        view.set_rows(["p0"], [["a"], ["b", "c"], [1]])
    with pytest.raises(IndexError):
        view.sort_by(3, ASC)


def test_the_proxy_hands_sorting_to_the_model(make_view):
    view = make_view(thumbnails=False)
    assert isinstance(view.table.model(), ImageProxyModel)
    view.set_rows(["p0", "p1"], [["a", "b"], ["x", "y"], [2, 1]])
    view.table.model().sort(2, ASC)
    assert view.paths() == ["p1", "p0"]
    view.table.model().sort(-1, ASC)  # no sort column: the order the rows were given in
    assert view.paths() == ["p0", "p1"]


def test_a_hundred_thousand_rows_load_sort_and_filter(make_view, qtbot):
    n = 100_000
    view = make_view()
    view.resize(500, 300)
    view.show()
    qtbot.waitExposed(view)
    paths = [f"/nowhere/c{i % 7}/{i:06d}.png" for i in range(n)]
    confidence = np.arange(n, dtype=np.float64) / n
    view.set_rows(paths, [[p[-10:] for p in paths], [f"c{i % 7}" for i in range(n)],
                          confidence])
    assert view.row_count() == n
    view.sort_by(2, DESC)
    assert view.path_at(0) == paths[-1] and view.path_at(n - 1) == paths[0]
    view.set_filter("c3")
    assert view.row_count() == len(range(3, n, 7))
    assert view.path_at(0) == paths[max(range(3, n, 7))]
    assert view.table.verticalHeader().sectionResizeMode(0).name == "Fixed"


def test_enter_and_double_click_open_a_row_and_selection_is_announced(make_view, qtbot):
    view = make_view(thumbnails=False)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    view.set_rows(["p0", "p1"], [["a", "b"], ["x", "y"], [1, 2]])
    with qtbot.waitSignal(view.selection_changed, timeout=WAIT):
        view.select_row(1)
    assert view.selected_path() == "p1"
    view.table.setFocus()
    with qtbot.waitSignal(view.activated, timeout=WAIT) as opened:
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert opened.args == ["p1"]
    first = view.table.visualRect(view.proxy.index(0, 1)).center()
    # Qt's test double-click comes without the press a real one starts with.
    qtbot.mousePress(view.table.viewport(), Qt.MouseButton.LeftButton, pos=first)
    with qtbot.waitSignal(view.activated, timeout=WAIT) as opened:
        qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=first)
    assert opened.args == ["p0"]
    with qtbot.waitSignal(view.selection_changed, timeout=WAIT):
        view.clear()  # rows replaced: nothing is selected any more
    assert view.selected_path() is None


# -- thumbnails ------------------------------------------------------------------------------

def test_only_the_rows_on_screen_ask_for_thumbnails(make_view, qtbot, monkeypatch):
    view = make_view()
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    asked: list[str] = []
    real_request = view.loader.request
    monkeypatch.setattr(view.loader, "request", lambda items, size=None: (
        asked.extend(path for _, path in items), real_request(items, size=size)))
    n = 10_000
    paths = [f"/nowhere/{i:05d}.png" for i in range(n)]
    view.set_rows(paths, [[p[-9:] for p in paths], ["c"] * n, list(range(n))])
    qtbot.waitUntil(lambda: len(asked) > 0, timeout=WAIT)
    on_screen = shown_rows(view)
    assert set(asked) <= set(paths[:on_screen])
    assert len(asked) >= on_screen - 1

    asked.clear()
    view.table.scrollToBottom()
    qtbot.waitUntil(lambda: paths[-1] in asked, timeout=WAIT)
    assert set(asked) <= set(paths[-on_screen:])
    # Missing files are shown as such and not asked for again at the next paint.
    qtbot.waitUntil(lambda: view.loader.pending() == 0, timeout=WAIT)
    asked.clear()
    view.table.viewport().repaint()
    assert asked == []


def test_replaced_rows_never_decode_and_their_late_thumbnails_land_nowhere(
        make_view, qtbot, tmp_path, gate):
    old = tiny_images(tmp_path / "old", [f"old{i:03d}.png" for i in range(200)])
    new = tiny_images(tmp_path / "new", [f"new{i:03d}.png" for i in range(200)])
    view = make_view()
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    view.set_rows(old, [old, ["c"] * 200, [0.5] * 200])
    # Both decoding threads hold an old image; the other old rows on screen wait their turn.
    qtbot.waitUntil(lambda: len(gate.paths) == 2, timeout=WAIT)
    started = set(gate.paths)
    assert view.loader.pending() > 2

    view.set_rows(new, [new, ["c"] * 200, [0.5] * 200])
    gate.open.set()
    on_screen = shown_rows(view)
    qtbot.waitUntil(lambda: all(view.cache.get(view._key(p)) is not None
                                for p in new[:on_screen - 1]), timeout=WAIT)
    qtbot.waitUntil(lambda: view.loader.pending() == 0, timeout=WAIT)
    assert set(gate.paths) & set(old) == started  # no old image decoded after the change
    cached = {key[0] for key in view.cache._items}
    assert not cached & set(old)  # and the two decoded then were dropped


def test_rows_scrolled_away_before_their_decode_never_decode(make_view, qtbot, tmp_path, gate):
    paths = tiny_images(tmp_path / "images", [f"{i:03d}.png" for i in range(300)])
    view = make_view()
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    view.set_rows(paths, [paths, ["c"] * 300, list(range(300))])
    qtbot.waitUntil(lambda: len(gate.paths) == 2, timeout=WAIT)
    on_screen = shown_rows(view)
    top = set(paths[:on_screen])

    view.table.scrollToBottom()
    qtbot.waitUntil(lambda: view._key(paths[-1]) in view.loader._waiting, timeout=WAIT)
    gate.open.set()
    qtbot.waitUntil(lambda: view.cache.get(view._key(paths[-1])) is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: view.loader.pending() == 0, timeout=WAIT)
    decoded_top = set(gate.paths) & top
    assert decoded_top == set(gate.paths[:2])  # only the two already decoding at the scroll
    assert set(gate.paths) - top <= set(paths[-on_screen:])


def test_thumbnails_are_sharp_at_200_percent(make_view, qtbot, tmp_path, monkeypatch):
    paths = tiny_images(tmp_path, ["a.png"])
    view = make_view(thumbnail_size=16)
    monkeypatch.setattr(view, "_device_pixel_ratio", lambda: 2.0)
    view.resize(400, 200)
    view.show()
    qtbot.waitExposed(view)
    view.set_rows(paths, [["a.png"], ["c"], [1.0]])
    qtbot.waitUntil(lambda: view.cache.get((paths[0], 32)) is not None, timeout=WAIT)
    pixmap = view.cache.get((paths[0], 32))
    assert (pixmap.width(), pixmap.height()) == (32, 32)  # decoded at 16 × 2 device pixels
    assert pixmap.devicePixelRatio() == 2.0
    assert pixmap.deviceIndependentSize().toSize().width() == 16  # drawn 16 pixels wide


def test_the_placeholder_takes_the_palette_colours(make_view, qtbot, tmp_path, gate):
    paths = tiny_images(tmp_path, ["a.png"])
    view = make_view()
    dark = QPalette(view.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 30))
    dark.setColor(QPalette.ColorRole.Midlight, QColor(70, 20, 90))
    view.setPalette(dark)
    view.resize(400, 200)
    view.show()
    qtbot.waitExposed(view)
    view.set_rows(paths, [["a.png"], ["c"], [1.0]])
    qtbot.waitUntil(lambda: len(gate.paths) == 1, timeout=WAIT)  # still loading
    image = view.table.viewport().grab().toImage()
    cell = view.table.visualRect(view.proxy.index(0, 0))
    inside = cell.center() + QPoint(view.thumbnail_size // 4, view.thumbnail_size // 4)
    assert image.pixelColor(inside) == QColor(70, 20, 90)

    gate.open.set()
    qtbot.waitUntil(lambda: view.cache.get(view._key(paths[0])) is not None, timeout=WAIT)
    view.table.viewport().repaint()
    image = view.table.viewport().grab().toImage()
    assert image.pixelColor(cell.center()) == QColor(200, 40, 40)  # the thumbnail itself


def test_the_pixmap_cache_forgets_the_least_recently_used():
    cache = PixmapCache(limit=3)
    for key in "abc":
        cache.put(key, key)
    assert cache.get("a") == "a"  # now the most recently used
    cache.put("d", "d")
    assert "b" not in cache and len(cache) == 3
    assert [k for k in "acd" if k in cache] == ["a", "c", "d"]
    assert ImageTableView.__init__.__kwdefaults__["cache_limit"] == CACHE_LIMIT == 2000


def test_each_list_has_its_own_loader(make_view, qtbot, tmp_path):
    first, second = make_view(), make_view()
    assert first.loader is not second.loader
    assert first.loader.pool is not second.loader.pool
    paths = tiny_images(tmp_path, ["a.png"])
    for view in (first, second):
        view.resize(400, 200)
        view.show()
        qtbot.waitExposed(view)
    second.set_rows(paths, [["a.png"], ["c"], [1.0]])
    first.clear()  # clearing one list leaves the other's thumbnails coming
    qtbot.waitUntil(lambda: second.cache.get(second._key(paths[0])) is not None, timeout=WAIT)
    assert make_view(thumbnails=False).loader is None


# -- the loader ------------------------------------------------------------------------------

def test_the_loader_decodes_newest_first_and_never_decodes_what_was_withdrawn(
        qtbot, tmp_path, gate):
    paths = tiny_images(tmp_path, [f"{c}.png" for c in "abcdef"])
    a, b, c, d, e, f = paths
    loader = ThumbnailLoader(16, threads=1)
    ready = []
    loader.ready.connect(lambda key, image: ready.append(key))
    try:
        loader.request([("a", a)])
        qtbot.waitUntil(lambda: gate.paths == [a], timeout=WAIT)  # the thread holds "a"
        loader.request([("b", b), ("c", c)])
        loader.request([("d", d), ("e", e)])
        loader.request([("b", b)])  # asked again: to the front, once
        assert loader.keep_only(["b", "c", "d"]) == ["e"]
        loader.request([("a", a)])  # decoding now: not queued again
        gate.open.set()
        qtbot.waitUntil(lambda: loader.pending() == 0, timeout=WAIT)
        qtbot.waitUntil(lambda: len(ready) == 4, timeout=WAIT)
        assert gate.paths == [a, b, d, c]
        assert ready == ["a", "b", "d", "c"]
    finally:
        gate.open.set()
        assert loader.shutdown(WAIT)


def test_clear_drops_late_results_and_a_broken_file_is_reported(qtbot, tmp_path, gate):
    (path,) = tiny_images(tmp_path, ["a.png"])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    loader = ThumbnailLoader(16)
    ready, failed = [], []
    loader.ready.connect(lambda key, image: ready.append(key))
    loader.failed.connect(failed.append)
    try:
        loader.request([("old", path)])
        qtbot.waitUntil(lambda: gate.paths == [path], timeout=WAIT)
        assert loader.decoding()  # what the guard against work left running looks for
        loader.clear()
        gate.open.set()
        qtbot.waitUntil(lambda: loader.pending() == 0, timeout=WAIT)
        loader.request([("broken", str(broken)), ("new", path)])
        qtbot.waitUntil(lambda: ready == ["new"] and failed == ["broken"], timeout=WAIT)
    finally:
        gate.open.set()
        assert loader.shutdown(WAIT)
    assert not loader.decoding()
    loader.request([("after", path)])  # a shut-down loader takes nothing more
    assert loader.pending() == 0
