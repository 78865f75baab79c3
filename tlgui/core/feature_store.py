"""Backbone features kept on disk, computed once per image for good.

A frozen backbone gives every image the same output in every training that freezes it the
same way, so tlgui computes it once and keeps it: across the runs with and without dropout,
across trainings with other heads or learning rates, across sessions, and for the map and the
audit of the data. At 100,000 images those outputs are tens of gigabytes, so they live on
disk, memory-mapped, and reach the device a batch at a time.

What an output depends on is its *key*: the backbone, the identity of its weights (a hash of
the frozen part's parameters themselves, so an imported file, a download and a seeded random
start are told apart by what they hold), the cut point (how many blocks are frozen) and the
preprocessing. Each key has a folder; in it each image is known by its path, size and
modification time, so an edited image misses and is computed again, alone.

Layout of a key's folder::

    key.json                    what the key is (shown to the user)
    shard-<id>.npy              float16 outputs, one row per image
    shard-<id>.json             the images of those rows, in order (written after the .npy)
    used                        touched at each use: least recently used keys go first

A shard counts only once its ``.json`` exists, and both are written atomically, so a killed
extraction leaves whole shards and no half vector: the next one computes what is missing.
Nothing read here is executed: arrays load with ``allow_pickle=False``, indexes are JSON and
checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .paths import atomic_output, atomic_write_json, cache_dir

#: Bumped when the layout changes; folders of another format are ignored (and evicted).
STORE_FORMAT = 1
#: A shard is written once it holds this many bytes of outputs, or this many seconds of work
#: (or the extraction ends): a kill loses at most that much, and few files keep lookups quick.
#: (512 half-precision values an image: 64 MB is 65,536 images, minutes on a CPU.)
SHARD_BYTES = 64 * 2**20
SHARD_SECONDS = 60.0
#: The store's default size limit; least recently used keys are removed beyond it.
DEFAULT_LIMIT_BYTES = 20 * 2**30
#: ``TLGUI_FEATURE_STORE_GB`` sets the limit in gigabytes (0: keep nothing).
LIMIT_ENV = "TLGUI_FEATURE_STORE_GB"


class FeatureStoreError(ValueError):
    """A file of the store that cannot be used; the message names it."""


#: ``TLGUI_FEATURE_STORE_DIR`` puts the store elsewhere (a larger disk).
ROOT_ENV = "TLGUI_FEATURE_STORE_DIR"


def store_root() -> Path:
    """Where the store lives: ``TLGUI_FEATURE_STORE_DIR``, or ``features`` in tlgui's cache
    folder."""
    override = os.environ.get(ROOT_ENV)
    return Path(override) if override else cache_dir() / "features"


def limit_bytes() -> int:
    """The store's size limit, from ``TLGUI_FEATURE_STORE_GB`` or the default."""
    value = os.environ.get(LIMIT_ENV, "").strip()
    if not value:
        return DEFAULT_LIMIT_BYTES
    try:
        gb = float(value)
    except ValueError:
        raise FeatureStoreError(f"{LIMIT_ENV}: {value!r} is not a number of gigabytes") from None
    if not gb >= 0:
        raise FeatureStoreError(f"{LIMIT_ENV}: {value!r} is not a number of gigabytes")
    return int(gb * 2**30)


# -- identities ------------------------------------------------------------------------------
def file_identity(path: str) -> tuple[str, int, int] | None:
    """``(absolute path, size, modification time in ns)``; None for a file that is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


def module_fingerprint(module) -> str:
    """A hash of a torch module's structure and of every parameter and buffer it holds."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(module).encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes()
                      if t.numel() else b"")
    return digest.hexdigest()


