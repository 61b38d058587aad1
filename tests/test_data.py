import json
from pathlib import Path

import pytest
import torch
from torchvision.transforms import v2

from jersey_cls.data import datamodule
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.data.sampling import EpochSampler
from jersey_cls.messages import JerseyInputError
from jersey_cls.numbers import label_sort_key
from jersey_cls.synth import sets
from jersey_cls.synth.sets import DEFAULT_NUMBERS, embedded_dataset

from .conftest import LABELS, write_crop


def test_label_order_is_numeric_and_keeps_0_and_00_apart():
    labels = ["10", "00", "9", "0", "23", "1", "07"]
    assert sorted(labels, key=label_sort_key) == ["0", "00", "1", "07", "9", "10", "23"]


@pytest.mark.parametrize("layout", ["jsonl_root", "imagefolder_root"])
def test_both_layouts_load(layout, request):
    data = JerseyDataModule(data_root=str(request.getfixturevalue(layout)), image_size=32, batch_size=8, num_workers=0)
    assert data.class_names == LABELS
    assert data.class_weights == pytest.approx([1.0] * 4)
    batch = next(iter(data.train_dataloader()))
    images, targets = batch["image"], batch["target"]
    assert images.dtype == torch.uint8 and images.shape == (8, 3, 32, 32)
    assert targets.max() < 4
    assert sum(len(batch["target"]) for batch in data.val_dataloader()) == 16


