"""Mutation testing of the core's numeric code: how many small planted bugs the tests catch.

Run from the repository root (it takes a while; not part of the test suite or CI)::

    .venv/bin/pip install -e ".[test,dev]"     # mutmut 3.8 or newer
    nice -n 10 .venv/bin/python tests/mutation/run.py                 # every target
    nice -n 10 .venv/bin/python tests/mutation/run.py evaluation split  # some of them

For each target below, mutmut plants one small change at a time in the listed code (an operator
flipped, a constant shifted, an argument dropped…) and runs the tests that execute the mutated
function; a mutant is *killed* when a test fails (or hangs past mutmut's time limit). The kill
rate per target and overall is printed at the end, with the surviving mutants: each is either a
gap in the tests or a change that makes no difference (an equivalent mutant).

The work happens in a scratch copy of ``tlgui/`` and ``tests/`` (``--keep`` leaves it, so that
``mutmut show NAME`` there prints a survivor's diff); the working tree is never changed.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Target:
    """Code to mutate and the fast tests that cover it."""

    module: str  #: dotted module name
    functions: tuple[str, ...]  #: mutmut name patterns inside the module ("*": all of it)
    tests: tuple[str, ...]  #: pytest paths or node ids, relative to the repository root


def _in(path: str, *names: str) -> tuple[str, ...]:
    """Pytest node ids of the test functions ``names`` in the file ``path``."""
    return tuple(f"{path}::{name}" for name in names)


#: What is mutated, and by which tests. Function patterns use mutmut's mangled names:
#: ``x_NAME`` for a module function, ``xǁCLASSǁNAME`` for a method.
TARGETS = {
    "split": Target(
        "tlgui.core.data",
        ("x_split", "x__hash_fraction", "x_validation_count", "x_count_labels",
         "xǁScanReportǁrenamed", "xǁScanReportǁwithout_classes"),
        ("tests/core/test_split.py", "tests/core/test_class_edits.py"),
    ),
    "preprocess": Target(
        "tlgui.core.preprocess", ("*",),
        ("tests/core/test_preprocessing.py",
         "tests/core/test_inspection.py::test_inspection_uses_the_weights_own_interpolation",
         *_in("tests/core/test_security.py",
              "test_preprocessing_from_a_file_is_validated_field_by_field",
              "test_preprocessing_with_a_missing_field_or_not_a_dict_is_refused"),
         *_in("tests/core/test_evaluation_numbers.py",
              "test_predict_paths_keeps_the_order_across_batches_and_reports_unreadable"),
         *_in("tests/core/test_damaged_images.py",
              "test_an_image_that_fails_during_training_is_left_out_and_named")),
    ),
    # the fast tests only: the command tests of test_evaluation.py train a model first
    "metrics": Target(
        "tlgui.core.metrics", ("*",),
        ("tests/core/test_evaluation_numbers.py",
         *_in("tests/core/test_evaluation.py", "test_confusion_matrix_and_metrics_by_hand",
              "test_undefined_metrics_are_none_not_zero", "test_cells_and_mistakes")),
    ),
    "evaluation": Target(
        "tlgui.core.evaluation", ("*",),
        ("tests/core/test_evaluation_numbers.py",
         *_in("tests/core/test_evaluation.py", "test_confusion_matrix_and_metrics_by_hand",
              "test_undefined_metrics_are_none_not_zero", "test_cells_and_mistakes")),
    ),
    "gradcam": Target(
        "tlgui.core.gradcam", ("*",),
        _in("tests/core/test_inspection.py", "test_gradcam_has_the_image_size",
            "test_gradcam_explains_the_class_asked_for_not_the_top_one",
            "test_gradcam_says_when_nothing_raised_the_score",
            "test_gradcam_overlay_blends_the_viridis_colours_over_the_image",
            "test_gradcam_sentence_names_the_class_and_its_probability",
            "test_gradcam_of_a_half_image_is_bilinear_and_peaks_at_one",
            "test_gradcam_works_through_frozen_layers"),
    ),
    "adversarial": Target(
        "tlgui.core.adversarial", ("*",),
        _in("tests/core/test_inspection.py", "test_adversarial_reaches_the_target_within_the_bound",
            "test_the_adversarial_bound_holds_on_the_saved_pixels",
            "test_an_adversarial_step_is_worked_out_by_hand",
            "test_an_adversarial_bound_of_two_levels_is_reached_and_never_passed",
            "test_an_adversarial_bound_below_one_level_changes_nothing",
            "test_a_cancelled_adversarial_search_stops"),
    ),
    # the trainer's tests that are about the best epoch, the test accuracy and early stopping,
    # not all of them; the first needs no training, each of the others trains a tiny model.
    # test_early_stopping_ends_a_run is left out: it stops only when a validation loss at a
    # learning rate of 1e-6 fails to fall, which differs between processes
    "training": Target(
        "tlgui.core.training",
        ("xǁTrainerǁ_track_best", "xǁTrainerǁ_evaluate_test", "xǁTrainerǁ_save",
         "xǁTrainerǁ_flush_best"),
        _in("tests/core/test_training.py",
            "test_the_best_epoch_and_early_stopping_follow_accuracy_then_loss",
            "test_test_folder_is_evaluated_with_the_best_weights",
            "test_best_checkpoint_holds_the_best_epoch",
            "test_best_checkpoint_and_test_accuracy_come_from_the_best_epoch_not_the_last",
            "test_a_run_stopped_in_its_first_epoch_points_at_no_checkpoint",
            "test_stop_takes_effect_within_one_batch_and_keeps_the_best_checkpoint"),
    ),
}

#: mutmut's verdicts that mean the tests noticed the change.
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}
#: Verdicts for mutants that were not tried at all (left out of the rate).
NOT_TRIED = {"not checked", "skipped"}


def mutmut_config(targets: list[Target]) -> str:
    """A ``setup.cfg`` section for mutmut: mutate only the targets' files, run their tests."""
    files = sorted({t.module.replace(".", "/") + ".py" for t in targets})
    tests = list(dict.fromkeys(t for target in targets for t in target.tests if exists(t)))
    lines = ["[mutmut]", "source_paths = tlgui", "only_mutate ="]
    lines += [f"    {f}" for f in files]
    lines += ["pytest_add_cli_args_test_selection ="] + [f"    {t}" for t in tests]
    # quiet, and no per-test timeout plugin: mutmut limits each mutant's CPU time itself
    lines += ["pytest_add_cli_args =", "    -q", "    -p", "    no:timeout",
              "    -p", "    no:cacheprovider"]
    return "\n".join(lines) + "\n"