@dataclass(frozen=True)
class FeatureKey:
    """What a backbone output depends on. ``weights`` is a :func:`module_fingerprint`."""

    backbone: str
    weights: str
    cut: int  #: frozen blocks
    preprocessing: dict

    def to_dict(self) -> dict:
        return {"format": STORE_FORMAT, "backbone": self.backbone, "weights": self.weights,
                "cut": self.cut, "preprocessing": self.preprocessing}

    def digest(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


# -- one key's folder ------------------------------------------------------------------------
@dataclass
class _Shard:
    name: str
    rows: int
    shape: tuple[int, ...]
    array: np.ndarray | None = None  #: memory-mapped on first use


class FeatureSet:
    """The stored outputs of one :class:`FeatureKey`: look images up, add new ones, read
    rows back."""

    def __init__(self, folder: Path, key: FeatureKey | None = None):
        self.folder = Path(folder)
        self.key = key
        self.shards: list[_Shard] = []
        self.index: dict[tuple[str, int, int], tuple[int, int]] = {}  #: identity -> shard, row
        self.shape: tuple[int, ...] | None = None
        self._load_index()

    def _load_index(self) -> None:
        if not self.folder.is_dir():
            return
        for meta in sorted(self.folder.glob("shard-*.json")):
            name = meta.name[: -len(".json")]
            if not (self.folder / f"{name}.npy").is_file():
                continue
            try:
                info = json.loads(meta.read_text())
                rows = [(str(p), int(s), int(m)) for p, s, m in info["rows"]]
                shape = tuple(int(v) for v in info["shape"])
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise FeatureStoreError(f"{meta}: not a shard index of the feature store "
                                        f"({e})") from e
            if self.shape is None:
                self.shape = shape
            elif shape != self.shape:
                continue  # cannot happen for one key; never mix shapes
            k = len(self.shards)
            self.shards.append(_Shard(name, len(rows), shape))
            for r, identity in enumerate(rows):
                self.index[identity] = (k, r)

    def __len__(self) -> int:
        return len(self.index)

    def locate(self, identities: Sequence[tuple | None]) -> tuple[np.ndarray, np.ndarray]:
        """Shard and row of each identity (-1, -1 where it is not stored)."""
        shard = np.full(len(identities), -1, dtype=np.int32)
        row = np.full(len(identities), -1, dtype=np.int64)
        for i, identity in enumerate(identities):
            hit = self.index.get(identity) if identity is not None else None
            if hit is not None:
                shard[i], row[i] = hit
        return shard, row

    def _array(self, k: int) -> np.ndarray:
        s = self.shards[k]
        if s.array is None:
            path = self.folder / f"{s.name}.npy"
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise FeatureStoreError(f"{path}: unreadable ({e})") from e
            if array.dtype != np.float16 or array.shape != (s.rows, *s.shape):
                raise FeatureStoreError(f"{path}: holds {array.dtype} {array.shape}, its "
                                        f"index says float16 {(s.rows, *s.shape)}")
            s.array = array
        return s.array

    def read(self, shard: np.ndarray, row: np.ndarray) -> np.ndarray:
        """The outputs at ``(shard, row)`` pairs, in that order, as one float16 array."""
        if self.shape is None:
            raise FeatureStoreError(f"{self.folder}: holds no features")
        out = np.empty((len(row), *self.shape), dtype=np.float16)
        for k in np.unique(shard):
            where = np.nonzero(shard == k)[0]
            rows = row[where]
            order = np.argsort(rows, kind="stable")  # read in file order
            out[where[order]] = self._array(int(k))[rows[order]]
        return out

    def add(self, identities: list[tuple], outputs: np.ndarray) -> None:
        """Store ``outputs`` (one row per identity) as one new shard."""
        outputs = np.ascontiguousarray(outputs, dtype=np.float16)
        if len(identities) != len(outputs) or not len(outputs):
            raise ValueError("one output row per identity, at least one")
        shape = tuple(outputs.shape[1:])
        if self.shape is not None and shape != self.shape:
            raise ValueError(f"outputs of shape {shape}; this key stores {self.shape}")
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.key is not None and not (self.folder / "key.json").exists():
            atomic_write_json(self.folder / "key.json", self.key.to_dict())
        name = f"shard-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        with atomic_output(self.folder / f"{name}.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, outputs, allow_pickle=False)
        # The index last: until it exists the shard does not count.
        atomic_write_json(self.folder / f"{name}.json",
                          {"format": STORE_FORMAT, "shape": list(shape),
                           "rows": [list(identity) for identity in identities]})
        k = len(self.shards)
        self.shards.append(_Shard(name, len(outputs), shape))
        self.shape = shape
        for r, identity in enumerate(identities):
            self.index[identity] = (k, r)

    def touch(self) -> None:
        """Mark the key as just used (for least-recently-used eviction)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "used").write_bytes(b"")
            os.utime(self.folder / "used")
        except OSError:
            pass  # a read-only cache still serves what it holds

    def size_bytes(self) -> int:
        return folder_bytes(self.folder)


def folder_bytes(folder: Path) -> int:
    total = 0
    for path in Path(folder).glob("*"):
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total


# -- the whole store -------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredKey:
    """One key's folder as the user sees it."""

    folder: Path
    backbone: str
    cut: int
    image_size: int
    images: int
    size_bytes: int
    last_used: float  #: seconds since the epoch
    weights: str = ""  #: the frozen part's fingerprint (see module_fingerprint)


