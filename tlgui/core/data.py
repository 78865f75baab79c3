"""Image folders to a labelled data set: scanning, the scan report and the train/validation split.

Folder conventions follow torchvision's ``ImageFolder``: one root with a sub-folder per class.
Several folders given together are one class each, named after the folder. Images in nested
sub-folders belong to their top class folder. Nothing here writes to the user's folders.
"""

from __future__ import annotations

import functools
import hashlib
import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import attrgetter

from .control import CancelFlag, Cancelled
from .heap import building_long_lived, release_gradually, settle
from .images import MAX_PIXELS, MIN_SIDE, decode_problem, probe_image
from .priority import lower_this_process

#: File and folder names that operating systems leave behind; skipped without a word.
JUNK_NAMES = frozenset(
    {"thumbs.db", "desktop.ini", "ehthumbs.db", "__macosx", "$recycle.bin",
     "system volume information", "@eadir", ".ds_store"}
)

#: A class this many times larger than the smallest one triggers the imbalance warning.
IMBALANCE_RATIO = 3.0

#: Why a symbolic link to a folder that holds it (or holds the data) is not followed.
LINK_TO_PARENT = "link back to a parent folder"

#: Why a class folder without a single usable image is not a class.
EMPTY_CLASS = "no usable image — left out"

ProgressFn = Callable[[int, int], None]


class DatasetError(ValueError):
    """The folders cannot make a data set; the message says why in one line."""


