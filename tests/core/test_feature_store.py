"""The on-disk feature store: keys, reuse, one changed image recomputed alone, a killed
extraction resumed with whole shards only, bounded reads, eviction, crafted files."""

import json
import os
import time

import numpy as np
import pytest

from tlgui.core import feature_store as fs
from tlgui.core.feature_store import FeatureKey, FeatureStore, FeatureStoreError, stored_features

PRE = {"resize_size": 8, "crop_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3,
       "interpolation": "bilinear"}


def key(**changes):
    values = {"backbone": "tiny", "weights": "w1", "cut": 2, "preprocessing": PRE} | changes
    return FeatureKey(**values)


def images(tmp_path, n):
    paths = []
    for i in range(n):
        p = tmp_path / f"img{i:03d}.bin"
        p.write_bytes(bytes([i]) * (i + 1))
        paths.append(str(p))
    return paths


def output_of(path):
    """A stand-in backbone: the output depends on the file's bytes."""
    data = open(path, "rb").read()
    return np.full((3, 2), len(data) + data[0] / 256, dtype=np.float32)


class Backbone:
    def __init__(self, paths, batch=4, fail_after=None, unreadable=()):
        self.paths, self.batch, self.fail_after = paths, batch, fail_after
        self.unreadable = set(unreadable)
        self.computed = []

    def __call__(self, missing):
        for b, start in enumerate(range(0, len(missing), self.batch)):
            if self.fail_after is not None and b >= self.fail_after:
                raise KeyboardInterrupt("killed")
            positions = [i for i in missing[start:start + self.batch]
                         if i not in self.unreadable and os.path.exists(self.paths[i])]
            self.computed.extend(positions)
            yield positions, np.stack([output_of(self.paths[i]) for i in positions])


def expected(paths):
    return np.stack([output_of(p) for p in paths]).astype(np.float16)


def test_features_are_computed_once_and_read_back(tmp_path):
    paths = images(tmp_path, 10)
    store = FeatureStore(tmp_path / "store")
    first = Backbone(paths)
    got = stored_features(store.features(key()), paths, first)
    assert sorted(first.computed) == list(range(10))
    assert got.valid.all() and len(got) == 10
    np.testing.assert_array_equal(got[np.arange(10)], expected(paths))
    again = Backbone(paths)
    got = stored_features(store.features(key()), paths, again)  # a new process, say
    assert again.computed == []
    np.testing.assert_array_equal(got[[7, 2]], expected([paths[7], paths[2]]))


def test_a_changed_image_is_computed_again_alone(tmp_path):
    paths = images(tmp_path, 6)
    store = FeatureStore(tmp_path / "store")
    stored_features(store.features(key()), paths, Backbone(paths))
    with open(paths[3], "wb") as f:
        f.write(b"\x09" * 40)  # edited: another size and time
    again = Backbone(paths)
    got = stored_features(store.features(key()), paths, again)
    assert again.computed == [3]
    np.testing.assert_array_equal(got[np.arange(6)], expected(paths))


@pytest.mark.parametrize("change", [{"cut": 3}, {"weights": "w2"}, {"backbone": "other"},
                                    {"preprocessing": PRE | {"crop_size": 6}}])
def test_another_key_computes_everything(tmp_path, change):
    paths = images(tmp_path, 5)
    store = FeatureStore(tmp_path / "store")
    stored_features(store.features(key()), paths, Backbone(paths))
    again = Backbone(paths)
    stored_features(store.features(key(**change)), paths, again)
    assert sorted(again.computed) == list(range(5))
    assert len(store.contents()) == 2


