"""Image folders to a labelled data set: scanning, the scan report and the train/validation split.

Folder conventions follow torchvision's ``ImageFolder``: one root with a sub-folder per class.
Several folders given together are one class each, named after the folder. Images in nested
sub-folders belong to their top class folder. Nothing here writes to the user's folders.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .control import CancelFlag, Cancelled
from .images import MAX_PIXELS, MIN_SIDE, probe_image

#: File and folder names that operating systems leave behind; skipped without a word.
JUNK_NAMES = frozenset(
    {"thumbs.db", "desktop.ini", "ehthumbs.db", "__macosx", "$recycle.bin",
     "system volume information", "@eadir", ".ds_store"}
)

#: A class this many times larger than the smallest one triggers the imbalance warning.
IMBALANCE_RATIO = 3.0

ProgressFn = Callable[[int, int], None]


class DatasetError(ValueError):
    """The folders cannot make a data set; the message says why in one line."""


@dataclass(frozen=True)
class ImageItem:
    """One usable image: its path, class index and the class-relative key used for splitting."""

    path: str
    label: int
    key: str


@dataclass(frozen=True)
class SkippedFile:
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

    def counts(self) -> list[int]:
        """Usable images per class, in class order."""
        return count_labels(self.items, len(self.classes))

    def test_counts(self) -> list[int] | None:
        if self.test_items is None:
            return None
        return count_labels(self.test_items, len(self.classes))

    def problems(self) -> list[str]:
        """Reasons this report cannot be trained on (empty when it can)."""
        problems = []
        if len(self.classes) < 2:
            found = f"only '{self.classes[0]}'" if self.classes else "none"
            problems.append(f"at least two classes are needed, found {found}")
        for name, folder, count in zip(self.classes, self.class_folders, self.counts()):
            if count == 0:
                problems.append(f"class '{name}' has no usable image ({folder})")
        return problems

    def require_trainable(self) -> None:
        """Raise :class:`DatasetError` with the first problem, if there is one."""
        problems = self.problems()
        if problems:
            raise DatasetError(problems[0])

    def imbalance_warning(self) -> str | None:
        """A sentence about class imbalance, or None when the classes are roughly even."""
        counts = self.counts()
        if len(counts) < 2 or min(counts) == 0:
            return None
        small = min(range(len(counts)), key=counts.__getitem__)
        large = max(range(len(counts)), key=counts.__getitem__)
        ratio = counts[large] / counts[small]
        if ratio < IMBALANCE_RATIO:
            return None
        return (
            f"classes are imbalanced: '{self.classes[large]}' has {counts[large]} images, "
            f"'{self.classes[small]}' only {counts[small]} ({ratio:.1f}× fewer); accuracy can "
            f"look good while the small class is mostly wrong"
        )

    def without_classes(self, removed: Iterable[str]) -> ScanReport:
        """A copy without the named classes (labels renumbered); the folders are untouched."""
        removed = set(removed)
        keep = [i for i, name in enumerate(self.classes) if name not in removed]
        remap = {old: new for new, old in enumerate(keep)}

        def relabel(items):
            if items is None:
                return None
            return [ImageItem(it.path, remap[it.label], it.key)
                    for it in items if it.label in remap]

        return ScanReport(
            classes=[self.classes[i] for i in keep],
            class_folders=[self.class_folders[i] for i in keep],
            items=relabel(self.items),
            skipped=list(self.skipped),
            test_items=relabel(self.test_items),
            test_folder=self.test_folder,
        )


    def renamed(self, names: Sequence[str]) -> ScanReport:
        """A copy whose classes are called ``names`` (in class order); the folders keep theirs,
        and so does the split, which hashes the folder names."""
        names = [n.strip() for n in names]
        if len(names) != len(self.classes):
            raise DatasetError(f"expected {len(self.classes)} class names, got {len(names)}")
        if any(not n for n in names):
            raise DatasetError("a class name cannot be empty")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DatasetError(f"two classes cannot share the name '{duplicates[0]}'")
        return ScanReport(list(names), list(self.class_folders), self.items, list(self.skipped),
                          self.test_items, self.test_folder)


@dataclass(frozen=True)
class Split:
    train: list[ImageItem]
    val: list[ImageItem]


def count_labels(items: Iterable[ImageItem], num_classes: int) -> list[int]:
    """How many of ``items`` each class has."""
    counts = [0] * num_classes
    for item in items:
        counts[item.label] += 1
    return counts


def is_junk(name: str) -> bool:
    """Hidden files, macOS resource forks and OS thumbnail databases."""
    return name.startswith(".") or name.lower() in JUNK_NAMES


def _walk_files(folder: str, visited: set[tuple[int, int]]) -> tuple[list[str], list[str]]:
    """(files, broken links) below ``folder``, following symlinks but never around a cycle."""
    files: list[str] = []
    broken: list[str] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            st = os.stat(current)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in visited:
            continue
        visited.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if is_junk(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    files.append(entry.path)
                elif entry.is_symlink() and not os.path.exists(entry.path):
                    broken.append(entry.path)
            except OSError:
                continue
    files.sort()
    return files, sorted(broken)


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
) -> ScanReport:
    """Scan image folders into a :class:`ScanReport`.

    ``progress(done, total)`` is called as files are checked; setting ``cancel`` stops the scan
    with :class:`~tlgui.core.control.Cancelled`. Files are recognised by their content, not
    their extension; each unusable one is reported with its reason.
    Raises :class:`DatasetError` when the folders themselves are unusable.
    """
    names, folders, loose = class_folders_for(paths)
    visited: set[tuple[int, int]] = set()
    jobs: list[tuple[str, int, str]] = []  # (path, label, key)
    broken: list[str] = []
    for label, (name, folder) in enumerate(zip(names, folders)):
        files, dangling = _walk_files(folder, visited)
        broken += dangling
        for path in files:
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            jobs.append((path, label, f"{name}/{rel}"))

    test_jobs: list[tuple[str, int, str]] = []
    if test_folder:
        test_root = _check_folder(test_folder)
        index = {name: i for i, name in enumerate(names)}
        for folder in _subfolders(test_root):
            name = os.path.basename(folder)
            if name not in index:
                raise DatasetError(
                    f"{folder}: the test folder has a class '{name}' that the training data "
                    f"lacks (classes: {', '.join(names)})"
                )
            files, dangling = _walk_files(folder, set())
            broken += dangling
            for path in files:
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                test_jobs.append((path, index[name], f"{name}/{rel}"))

    skipped = [SkippedFile(p, "not inside a class folder") for p in loose]
    skipped += [SkippedFile(p, "broken link (it points to a missing file)") for p in broken]
    all_jobs = jobs + test_jobs
    results = _probe_all([j[0] for j in all_jobs], progress, min_side, max_pixels, threads,
                         cancel)
    items, test_items = [], []
    for i, ((path, label, key), result) in enumerate(zip(all_jobs, results)):
        if not result.ok:
            skipped.append(SkippedFile(path, result.reason))
        elif i < len(jobs):
            items.append(ImageItem(path, label, key))
        else:
            test_items.append(ImageItem(path, label, key))
    return ScanReport(
        classes=names,
        class_folders=folders,
        items=items,
        skipped=skipped,
        test_items=test_items if test_folder else None,
        test_folder=os.path.abspath(test_folder) if test_folder else None,
    )


def _probe_all(paths, progress, min_side, max_pixels, threads, cancel=None):
    total = len(paths)
    if progress:
        progress(0, total)
    results = []
    # Probing is file I/O plus header parsing; threads overlap the I/O.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        step = max(1, total // 100)
        for done, result in enumerate(
            pool.map(lambda p: probe_image(p, min_side, max_pixels), paths, chunksize=16), 1
        ):
            results.append(result)
            if cancel is not None and cancel.is_set():
                raise Cancelled("scan cancelled")
            if progress and (done % step == 0 or done == total):
                progress(done, total)
    return results


def _hash_fraction(seed: int, key: str) -> float:
    digest = hashlib.sha1(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split(items: Sequence[ImageItem], val_fraction: float = 0.2, seed: int = 0) -> Split:
    """Stratified, deterministic train/validation split.

    Each file's side is decided by a hash of the seed, its class and its path inside the class
    folder, so the same files split the same way on any machine and adding files leaves the
    existing ones where they were. Every class with two or more images keeps at least one image
    on each side.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be in [0, 1), got {val_fraction}")
    by_class: dict[int, list[tuple[float, ImageItem]]] = {}
    for item in items:
        by_class.setdefault(item.label, []).append((_hash_fraction(seed, item.key), item))
    train, val = [], []
    for label in sorted(by_class):
        ranked = sorted(by_class[label], key=lambda pair: pair[0])
        class_val = [it for h, it in ranked if h < val_fraction]
        class_train = [it for h, it in ranked if h >= val_fraction]
        if val_fraction > 0 and len(ranked) >= 2:
            if not class_val:
                class_val.append(class_train.pop(0))
            elif not class_train:
                class_train.append(class_val.pop())
        train.extend(class_train)
        val.extend(class_val)
    return Split(train=train, val=val)