@dataclass(frozen=True, slots=True)  # slots: one object per file for the collector, not two
class ImageItem:
    """One usable image: its path, class index and the class-relative key used for splitting."""

    path: str
    label: int
    key: str


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file (or a class folder) left out of the data set, and why."""

    path: str
    reason: str


@dataclass
class ScanReport:
    """The outcome of scanning: classes, usable images, and every file left out with the reason."""

    classes: list[str]
    class_folders: list[str]
    items: list[ImageItem]
    skipped: list[SkippedFile] = field(default_factory=list)
    test_items: list[ImageItem] | None = None
    test_folder: str | None = None
    #: True once every image was decoded in full (:func:`verify_images`), not only probed.
    verified: bool = False

    def counts(self) -> list[int]:
        """Usable images per class, in class order."""
        return count_labels(self.items, len(self.classes))

    def test_counts(self) -> list[int] | None:
        if self.test_items is None:
            return None
        return count_labels(self.test_items, len(self.classes))

    def problems(self) -> list[str]:
        """Reasons this report cannot be trained on (empty when it can)."""
        return class_problems(self.classes, self.class_folders, self.counts())

    def require_trainable(self) -> None:
        """Raise :class:`DatasetError` naming every problem (in one line), if there is one."""
        problems = self.problems()
        if problems:
            raise DatasetError("; ".join(problems))

    def imbalance_warning(self) -> str | None:
        """A sentence about class imbalance, or None when the classes are roughly even."""
        return imbalance_warning(self.classes, self.counts())

    def without_classes(self, removed: Iterable[str]) -> ScanReport:
        """A copy without the named classes (labels renumbered); the folders are untouched."""
        removed = set(removed)
        keep = [i for i, name in enumerate(self.classes) if name not in removed]
        remap = {old: new for new, old in enumerate(keep)}

        def relabel(items):
            if items is None:
                return None
            # Items whose label number stays (the classes before the first one left out) are
            # shared, not copied: at 100,000 images making new ones is most of the cost.
            return [it if remap[it.label] == it.label else ImageItem(it.path, remap[it.label],
                                                                     it.key)
                    for it in items if it.label in remap]

        return ScanReport(
            classes=[self.classes[i] for i in keep],
            class_folders=[self.class_folders[i] for i in keep],
            items=relabel(self.items),
            skipped=list(self.skipped),
            test_items=relabel(self.test_items),
            test_folder=self.test_folder,
            verified=self.verified,
        )

    def renamed(self, names: Sequence[str]) -> ScanReport:
        """A copy whose classes are called ``names`` (in class order); the folders keep theirs,
        and so does the split, which hashes the folder names."""
        names = [n.strip() for n in names]
        if len(names) != len(self.classes):
            raise DatasetError(f"expected {len(self.classes)} class names, got {len(names)}")
        if any(not n for n in names):
            raise DatasetError("a class name cannot be empty")
        duplicates = sorted(n for n, times in Counter(names).items() if times > 1)
        if duplicates:
            raise DatasetError(f"two classes cannot share the name '{duplicates[0]}'")
        return ScanReport(list(names), list(self.class_folders), self.items, list(self.skipped),
                          self.test_items, self.test_folder, self.verified)


@dataclass(frozen=True)
class Split:
    train: list[ImageItem]
    val: list[ImageItem]


def class_problems(names: Sequence[str], folders: Sequence[str],
                   counts: Sequence[int]) -> list[str]:
    """Reasons classes ``names`` (in ``folders``, with ``counts`` usable images) cannot be
    trained on, empty when they can; what :meth:`ScanReport.problems` says, from the counts
    alone (the Data step asks it as classes are left out, without building a data set)."""
    problems = []
    if len(names) < 2:
        found = f"only '{names[0]}'" if names else "none"
        problems.append(f"at least two classes are needed, found {found}")
    for name, folder, count in zip(names, folders, counts):
        if count == 0:
            problems.append(f"class '{name}' has no usable image ({folder})")
    return problems


def imbalance_warning(names: Sequence[str], counts: Sequence[int]) -> str | None:
    """A sentence about the imbalance of classes ``names`` with ``counts`` images, or None
    when they are roughly even."""
    if len(counts) < 2 or min(counts) == 0:
        return None
    small = min(range(len(counts)), key=counts.__getitem__)
    large = max(range(len(counts)), key=counts.__getitem__)
    ratio = counts[large] / counts[small]
    if ratio < IMBALANCE_RATIO:
        return None
    return (
        f"classes are imbalanced: '{names[large]}' has {counts[large]} images, "
        f"'{names[small]}' only {counts[small]} ({ratio:.1f}× fewer); accuracy can "
        f"look good while the small class is mostly wrong"
    )


def first_of_each_class(items: Sequence[ImageItem], counts: Sequence[int],
                        k: int) -> list[list[ImageItem]]:
    """The first ``k`` items of each class, in item order; ``counts`` are the items of each
    class (:func:`count_labels`).

    A scan lists each class's images together: then each class's items are a slice, found
    from the counts (checking that costs a list comparison, not a Python loop per item).
    """
    grouped = list(chain.from_iterable(repeat(label, count) for label, count in enumerate(counts)))
    if list(map(attrgetter("label"), items)) == grouped:  # built in C: 4 ms at 100,000, not 35
        first, start = [], 0
        for count in counts:
            first.append(list(items[start:start + min(k, count)]))
            start += count
        return first
    first = [[] for _ in counts]
    for item in items:
        chosen = first[item.label]
        if len(chosen) < k:
            chosen.append(item)
    return first


def count_labels(items: Iterable[ImageItem], num_classes: int) -> list[int]:
    """How many of ``items`` each class has."""
    # Counter counts in C: at 100,000 images a Python loop is most of the Data step's wait.
    found = Counter(map(attrgetter("label"), items))
    return [found.get(label, 0) for label in range(num_classes)]


def is_junk(name: str) -> bool:
    """Hidden files, macOS resource forks and OS thumbnail databases."""
    return name.startswith(".") or name.lower() in JUNK_NAMES


#: What identifies a file whatever the path it was reached by: (device, inode).
FileId = tuple[int, int]


@dataclass
class _Walk:
    """What walking one class folder found."""

    files: list[tuple[str, FileId]] = field(default_factory=list)  #: (path, identity)
    broken: list[str] = field(default_factory=list)  #: links to nothing
    loops: list[str] = field(default_factory=list)  #: links back to a parent folder


def _is_within(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or lies inside it (both real, absolute paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk_files(folder: str, guards: Sequence[str] = ()) -> _Walk:
    """Every file below ``folder``, following symbolic links but never around a cycle.

    A link to a folder that contains it — the class folder, the data root, any folder above
    them (``guards`` are the real paths of the data roots) — would walk the same files, or
    another class's, again: it is listed in ``loops`` and not followed. Other folders are
    walked at most twice: once by their own path and once through links, so that files keep
    their own paths (see :func:`_one_path_each`).
    """
    walk = _Walk()
    walked: set[FileId] = set()  # folders walked by their own path
    linked: set[FileId] = set()  # folders walked through a link
    # (path, real paths of the folders walked to reach it with its own, reached through a link)
    stack = [(folder, (os.path.realpath(folder),), False)]
    while stack:
        current, chain, through_link = stack.pop()
        try:
            st = os.stat(current)
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue
        identity = (st.st_dev, st.st_ino)
        if identity in walked or (through_link and identity in linked):
            continue
        (linked if through_link else walked).add(identity)
        subfolders = []
        for entry in entries:
            if is_junk(entry.name):
                continue
            try:
                link = entry.is_symlink()
                if entry.is_dir(follow_symlinks=True):
                    real = os.path.realpath(entry.path)
                    if link and any(_is_within(c, real) for c in (*chain, *guards)):
                        walk.loops.append(entry.path)
                    else:
                        subfolders.append((entry.path, (*chain, real), through_link or link))
                elif entry.is_file(follow_symlinks=True):
                    if link:
                        target = os.stat(entry.path)
                        identity = (target.st_dev, target.st_ino)
                    else:  # scandir knows the inode of a plain file: no extra system call
                        identity = (st.st_dev, entry.inode())
                    walk.files.append((entry.path, identity))
                elif link and not os.path.exists(entry.path):
                    walk.broken.append(entry.path)
            except OSError:
                continue
        stack.extend(reversed(subfolders))  # depth first, in name order
    walk.files.sort()
    walk.broken.sort()
    walk.loops.sort()
    return walk


def _one_path_each(files: list[tuple[str, FileId]], folder: str) -> dict[FileId, str]:
    """One path per file of a class, so that a link beside a file does not count it twice:
    the file's own path where the class folder holds it, else the first path in name order."""
    real_folder = os.path.realpath(folder)

    def own(path: str) -> bool:
        return os.path.realpath(path) == os.path.join(real_folder, os.path.relpath(path, folder))

    chosen: dict[FileId, str] = {}
    for path, identity in files:  # in name order
        held = chosen.get(identity)
        if held is None or (not own(held) and own(path)):
            chosen[identity] = path
    return chosen