def test_a_killed_extraction_keeps_whole_shards_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(fs, "SHARD_BYTES", 1)  # a shard per batch
    paths = images(tmp_path, 20)
    store = FeatureStore(tmp_path / "store")
    killed = Backbone(paths, batch=4, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        stored_features(store.features(key()), paths, killed)
    assert len(store.features(key())) == 12
    # A shard whose index never got written (a kill in between) does not count.
    folder = store.features(key()).folder
    np.save(folder / "shard-orphan.npy", np.zeros((4, 3, 2), np.float16))
    resumed = Backbone(paths, batch=4)
    got = stored_features(store.features(key()), paths, resumed)
    assert resumed.computed == list(range(12, 20))
    np.testing.assert_array_equal(got[np.arange(20)], expected(paths))


def test_a_shard_is_written_after_a_while_however_small(tmp_path, monkeypatch):
    monkeypatch.setattr(fs, "SHARD_SECONDS", 0.0)  # a slow backbone: a shard per batch
    paths = images(tmp_path, 20)
    store = FeatureStore(tmp_path / "store")
    stored_features(store.features(key()), paths, Backbone(paths, batch=4))
    assert len(list(store.features(key()).folder.glob("shard-*.json"))) == 5
    monkeypatch.setattr(fs, "SHARD_SECONDS", 3600.0)
    stored_features(store.features(key(cut=3)), paths, Backbone(paths, batch=4))
    assert len(list(store.features(key(cut=3)).folder.glob("shard-*.json"))) == 1


def test_images_that_cannot_be_decoded_have_no_features(tmp_path):
    paths = images(tmp_path, 6) + [str(tmp_path / "gone.bin")]  # computed, never stored
    store = FeatureStore(tmp_path / "store")
    got = stored_features(store.features(key()), paths, Backbone(paths, unreadable={2}))
    assert got.valid.tolist() == [True, True, False, True, True, True, False]
    np.testing.assert_array_equal(got[[2]], expected([paths[3]]))  # positions among valid


def test_reads_are_memory_mapped_a_batch_at_a_time(tmp_path):
    paths = images(tmp_path, 30)
    store = FeatureStore(tmp_path / "store")
    got = stored_features(store.features(key()), paths, Backbone(paths))
    batch = got[[29, 0, 15]]
    assert batch.shape == (3, 3, 2) and batch.dtype == np.float16
    assert all(isinstance(s.array, np.memmap) for s in got.features.shards if s.array
               is not None)
    assert got.nbytes() == 30 * 6 * 2


def test_least_recently_used_keys_are_evicted_beyond_the_limit(tmp_path):
    paths = images(tmp_path, 8)
    store = FeatureStore(tmp_path / "store")
    folders = []
    for i, cut in enumerate((1, 2, 3)):
        features = store.features(key(cut=cut))
        stored_features(features, paths, Backbone(paths))
        os.utime(features.folder / "used", (time.time() - 100 + i, time.time() - 100 + i))
        folders.append(features.folder)
    one = store.features(key(cut=1)).size_bytes()
    assert store.size_bytes() == 3 * one
    removed = store.evict(limit=2 * one, keep=[folders[0]])  # the oldest is in use
    assert removed == [folders[1]]
    assert {k.cut for k in store.contents()} == {1, 3}
    assert store.evict(limit=10 * one) == []
    assert store.clear() == 2 * one and store.contents() == []


def test_one_key_is_removed_and_nothing_outside_the_store(tmp_path):
    paths = images(tmp_path, 4)
    store = FeatureStore(tmp_path / "store")
    kept, gone = store.features(key(cut=1)), store.features(key(cut=2))
    for features in (kept, gone):
        stored_features(features, paths, Backbone(paths))
    size = gone.size_bytes()
    assert size > 0 and store.remove(gone.folder) == size
    assert store.remove(gone.folder) == 0  # gone already
    assert [k.folder for k in store.contents()] == [kept.folder]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "key.json").write_text((kept.folder / "key.json").read_text())
    for outside in (tmp_path / "other", tmp_path, kept.folder / ".." / ".." / "other"):
        with pytest.raises(FeatureStoreError, match="not a folder of the feature store"):
            store.remove(outside)
    assert (tmp_path / "other" / "key.json").exists() and os.path.exists(paths[0])


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(fs.LIMIT_ENV, "1.5")
    assert fs.limit_bytes() == int(1.5 * 2**30)
    monkeypatch.setenv(fs.LIMIT_ENV, "lots")
    with pytest.raises(FeatureStoreError, match="TLGUI_FEATURE_STORE_GB"):
        fs.limit_bytes()


def test_a_crafted_index_or_array_is_refused_naming_the_file(tmp_path):
    paths = images(tmp_path, 4)
    store = FeatureStore(tmp_path / "store")
    got = stored_features(store.features(key()), paths, Backbone(paths))
    shard = got.features.shards[0].name
    folder = got.features.folder
    (folder / f"{shard}.json").write_text('{"rows": "nonsense"')
    with pytest.raises(FeatureStoreError, match=f"{shard}.json"):
        store.features(key())
    (folder / f"{shard}.json").write_text(json.dumps(
        {"format": 1, "shape": [3, 2], "rows": [[p, 1, 1] for p in paths]}))
    np.save(folder / f"{shard}.npy", np.zeros((4, 3, 2), np.float64))  # not float16
    features = store.features(key())
    with pytest.raises(FeatureStoreError, match=f"{shard}.npy"):
        features.read(np.array([0]), np.array([0]))


def test_module_fingerprint_follows_the_weights():
    import torch

    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    b = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    b.load_state_dict(a.state_dict())
    assert fs.module_fingerprint(a) == fs.module_fingerprint(b)
    with torch.no_grad():
        b[0].weight[0, 0, 0, 0] += 1e-3
    assert fs.module_fingerprint(a) != fs.module_fingerprint(b)
    c = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4))
    c.load_state_dict(a.state_dict())  # same numbers, another layer
    assert fs.module_fingerprint(a) != fs.module_fingerprint(c)