def test_jsonl_reads_every_file_under_a_split_and_skips_bad_rows(jsonl_root):
    synthetic = jsonl_root / "train" / "synthetic"
    for i in range(3):
        write_crop(synthetic / f"46_{i}.jpg", "46", seed=f"46-{i}")
    rows = [{"image": f"46_{i}.jpg", "suffix": "46"} for i in range(3)]
    lines = [json.dumps(r) for r in rows] + [
        "{not json",
        json.dumps({"image": "46_0.jpg", "suffix": ""}),  # unreadable number: no label
        json.dumps({"image": "gone.jpg", "suffix": "46"}),
    ]
    (synthetic / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    data = JerseyDataModule(data_root=str(jsonl_root), num_workers=0)
    with pytest.warns(UserWarning, match="(?s)malformed JSONL line.*missing image"):
        data.setup("fit")  # the data doctor reports what reading the splits skipped
    assert data.class_names == LABELS + ["46"]
    assert sum(label == "46" for _, label in data.splits["train"].samples) == 3
    # 3 images of "46" against 10 of the others: the rare class weighs 10/3 as much.
    weights = dict(zip(data.class_names, data.class_weights, strict=True))
    assert weights["46"] / weights["7"] == pytest.approx(10 / 3)


def test_image_listed_with_two_labels_is_dropped(jsonl_root):
    annotations = jsonl_root / "train" / "annotations.jsonl"
    with annotations.open("a") as f:
        f.write(json.dumps({"image": "7_0.jpg", "suffix": "1"}) + "\n")
    data = JerseyDataModule(data_root=str(jsonl_root), num_workers=0)
    with pytest.warns(UserWarning, match="different labels"):
        data.setup("fit")
    assert not any(path.endswith("7_0.jpg") for path, _ in data.splits["train"].samples)


def test_balanced_sampler_is_opt_in(jsonl_root):
    plain = JerseyDataModule(data_root=str(jsonl_root), num_workers=0).train_dataloader()
    balanced = JerseyDataModule(data_root=str(jsonl_root), num_workers=0, sampler="balanced").train_dataloader()
    assert plain.sampler.weights is None and balanced.sampler.weights is not None
    # 10 images of each class: a balanced draw still covers every class, with replacement
    drawn = [index for _, _, index in balanced.sampler]
    assert len(drawn) == 40 and len(set(drawn)) < 40


def test_epoch_sampler_order_depends_on_seed_and_epoch_only_and_resumes_mid_epoch():
    straight = EpochSampler(10, seed=7)
    epoch_0 = list(straight)
    straight.set_epoch(1)
    epoch_1 = list(straight)
    assert [i for *_, i in epoch_0] != [i for *_, i in epoch_1]
    assert sorted(i for *_, i in epoch_1) == list(range(10))
    resumed = EpochSampler(10, seed=7, epoch=0, skip=4)  # 4 samples of epoch 0 were trained on before the kill
    assert list(resumed) == epoch_0[4:] and len(resumed) == 10
    resumed.set_epoch(1)
    assert list(resumed) == epoch_1
    assert list(EpochSampler(10, seed=8)) != epoch_0


def test_epoch_sampler_gives_each_ddp_rank_an_equal_disjoint_share_of_one_order():
    whole = list(EpochSampler(11, seed=7))
    ranks = [list(EpochSampler(11, seed=7, rank=rank, world_size=2)) for rank in (0, 1)]
    assert [len(share) for share in ranks] == [5, 5]  # equal counts, so no rank waits on another
    assert sorted(ranks[0] + ranks[1]) == sorted(whole[:10]) and not set(ranks[0]) & set(ranks[1])
    resumed = EpochSampler(11, seed=7, skip=2, rank=1, world_size=2)  # rank 1 had trained on 2 samples
    assert list(resumed) == ranks[1][2:]


def test_train_transform_never_flips(jsonl_root):
    data = JerseyDataModule(data_root=str(jsonl_root), num_workers=0)
    transform = data.train_dataloader().dataset.transform
    kinds = {type(t) for t in transform.transforms}
    assert v2.RandomHorizontalFlip not in kinds and v2.RandomVerticalFlip not in kinds
    assert v2.JPEG in {type(t.transforms[0]) for t in transform.transforms if isinstance(t, v2.RandomApply)}


def test_image_broken_after_the_scan_is_skipped_not_fatal(jsonl_root):
    data = JerseyDataModule(data_root=str(jsonl_root), image_size=32, batch_size=64, num_workers=0)
    (jsonl_root / "valid" / "7_0.jpg").write_bytes(b"not a jpeg")  # changed after the data doctor ran
    with pytest.warns(UserWarning, match="skipping unreadable image .*7_0.jpg"):
        batch = next(iter(data.val_dataloader()))
    assert len(batch["target"]) == 15


def test_embedded_dataset_is_rendered_once_and_reused(tmp_path, monkeypatch):
    # Fewer crops a number than the real set (whose whole fit is the slow quick-start test), the same code path.
    small = {"train": 3, "valid": 2, "test": 1}
    monkeypatch.setattr(sets, "SPLIT_SIZES", small)
    monkeypatch.setattr(datamodule, "SPLIT_SIZES", small)
    root = embedded_dataset(tmp_path / "cache")
    first = (root / "train" / "annotations.jsonl").stat().st_mtime_ns
    assert embedded_dataset(tmp_path / "cache") == root
    assert (root / "train" / "annotations.jsonl").stat().st_mtime_ns == first
    lines = (root / "valid" / "annotations.jsonl").read_text().splitlines()
    assert len(lines) == len(DEFAULT_NUMBERS) * 2
    data = JerseyDataModule(cache_dir=str(tmp_path / "cache"), num_workers=0)
    assert data.class_names[:2] == ["0", "00"] and len(data.class_names) == len(DEFAULT_NUMBERS)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "--data.data_root .*no such folder"),
        (lambda root: (root / "val" / "7").mkdir(parents=True), "no train/ split"),
        (lambda root: (root / "train" / "7").mkdir(parents=True), "split 'train' .* has no usable images"),
        (lambda root: (root / "train").mkdir(parents=True), "neither a Roboflow JSONL split .* nor a SoccerNet"),
    ],
    ids=["missing-root", "missing-train", "empty-split", "unknown-layout"],
)
def test_bad_data_root_gets_a_clear_error(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(JerseyInputError, match=message):
        JerseyDataModule(data_root=str(root))


def test_decode_once_serves_the_same_crops_without_reading_the_files_again(jsonl_root, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")  # as seed_everything sets it: both loaders augment alike

    def loaders(**extra):
        data = JerseyDataModule(data_root=str(jsonl_root), image_size=32, batch_size=8, num_workers=0, **extra)
        return data, [data.train_dataloader(), data.val_dataloader()]

    expected = [list(loader) for loader in loaders()[1]]
    data, decoded = loaders(decode_once=True)
    for split in data.splits.values():
        for path, _ in split.samples:
            Path(path).unlink()
    for reference, once in zip(expected, decoded, strict=True):
        served = list(once)
        assert len(served) == len(reference) > 0
        assert all(batch is not None for batch in served)
        assert all(torch.equal(a["image"], b["image"]) for a, b in zip(reference, served, strict=True))