def exists(test: str) -> bool:
    """Whether a test file, or a test function in one, is there (the suite changes)."""
    path, _, name = test.partition("::")
    if not (ROOT / path).is_file():
        print(f"note: {path} not found, left out", file=sys.stderr)
        return False
    if name and f"def {name}(" not in (ROOT / path).read_text(encoding="utf-8"):
        print(f"note: {test} not found, left out", file=sys.stderr)
        return False
    return True


def narrowed(target: Target, only: list[str]) -> Target:
    """``target`` limited to the functions named in ``only`` (plain names, without mutmut's
    prefixes); a whole-module target becomes those functions, whether module-level or
    methods."""
    if target.functions == ("*",):
        functions = tuple(f for name in only for f in (f"x_{name}", f"xǁ*ǁ{name}"))
    else:
        functions = tuple(f for f in target.functions
                          if f.rpartition("ǁ")[2].removeprefix("x_") in only)
    return Target(target.module, functions, target.tests)


def patterns(target: Target) -> list[str]:
    return [f"{target.module}.{f}__mutmut_*" if f != "*" else f"{target.module}.*"
            for f in target.functions]


def scratch_copy(where: Path, targets: list[Target]) -> None:
    """The code and tests in ``where``, with mutmut's configuration beside them."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(ROOT / "tlgui", where / "tlgui", ignore=ignore)
    shutil.copytree(ROOT / "tests", where / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", where / "pyproject.toml")
    (where / "setup.cfg").write_text(mutmut_config(targets), encoding="utf-8")


def verdicts(where: Path, env: dict) -> dict[str, str]:
    """{mutant name: verdict} from mutmut's own record."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                         cwd=where, env=env, capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            found[name] = status
    return found