class FeatureStore:
    """Every key's folder under ``root`` (by default :func:`store_root`)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else store_root()

    def features(self, key: FeatureKey) -> FeatureSet:
        return FeatureSet(self.root / key.digest(), key)

    def contents(self) -> list[StoredKey]:
        """What the store holds, most recently used first."""
        found = []
        for folder in self._folders():
            info = _read_key(folder)
            if info is None:
                continue
            images = 0
            for meta in folder.glob("shard-*.json"):
                try:
                    images += len(json.loads(meta.read_text())["rows"])
                except (OSError, ValueError, KeyError, TypeError):
                    pass
            preprocessing = info.get("preprocessing") or {}
            found.append(StoredKey(folder, str(info.get("backbone", "?")),
                                   int(info.get("cut", 0)),
                                   int(preprocessing.get("crop_size", 0)), images,
                                   folder_bytes(folder), _last_used(folder),
                                   str(info.get("weights", ""))))
        return sorted(found, key=lambda k: -k.last_used)

    def size_bytes(self) -> int:
        return sum(folder_bytes(f) for f in self._folders())

    def clear(self) -> int:
        """Remove every stored feature; returns the bytes freed."""
        freed = 0
        for folder in self._folders():
            freed += folder_bytes(folder)
            shutil.rmtree(folder, ignore_errors=True)
        return freed

    def remove(self, folder: str | os.PathLike) -> int:
        """Remove one key's folder (from :meth:`contents`); returns the bytes freed. A folder
        that is not directly in the store is refused: this never deletes anything else."""
        folder = Path(folder)
        refused = FeatureStoreError(f"{folder}: not a folder of the feature store {self.root}")
        if folder.resolve().parent != self.root.resolve():
            raise refused
        if not folder.exists():
            return 0  # evicted meanwhile
        if _read_key(folder) is None:
            raise refused
        freed = folder_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)
        return freed

    def evict(self, limit: int | None = None, keep: Iterable[Path] = ()) -> list[Path]:
        """Remove least recently used keys until the store holds at most ``limit`` bytes
        (default :func:`limit_bytes`); folders in ``keep`` (in use now) stay. Returns the
        folders removed."""
        limit = limit_bytes() if limit is None else limit
        keep = {Path(k).resolve() for k in keep}
        folders = sorted(self._folders(), key=_last_used)
        sizes = {f: folder_bytes(f) for f in folders}
        total = sum(sizes.values())
        removed = []
        for folder in folders:
            if total <= limit:
                break
            if folder.resolve() in keep:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= sizes[folder]
            removed.append(folder)
        return removed

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.is_dir()]


def _read_key(folder: Path) -> dict | None:
    try:
        info = json.loads((folder / "key.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("format") == STORE_FORMAT else None


def _last_used(folder: Path) -> float:
    for name in ("used", "key.json"):
        try:
            return (folder / name).stat().st_mtime
        except OSError:
            continue
    return 0.0


# -- features of a list of images ------------------------------------------------------------
class StoredFeatures:
    """The stored outputs of a list of images, read a batch at a time.

    ``valid`` marks the images that have an output (an image that cannot be decoded has
    none); indexing with positions among the valid images returns a float16 array."""

    def __init__(self, features: FeatureSet, shard: np.ndarray, row: np.ndarray):
        self.features = features
        self.valid = shard >= 0
        self._shard = shard[self.valid]
        self._row = row[self.valid]

    def __len__(self) -> int:
        return len(self._row)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.features.shape or ()

    def __getitem__(self, positions) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        return self.features.read(self._shard[positions], self._row[positions])

    def nbytes(self) -> int:
        return len(self) * int(np.prod(self.shape, dtype=np.int64)) * 2


def stored_features(
    features: FeatureSet,
    paths: Sequence[str],
    compute: Callable[[list[int]], Iterator[tuple[list[int], np.ndarray]]],
    progress: Callable[[int, int], None] | None = None,
) -> StoredFeatures:
    """The outputs of ``paths``, computing those not stored yet.

    ``compute(missing)`` gets the positions (in ``paths``) of the images to compute and
    yields ``(positions, outputs)`` batches as it goes (leaving out images it cannot decode);
    they are stored a shard at a time, so a stop (an exception from ``compute``) keeps every
    whole shard written before it. ``progress(done, total)`` counts images computed."""
    identities = [file_identity(p) for p in paths]
    shard, row = features.locate(identities)
    # A file that is gone is handed to ``compute`` too: reading it raises the usual error.
    missing = [i for i in range(len(paths)) if shard[i] < 0]
    features.touch()
    if missing:
        pending_ids: list[tuple] = []
        pending: list[np.ndarray] = []
        pending_bytes = 0
        done = 0
        started = time.monotonic()

        def flush() -> None:
            nonlocal pending_ids, pending, pending_bytes, started
            if pending_ids:
                features.add(pending_ids, np.concatenate(pending))
            pending_ids, pending, pending_bytes = [], [], 0
            started = time.monotonic()

        try:
            for positions, outputs in compute(missing):
                outputs = np.asarray(outputs, dtype=np.float16)
                known = [k for k, i in enumerate(positions) if identities[i] is not None]
                pending_ids.extend(identities[positions[k]] for k in known)
                pending.append(outputs[known] if len(known) < len(positions) else outputs)
                pending_bytes += outputs.nbytes
                done += len(positions)
                if (pending_bytes >= SHARD_BYTES
                        or time.monotonic() - started >= SHARD_SECONDS):
                    flush()
                if progress is not None:
                    progress(done, len(missing))
        except BaseException:
            try:
                flush()  # what was computed is kept, even when stopped
            except OSError:
                pass  # the disk is full, say: the first error is the one to report
            raise
        flush()
        shard, row = features.locate(identities)
    return StoredFeatures(features, shard, row)