def _quoted_list(names: Sequence[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _collect(
    walks: Sequence[tuple[int, str, str, _Walk]], training: set[FileId] | None = None
) -> tuple[list, list[SkippedFile], set[FileId]]:
    """Jobs ``(path, label, key)`` from the class walks, with each file in one class only,
    the files left out, and the identities of the jobs' files.

    ``walks`` holds ``(label, class name, class folder, walk)``. A file reached from two
    classes cannot have a right label: it is reported and kept out of both. For a test
    folder, ``training`` holds the training files: a test image among them would measure
    memory, not accuracy, and is kept out of the test.
    """
    per_class = [(label, name, folder, _one_path_each(w.files, folder))
                 for label, name, folder, w in walks]
    owners: dict[FileId, list[str]] = {}
    for _, name, _, chosen in per_class:
        for identity in chosen:
            owners.setdefault(identity, []).append(name)
    jobs, skipped, identities = [], [], set()
    for label, name, folder, chosen in per_class:
        for identity, path in sorted(chosen.items(), key=lambda pair: pair[1]):
            names = owners[identity]
            if len(names) > 1:
                how_many = "two" if len(names) == 2 else "several"
                skipped.append(SkippedFile(
                    path, f"the same file is in {how_many} classes: {_quoted_list(names)}"))
                continue
            if training is not None and identity in training:
                skipped.append(SkippedFile(
                    path, "also a training image (a test image must be new to the model)"))
                continue
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            jobs.append((path, label, f"{name}/{rel}"))
            identities.add(identity)
    release_gradually(owners, *(chosen for _, _, _, chosen in per_class))
    return jobs, skipped, identities


def _subfolders(root: str) -> list[str]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as e:
        raise DatasetError(f"{root}: cannot read the folder ({e.strerror or e})") from e
    return [e.path for e in entries if not is_junk(e.name) and _is_dir(e)]


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _check_folder(path: str) -> str:
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(path):
        raise DatasetError(f"{path}: no such folder")
    if not os.path.isdir(path):
        raise DatasetError(f"{path}: not a folder (give a folder of images)")
    return path


def class_folders_for(paths: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Resolve the user's folders into (class names, class folders, loose files).

    One folder: its sub-folders are the classes; files lying directly in it are loose.
    Several folders: each is one class named after the folder.
    """
    if not paths:
        raise DatasetError("no folder given")
    folders = [_check_folder(p) for p in paths]
    if len(folders) == 1:
        root = folders[0]
        class_dirs = _subfolders(root)
        loose = [
            e.path for e in sorted(os.scandir(root), key=lambda e: e.name)
            if not is_junk(e.name) and not _is_dir(e)
        ]
        if not class_dirs:
            raise DatasetError(
                f"{root}: has no class sub-folders; put each class's images in a sub-folder "
                f"of its own, or give several folders, one per class"
            )
        names = [os.path.basename(d) for d in class_dirs]
        return names, class_dirs, loose
    names = [os.path.basename(f.rstrip(os.sep)) for f in folders]
    seen: dict[str, str] = {}
    for name, folder in zip(names, folders):
        if name in seen:
            raise DatasetError(
                f"two class folders share the name '{name}': {seen[name]} and {folder}"
            )
        seen[name] = folder
    return names, folders, []


def scan(
    paths: Sequence[str],
    test_folder: str | None = None,
    progress: ProgressFn | None = None,
    min_side: int = MIN_SIDE,
    max_pixels: int = MAX_PIXELS,
    threads: int = 8,
    cancel: CancelFlag | None = None,
    other_test_classes: bool = False,
) -> ScanReport:
    """Scan image folders into a :class:`ScanReport`.

    ``progress(done, total)`` is called as files are checked; setting ``cancel`` stops the scan
    with :class:`~tlgui.core.control.Cancelled`. Files are recognised by their content, not
    their extension; each unusable one is reported with its reason.
    Raises :class:`DatasetError` when the folders themselves are unusable, or when the test
    folder has a class the data lacks, unless ``other_test_classes`` lets such a class be
    ignored (a saved run's test folder still holds the classes its training left out).
    """
    names, folders, loose = class_folders_for(paths)
    roots = [os.path.realpath(os.path.expanduser(paths[0]))] if len(paths) == 1 else []
    # A class folder that is a link to the data root (or above) would hold every class.
    loops = [f for f in folders if any(_is_within(r, os.path.realpath(f)) for r in roots)]
    names = [n for n, f in zip(names, folders) if f not in loops]
    folders = [f for f in folders if f not in loops]
    walks = [(label, name, folder, _walk_files(folder, roots))
             for label, (name, folder) in enumerate(zip(names, folders))]
    jobs, conflicts, training = _collect(walks)

    test_walks, _ = _test_walks(test_folder, names, (), other_test_classes) if test_folder \
        else ([], [])
    test_jobs, test_conflicts, _ = _collect(test_walks, training)

    skipped = [SkippedFile(p, "not inside a class folder") for p in loose]
    skipped += [SkippedFile(f, LINK_TO_PARENT) for f in loops]
    for _, _, _, walk in walks + test_walks:
        skipped += [SkippedFile(p, "broken link (it points to a missing file)")
                    for p in walk.broken]
        skipped += [SkippedFile(p, LINK_TO_PARENT) for p in walk.loops]
    skipped += conflicts + test_conflicts
    all_jobs = jobs + test_jobs
    items, test_items = [], []
    # The probes' results (one object per file, arriving from the workers) live until the
    # items are built: full collections meanwhile walked them again and again, 50-80 ms each
    # at 100,000 files, in whichever thread allocated (the window's too).
    with building_long_lived():
        results = _probe_all([j[0] for j in all_jobs], progress, min_side, max_pixels,
                             threads, cancel)
        for i, ((path, label, key), result) in enumerate(zip(all_jobs, results)):
            if not result.ok:
                skipped.append(SkippedFile(path, result.reason))
            elif i < len(jobs):
                items.append(ImageItem(path, label, key))
            else:
                test_items.append(ImageItem(path, label, key))
        settle(len(items) + len(test_items) + len(skipped))
    # What only the scan needed, freed a slice at a time (see release_gradually).
    release_gradually(results, all_jobs, jobs, test_jobs, training,
                      *(walk.files for _, _, _, walk in walks + test_walks))
    return _without_empty_classes(ScanReport(
        classes=names,
        class_folders=folders,
        items=items,
        skipped=skipped,
        test_items=test_items if test_folder else None,
        test_folder=os.path.abspath(test_folder) if test_folder else None,
    ))


def _test_walks(test_folder: str, names: Sequence[str], left_out: Sequence[str],
                other_test_classes: bool) -> tuple[list, list]:
    """Walk the class folders of a test folder: ``(label, name, folder, walk)`` for each class
    of the data (``names``, the class folders' own names), and the same with label -1 for
    each class left out of the data for having no usable image (``left_out``).

    Raises :class:`DatasetError` for a class the data lacks, unless ``other_test_classes``.
    """
    test_root = _check_folder(test_folder)
    guards = [os.path.realpath(test_root)]
    index = {name: i for i, name in enumerate(names)}
    walks, orphans = [], []
    for folder in _subfolders(test_root):
        name = os.path.basename(folder)
        if name in index:
            walks.append((index[name], name, folder, _walk_files(folder, guards)))
        elif name in left_out:
            orphans.append((-1, name, folder, _walk_files(folder, guards)))
        elif not other_test_classes:
            raise DatasetError(
                f"{folder}: the test folder has a class '{name}' that the training data "
                f"lacks (classes: {', '.join(names)})"
            )
    return walks, orphans


def with_test_folder(
    report: ScanReport,
    test_folder: str,
    progress: ProgressFn | None = None,
    min_side: int = MIN_SIDE,
    max_pixels: int = MAX_PIXELS,
    threads: int = 8,
    cancel: CancelFlag | None = None,
    other_test_classes: bool = False,
) -> ScanReport:
    """``report`` with ``test_folder`` as its test set, scanning the test folder only.

    The classes, their names as shown and the training images stay as they are (the same
    list); a test folder the report had before is replaced, with what it left out. Test
    classes are matched by class folder name, as :func:`scan` matches them, so classes renamed
    in the app still find theirs. A report decoded in full (:func:`verify_images`) decodes the
    test images in full too and stays so. Errors, ``progress`` and ``cancel`` as in
    :func:`scan`.
    """
    folder_names = [os.path.basename(f.rstrip(os.sep)) for f in report.class_folders]
    left_out = [os.path.basename(s.path.rstrip(os.sep)) for s in report.skipped
                if s.reason == EMPTY_CLASS]
    walks, orphan_walks = _test_walks(test_folder, folder_names, left_out, other_test_classes)
    training = set()
    for item in report.items:
        try:
            st = os.stat(item.path)
        except OSError:
            continue
        training.add((st.st_dev, st.st_ino))
    jobs, skipped, _ = _collect(walks, training)
    orphan_jobs, orphan_skipped, _ = _collect(orphan_walks, training)
    for _, _, _, walk in walks + orphan_walks:
        skipped += [SkippedFile(p, "broken link (it points to a missing file)")
                    for p in walk.broken]
        skipped += [SkippedFile(p, LINK_TO_PARENT) for p in walk.loops]
    skipped += orphan_skipped
    all_jobs = jobs + orphan_jobs
    paths = [path for path, _, _ in all_jobs]
    results = _probe_all(paths, progress, min_side, max_pixels, threads, cancel)
    failed = {path: result.reason for path, result in zip(paths, results) if not result.ok}
    if report.verified:
        usable = [path for path in paths if path not in failed]
        problems = _run_all(decode_problem, usable, progress, threads, cancel)
        failed.update((path, reason) for path, reason in zip(usable, problems) if reason)
    test_items = []
    for path, label, key in all_jobs:
        if path in failed:
            skipped.append(SkippedFile(path, failed[path]))
        elif label < 0:
            name = key.split("/", 1)[0]
            skipped.append(SkippedFile(path, f"its class '{name}' is left out "
                                             f"(no usable image)"))
        else:
            test_items.append(ImageItem(path, label, key))
    old_root = report.test_folder
    kept = [s for s in report.skipped if not (old_root and _is_within(s.path, old_root))]
    return ScanReport(
        classes=list(report.classes),
        class_folders=list(report.class_folders),
        items=report.items,
        skipped=kept + skipped,
        test_items=test_items,
        test_folder=os.path.abspath(test_folder),
        verified=report.verified,
    )


def _without_empty_classes(report: ScanReport) -> ScanReport:
    """Leave out every class that has no usable image, listing its folder in the report.

    An empty class cannot be learned; leaving it out lets the others train. Its test images
    (if any) are listed too, since no class is left for them.
    """
    counts = report.counts()
    empty = [i for i, n in enumerate(counts) if n == 0]
    if not empty:
        return report
    left_out = [SkippedFile(report.class_folders[i], EMPTY_CLASS) for i in empty]
    orphans = [
        SkippedFile(it.path, f"its class '{report.classes[it.label]}' is left out "
                             f"(no usable image)")
        for it in report.test_items or () if counts[it.label] == 0
    ]
    kept = report.without_classes([report.classes[i] for i in empty])
    kept.skipped = left_out + kept.skipped + orphans
    return kept


def verify_images(
    report: ScanReport,
    progress: ProgressFn | None = None,
    cancel: CancelFlag | None = None,
    threads: int = 4,
) -> ScanReport:
    """Decode every image of ``report`` in full; return the report without those that fail.

    The quick scan reads headers and file endings only, so a file damaged in the middle passes
    it; this check finds it before training does. JPEGs decode in draft mode (at an eighth of
    their size), which reads all their data at a fraction of the cost. Failures join the
    skipped files with the reason, and a class left without images is left out.
    ``progress(done, total)`` and ``cancel`` work as in :func:`scan`.
    """
    if report.verified:
        return report
    return without_files(report, decode_failures(report, progress, cancel, threads))


def decode_failures(report: ScanReport, progress: ProgressFn | None = None,
                    cancel: CancelFlag | None = None, threads: int = 4) -> dict[str, str]:
    """``{path: reason}`` for every image of ``report`` that fails to decode in full."""
    paths = [it.path for it in report.items] + [it.path for it in report.test_items or ()]
    with building_long_lived():  # as in scan: the workers' results are no garbage
        problems = _run_all(decode_problem, paths, progress, threads, cancel)
    return {path: reason for path, reason in zip(paths, problems) if reason}


def without_files(report: ScanReport, failed: dict[str, str]) -> ScanReport:
    """``report`` with the images in ``failed`` (path -> reason) moved to the skipped files,
    marked as decoded in full, and any class left without images left out."""
    checked = ScanReport(
        classes=list(report.classes),
        class_folders=list(report.class_folders),
        items=[it for it in report.items if it.path not in failed],
        skipped=list(report.skipped) + [SkippedFile(p, r) for p, r in failed.items()],
        test_items=(None if report.test_items is None
                    else [it for it in report.test_items if it.path not in failed]),
        test_folder=report.test_folder,
        verified=True,
    )
    return _without_empty_classes(checked)


#: The reason an image left out by the user in the app is listed with.
LEFT_OUT_BY_YOU = "left out in tlgui (the file is untouched)"


def with_image_edits(report: ScanReport, edits: Mapping[str, str | None]) -> ScanReport:
    """``report`` with single images left out (``None``) or counted in another class (named
    as scanned), in the app only: the files stay where they are. Images left out
    are listed among the skipped files with :data:`LEFT_OUT_BY_YOU`; an edit naming a class
    the report does not have, or an image it does not hold, is ignored."""
    if not edits:
        return report
    index = {name: i for i, name in enumerate(report.classes)}
    left_out: list[SkippedFile] = []

    def edited(items):
        if items is None:
            return None
        kept = []
        for it in items:
            if it.path not in edits:
                kept.append(it)
                continue
            target = edits[it.path]
            if target is None:
                left_out.append(SkippedFile(it.path, LEFT_OUT_BY_YOU))
            elif target in index:
                kept.append(ImageItem(it.path, index[target], it.key))
            else:
                kept.append(it)
        return kept

    return ScanReport(list(report.classes), list(report.class_folders), edited(report.items),
                      list(report.skipped) + left_out, edited(report.test_items),
                      report.test_folder, report.verified)


def _probe_all(paths, progress, min_side, max_pixels, threads, cancel=None):
    check = functools.partial(probe_image, min_side=min_side, max_pixels=max_pixels)
    return _run_all(check, paths, progress, threads, cancel)


#: From this many files on, files are checked in worker processes rather than threads. Reading
#: headers is partly Python code, which holds the interpreter lock: checked by threads of the
#: window's own process, 100,000 files kept the window waiting for that lock for up to a second
#: at a time. Fewer files are over before processes would have started.
PROCESS_MIN_FILES = 3000
#: Files per job handed to a worker: large enough that handing out jobs costs little, small
#: enough for progress and Cancel to follow closely.
CHUNK_FILES = 128


def _check_chunk(check, paths: list[str]) -> list:
    return [check(path) for path in paths]


def _worker_processes() -> int:
    return max(2, min(8, os.cpu_count() or 1))


def _run_all(check, paths, progress, threads, cancel=None, processes: bool | None = None
             ) -> list:
    """``check(path)`` for every path, in order, reporting progress; ``cancel`` stops it.

    Checking is file I/O plus decoding, which Pillow does outside the interpreter lock, so a
    few threads overlap well; from :data:`PROCESS_MIN_FILES` files on (or with ``processes``
    True) worker processes do it instead, started fresh ("spawn": forking a process that runs
    other threads can deadlock the child), so the calling process's other threads — a window
    — keep the lock. ``check`` must then be picklable (a module-level function or a
    ``functools.partial`` of one)."""
    total = len(paths)
    if progress:
        progress(0, total)
    if processes is None:
        processes = total >= PROCESS_MIN_FILES
    chunks = [paths[i:i + CHUNK_FILES] for i in range(0, total, CHUNK_FILES)]
    if processes:
        pool = ProcessPoolExecutor(max_workers=_worker_processes(),
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=lower_this_process)
    else:
        pool = ThreadPoolExecutor(max_workers=max(1, threads))
    results: list = []
    step = max(1, total // 100)
    reported = 0
    try:
        futures = [pool.submit(_check_chunk, check, chunk) for chunk in chunks]
        for future in futures:
            while True:  # wait for the chunk in short steps, so that a cancel is seen soon
                if cancel is not None and cancel.is_set():
                    raise Cancelled("scan cancelled")
                try:
                    results.extend(future.result(timeout=0.1))
                    break
                except FutureTimeout:  # not the built-in TimeoutError before Python 3.11
                    continue
            done = len(results)
            if progress and (done - reported >= step or done == total):
                reported = done
                progress(done, total)
    finally:
        # On cancel or error the jobs not started are dropped and nothing waits for the
        # running ones (a few files each); on success every job has ended already.
        pool.shutdown(wait=False, cancel_futures=True)
    if cancel is not None and cancel.is_set():
        raise Cancelled("scan cancelled")
    return results


def _hash_fraction(seed: int, key: str) -> float:
    digest = hashlib.sha1(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def validation_count(n: int, val_fraction: float) -> int:
    """How many of a class's ``n`` images are held out for validation: ``val_fraction`` × ``n``
    rounded (halves up), but at least one on each side when the class has two or more images
    and the fraction is above 0. A class of one image keeps it for training."""
    if val_fraction <= 0 or n < 2:
        return 0
    share = math.floor(val_fraction * n + 0.5 + 1e-9)  # 1e-9: 0.35 × 10 is 3.4999… in floats
    return min(max(share, 1), n - 1)


def split_sizes(counts: Sequence[int], val_fraction: float) -> list[tuple[int, int]]:
    """``(training, validation)`` image counts of each class that :func:`split` makes from
    classes of ``counts`` images, without hashing a single file (the seed chooses which
    images, never how many)."""
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be in [0, 1), got {val_fraction}")
    return [(n - validation_count(n, val_fraction), validation_count(n, val_fraction))
            for n in counts]


def split(items: Sequence[ImageItem], val_fraction: float = 0.2, seed: int = 0) -> Split:
    """Stratified, deterministic train/validation split, exact in every class.

    Each class holds out :func:`validation_count` of its images: those that rank first by a
    hash of the seed, the class and their path inside the class folder. So the same files
    split the same way on any machine, and adding (or removing) one file moves at most one
    other file between training and validation.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be in [0, 1), got {val_fraction}")
    by_class: dict[int, list[tuple[float, str, ImageItem]]] = {}
    for item in items:
        by_class.setdefault(item.label, []).append(
            (_hash_fraction(seed, item.key), item.key, item))
    train, val = [], []
    for label in sorted(by_class):
        ranked = [item for _, _, item in sorted(by_class[label], key=lambda t: t[:2])]
        k = validation_count(len(ranked), val_fraction)
        val.extend(ranked[:k])
        train.extend(ranked[k:])
    return Split(train=train, val=val)
