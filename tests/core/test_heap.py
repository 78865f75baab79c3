"""Long-lived imports leave the garbage collector's full passes short."""

import subprocess
import sys
import textwrap

import pytest


def run_fresh(code: str) -> str:
    """Run ``code`` in a new interpreter (this one has its modules imported already)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_first_import_is_frozen_and_the_collector_is_left_as_it_was():
    out = run_fresh("""
        import gc
        from tlgui.core.heap import import_long_lived
        before = gc.get_freeze_count()
        import_long_lived("json", "xml.dom.minidom")
        frozen = gc.get_freeze_count()
        import_long_lived("json")  # loaded already: nothing more is frozen
        print(before, frozen > before, gc.get_freeze_count() == frozen, gc.isenabled())
    """)
    assert out == "0 True True True"


def test_a_disabled_collector_stays_disabled_and_a_failed_import_still_restores_it():
    out = run_fresh("""
        import gc
        from tlgui.core.heap import import_long_lived
        gc.disable()
        import_long_lived("json")
        disabled_kept = not gc.isenabled()
        gc.enable()
        try:
            import_long_lived("no_such_module_here")
        except ImportError:
            pass
        print(disabled_kept, gc.isenabled())
    """)
    assert out == "True True"


def test_the_window_freezes_pytorch_when_it_loads_it():
    out = run_fresh("""
        import gc, sys
        from tlgui.gui.main_window import load_backend
        assert "torch" not in sys.modules
        load_backend(None, None)
        print(gc.get_freeze_count() > 100_000, gc.isenabled())
    """)
    assert out == "True True"


def test_a_big_scan_is_frozen_and_a_small_one_is_not(tmp_path):
    out = run_fresh(f"""
        import gc
        from tlgui.core import heap
        from tlgui.core.data import scan
        from tlgui.core.sample import ensure_sample_data

        root = ensure_sample_data({str(tmp_path / "shapes")!r}, images_per_class=3)
        scan([str(root)], threads=1)
        small = gc.get_freeze_count()
        heap.SETTLE_MIN_OBJECTS = 12  # as many as the twelve images
        report = scan([str(root)], threads=1)
        print(small, gc.get_freeze_count() > len(report.items), gc.isenabled())
    """)
    assert out == "0 True True"


def test_pytorch_s_library_is_preloaded_and_then_imports_as_usual():
    out = run_fresh("""
        import sys
        from tlgui.core.heap import preload_extension
        loaded = preload_extension("torch")
        assert "torch" not in sys.modules  # located, not imported
        import torch
        print(loaded, float(torch.ones(2).sum()), preload_extension("json"),
              preload_extension("no_such_package_here"))
    """)
    assert out == ("True 2.0 False False" if sys.platform.startswith("linux")
                   else "False 2.0 False False")


def test_release_gradually_empties_containers_and_keeps_what_is_shared():
    from tlgui.core.heap import RELEASE_SLICE, release_gradually

    shared = object()
    big = [object() for _ in range(3 * RELEASE_SLICE + 5)] + [shared]
    table = {i: (i, shared) for i in range(100)}
    members = {(i, "x") for i in range(100)}
    kept = [shared]
    release_gradually(big, table, members)
    assert big == [] and table == {} and members == set() and kept[0] is shared
    with pytest.raises(TypeError, match="tuple"):
        release_gradually((1, 2))