def report(targets: dict[str, Target], found: dict[str, str]) -> tuple[int, int]:
    """Print the kill rate per target and overall; return (detected, tried)."""
    print(f"\n{'target':<12} {'mutants':>7} {'killed':>7} {'survived':>8} {'no test':>7} "
          f"{'rate':>6}")
    total_detected = total_tried = 0
    survivors = []
    for name, target in targets.items():
        mine = {m: s for m, s in found.items()
                if any(fnmatch.fnmatchcase(m, p) for p in patterns(target))
                and s not in NOT_TRIED}
        detected = sum(s in DETECTED for s in mine.values())
        untested = sum(s == "no tests" for s in mine.values())
        survived = len(mine) - detected - untested
        rate = f"{detected / len(mine):.0%}" if mine else "–"
        print(f"{name:<12} {len(mine):>7} {detected:>7} {survived:>8} {untested:>7} {rate:>6}")
        if not mine:
            print(f"  (no mutant of {target.module} matches {', '.join(target.functions)})")
        total_detected += detected
        total_tried += len(mine)
        survivors += sorted(f"{m}  ({s})" for m, s in mine.items() if s not in DETECTED)
    rate = f"{total_detected / total_tried:.0%}" if total_tried else "–"
    print(f"{'overall':<12} {total_tried:>7} {total_detected:>7} {'':>8} {'':>7} {rate:>6}")
    if survivors:
        print("\nnot caught:")
        for line in survivors:
            print(f"  {line}")
    return total_detected, total_tried


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help=f"what to mutate (default: all): {', '.join(TARGETS)}")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="mutants tested at once (default: half the CPU cores)")
    parser.add_argument("--only", nargs="+", metavar="FUNCTION",
                        help="mutate only these functions or methods of the chosen targets "
                             "(e.g. _track_best), to fit a slow target into less time")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch folder (to look at survivors with mutmut show)")
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"no target '{unknown[0]}' (targets: {', '.join(TARGETS)})")
    chosen = {name: TARGETS[name] for name in (args.targets or TARGETS)}
    if args.only:
        chosen = {name: narrowed(target, args.only) for name, target in chosen.items()}
        missing = [name for name, target in chosen.items() if not target.functions]
        if missing:
            parser.error(f"target '{missing[0]}' lists none of {', '.join(args.only)}")
    try:
        import mutmut  # noqa: F401
    except ImportError:
        print("mutmut is missing: .venv/bin/pip install -e \".[dev]\"", file=sys.stderr)
        return 2

    where = Path(tempfile.mkdtemp(prefix="tlgui-mutation-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    try:
        scratch_copy(where, list(chosen.values()))
        names = [p for target in chosen.values() for p in patterns(target)]
        print(f"mutating {', '.join(chosen)} in {where}", flush=True)
        run = subprocess.run([sys.executable, "-m", "mutmut", "run",
                              "--max-children", str(args.jobs), *names],
                             cwd=where, env=env)
        if run.returncode:
            print(f"mutmut failed (exit status {run.returncode}); its log is in "
                  f"{where}/mutants", file=sys.stderr)
            args.keep = True
            return 1
        detected, tried = report(chosen, verdicts(where, env))
        print(f"\n{detected} of {tried} mutants caught in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        if args.keep:
            print(f"scratch folder kept: {where} (mutmut show NAME there prints a diff)")
        else:
            shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
