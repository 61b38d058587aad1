"""Learning from tracklet labels: bags of a track's frames, the bag objective, the track threshold fitted on val,
checkpoints ranked by track accuracy, and player thumbnails read in their own shape."""

import csv
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from jersey_cls.cli import main
from jersey_cls.data.augment import Augment, train_transform
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.data.sampling import BagSampler
from jersey_cls.evaluation.tracks import Tracks, fit_threshold
from jersey_cls.model.bags import bag_loss
from jersey_cls.numbers import ILLEGIBLE
from jersey_cls.training import BestCheckpoints, TrackEarlyStopping

from .conftest import fit_args, write_crop

RUN = Path("runs/jersey")
ILLEGIBLE_ON = ("--data.illegible", "true", "--data.val_share", "0.25")


def test_bags_hold_one_tracks_frames_every_track_alike_and_new_frames_each_epoch():
    tracks = [list(range(0, 40)), list(range(40, 43)), list(range(43, 143))]  # long, short, longer
    sampler = BagSampler(tracks, frames=16, bag_size=8, seed=3)
    owner = {index: t for t, members in enumerate(tracks) for index in members}
    seen = {t: set() for t in range(len(tracks))}
    for epoch in range(7):
        sampler.set_epoch(epoch)
        crops = list(sampler)
        assert len(crops) == len(sampler) == 3 * 16
        bags: dict[int, list[int]] = {}
        for crop_epoch, position, index in crops:
            assert crop_epoch == epoch
            bags.setdefault(position // 8, []).append(index)
        assert all(len(bag) == 8 and len({owner[i] for i in bag}) == 1 for bag in bags.values())
        per_track = [sum(owner[i] == t for i in itertools.chain(*bags.values())) for t in range(3)]
        assert per_track == [16, 16, 16]  # a 3-frame track weighs what a 100-frame one does
        for index in itertools.chain(*bags.values()):
            seen[owner[index]].add(index)
    # the next frames each epoch: 7 epochs of 16 are more than 100 frames, so every frame was drawn
    assert all(seen[t] == set(tracks[t]) for t in range(3))


def test_a_resumed_or_sharded_bag_order_is_the_uninterrupted_one():
    tracks = [list(range(t * 10, t * 10 + 10)) for t in range(7)]
    whole = list(BagSampler(tracks, 16, 8, seed=1, epoch=2))
    assert list(BagSampler(tracks, 16, 8, seed=1, epoch=2, skip=24)) == whole[24:]
    ranks = [list(BagSampler(tracks, 16, 8, seed=1, epoch=2, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 56  # 14 bags, 7 each
    assert not {p for _, p, _ in ranks[0]} & {p for _, p, _ in ranks[1]}
    assert sorted(ranks[0] + ranks[1]) == sorted(whole)


def numpy_bag_loss(probabilities: np.ndarray, targets: np.ndarray, bags: np.ndarray, illegible: int) -> float:
    """The bag objective written out: per frame, -log(p(number) + p(illegible)) (illegible bags: -log
    p(illegible)), averaged; per bag with a number, -log of the mean of its frames' p(number), averaged; summed."""
    frames = [-np.log(p[t] + p[illegible]) if t != illegible else -np.log(p[illegible])
              for p, t in zip(probabilities, targets, strict=True)]  # fmt: skip
    per_bag = []
    for bag in np.unique(bags[targets != illegible]):
        members = probabilities[bags == bag]
        number = targets[bags == bag][0]
        per_bag.append(-np.log(np.mean(members[:, number])))
    return float(np.mean(frames) + (np.mean(per_bag) if per_bag else 0.0))


def test_the_bag_objective_is_its_formula_and_rewards_one_frame_that_shows_the_number():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(size=(12, 5)) * 2)
    targets, bags = torch.tensor([1] * 4 + [4] * 4 + [2] * 4), torch.tensor([7] * 4 + [3] * 4 + [9] * 4)
    ours = bag_loss(logits.log_softmax(1), targets, bags, illegible=4)
    expected = numpy_bag_loss(logits.softmax(1).numpy(), targets.numpy(), bags.numpy(), 4)
    assert float(ours) == pytest.approx(expected, rel=1e-6)

    def loss(readings: list[list[float]]) -> float:  # one bag of number 0, classes (0, 1, illegible)
        p = torch.tensor(readings)
        return float(bag_loss(p.log(), torch.zeros(len(p), dtype=torch.long), torch.zeros(len(p)), illegible=2))

    one_shows = loss([[0.98, 0.01, 0.01]] + [[0.01, 0.01, 0.98]] * 3)
    assert one_shows < 1.5  # one frame of four shows the number, the others nothing: -log(1/4) and a little
    assert loss([[0.01, 0.01, 0.98]] * 4) > one_shows + 3  # nothing shows it: some frame must
    assert loss([[0.01, 0.98, 0.01]] + [[0.01, 0.01, 0.98]] * 3) > one_shows + 3  # a frame reading another number


def test_trained_on_bags_alone_a_model_learns_which_frames_show_the_number():
    """No frame labels: bags of 4 frames, a fifth of them showing their number (a feature), the rest noise; a
    linear model trained by the bag objective then reads shown frames as their number and noise as illegible."""
    torch.manual_seed(0)
    numbers, illegible = 5, 5

    def bag(number: int):
        features = torch.randn(4, 16) * 0.3
        shows = torch.rand(4) < 0.25
        shows[torch.randint(4, ())] = True
        features[shows, number] += 3.0
        return features, shows

    model = torch.nn.Linear(16, numbers + 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        labels = torch.randint(numbers + 1, (16,))  # a sixth of the bags are illegible tracks
        made = [bag(int(n)) if n != illegible else (torch.randn(4, 16) * 0.3, torch.zeros(4, dtype=bool))
                for n in labels]  # fmt: skip
        features = torch.cat([f for f, _ in made])
        loss = bag_loss(model(features).log_softmax(1), labels.repeat_interleave(4), torch.arange(64) // 4, illegible)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    tests = [bag(n) for n in range(numbers) for _ in range(20)]
    truth = torch.cat([torch.where(shows, n, illegible) for n, (_, shows) in zip(
        [n for n in range(numbers) for _ in range(20)], tests, strict=True)])  # fmt: skip
    read = model(torch.cat([f for f, _ in tests])).argmax(1)
    assert (read == truth).float().mean() > 0.95


def numpy_track_answers(probabilities: np.ndarray, tracks: list[str], names: list[str], threshold: float) -> dict:
    """The track rule written out: each number's probability summed over the track's crops; the largest wins,
    illegible when under the threshold."""
    numbers = [i for i, name in enumerate(names) if name != ILLEGIBLE]
    answers = {}
    for track in dict.fromkeys(tracks):
        summed = probabilities[[t == track for t in tracks]][:, numbers].sum(axis=0)
        answers[track] = names[numbers[summed.argmax()]] if summed.max() >= threshold else ILLEGIBLE
    return answers


def test_the_threshold_reads_the_most_val_tracks_right_and_sits_mid_gap():
    names = ["3", "8", ILLEGIBLE]
    tracks = Tracks(names)
    evidence = {"a": (0, 3.0, "3"), "b": (1, 2.0, "8"), "c": (0, 0.4, ILLEGIBLE), "d": (1, 0.2, ILLEGIBLE),
                "e": (0, 1.2, "8")}  # fmt: skip
    for track, (number, strength, _) in evidence.items():  # two crops each, halves of the evidence
        for _ in range(2):
            p = np.full(3, 0.0)
            p[number], p[2] = strength / 2, 1 - strength / 2
            tracks.add(track, p)
    truths = {track: truth for track, (_, _, truth) in evidence.items()}
    threshold = fit_threshold(tracks, truths)
    # Brute force: every threshold between the strengths, scored; the best range is (0.4, 2.0): its middle.
    grid = np.exp(np.linspace(np.log(0.05), np.log(10), 2001))
    accuracy = [sum(numpy_track_answers(np.array([tracks.evidence[t] / 2] * 2), [t] * 2, names, g)[t] == truths[t]
                    for t in truths) for g in grid]  # fmt: skip
    best = grid[np.array(accuracy) == max(accuracy)]
    assert (
        max(accuracy) == 4 and best.min() == pytest.approx(0.4, rel=0.01) and best.max() == pytest.approx(2, rel=0.01)
    )
    assert threshold == pytest.approx(np.sqrt(0.4 * 2.0))
    answers = {row["track"]: row["answer"] for row in tracks.answers(threshold)}
    assert answers == {"a": "3", "b": "8", "c": ILLEGIBLE, "d": ILLEGIBLE, "e": "3"}
    # what breaks ties between checkpoints: the truth's share of the number evidence; illegible's mean probability
    assert tracks.truth_share("e", "8") == 0.0 and tracks.truth_share("a", "3") == pytest.approx(1.0)
    assert tracks.truth_share("c", ILLEGIBLE) == pytest.approx(1 - 0.2)


def test_the_submission_is_the_saved_rule_over_the_saved_probabilities(soccernet_root):
    main(fit_args(soccernet_root, *ILLEGIBLE_ON, "--model.lr", "0.01", epochs=2))
    main(["predict", "--ckpt_path", "best", "--data.predict_path", str(soccernet_root / "test"),
          "--predictions.top_k", "200"])  # fmt: skip
    last = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)  # it names the best, predict's pick
    best = next(state["best_model_path"] for state in last["callbacks"].values() if state.get("best_model_path"))
    checkpoint = torch.load(RUN / "checkpoints" / Path(best).name, weights_only=True)
    names, threshold = checkpoint["hyper_parameters"]["class_names"], checkpoint["track_threshold"]
    with open(RUN / "predictions" / "test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    probabilities = np.zeros((len(rows), len(names)))
    for i, row in enumerate(rows):
        for k in range(1, len(names) + 1):
            probabilities[i, names.index(row[f"top{k}_label"])] = float(row[f"top{k}_prob"])
    tracks = [Path(row["path"]).parent.name for row in rows]
    expected = {t: -1 if a == ILLEGIBLE else int(a)
                for t, a in numpy_track_answers(probabilities, tracks, names, threshold).items()}  # fmt: skip
    submission = json.loads((RUN / "predictions" / "test_submission.json").read_text())
    assert submission == expected
    assert threshold != 1.0  # fitted on val, not the default


def test_tracklet_runs_are_ranked_by_track_accuracy_and_say_so(soccernet_root, capsys):
    main(fit_args(soccernet_root, *ILLEGIBLE_ON))
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "rank by val/track_acc" in out
    assert "train: 11 tracklets (9 with a number, 2 illegible)" in out
    assert "16 frames of each tracklet an epoch, drawn afresh" in out
    last = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)
    states = [s for s in last["callbacks"].values() if isinstance(s, dict) and s.get("best_model_path")]
    assert [s["monitor"] for s in states if s["monitor"]] == ["val/track_score"]
    assert list((RUN / "checkpoints").glob("best-epoch=000-track_acc=*.ckpt"))


class DesignedScores(pl.LightningModule):
    """Validation logs the crop and track accuracies it is given, epoch by epoch."""

    def __init__(self, crop: list[float], track: list[float]) -> None:
        super().__init__()
        self.layer, self.crop, self.track = torch.nn.Linear(2, 1), crop, track

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/acc_top1", self.crop[self.current_epoch])
        self.log("val/track_acc", self.track[self.current_epoch])
        self.log("val/track_score", self.track[self.current_epoch] + 0.0001)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class Tracked(pl.LightningDataModule):
    def __init__(self, tracks: dict) -> None:
        super().__init__()
        self.splits = {"val": SimpleNamespace(tracks=tracks)}

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(2, 2)), batch_size=2)


@pytest.mark.parametrize("tracks, best_epoch", [({"a.jpg": "a"}, 1), ({}, 0)])
def test_better_track_accuracy_wins_over_better_crop_accuracy(tracks, best_epoch, tmp_path):
    best = BestCheckpoints(dirpath=str(tmp_path / "checkpoints"), save_top_k=1)
    trainer = pl.Trainer(max_epochs=3, callbacks=[best], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(DesignedScores(crop=[0.9, 0.3, 0.5], track=[0.4, 0.8, 0.6]), datamodule=Tracked(tracks))
    assert best.monitor == ("val/track_score" if tracks else "val/acc_top1")
    assert Path(best.best_model_path).name.startswith(f"best-epoch={best_epoch:03d}-")


def test_early_stopping_waits_while_every_track_is_answered_illegible():
    stopper = TrackEarlyStopping(monitor="val/track_acc", mode="max", patience=1)
    checks = []
    stopper._run_early_stopping_check = lambda trainer: checks.append(trainer.callback_metrics["val/tracks_read"])
    for read in (0.0, 0.0, 0.3):
        trainer = SimpleNamespace(callback_metrics={"val/tracks_read": torch.tensor(read)}, sanity_checking=False,
                                  fast_dev_run=False, state=SimpleNamespace(fn="fit"))  # fmt: skip
        stopper.on_validation_end(trainer, None)
    assert [float(c) for c in checks] == [pytest.approx(0.3)]


def test_a_minus_one_tracklet_without_illegible_and_an_empty_tracklet_are_named(soccernet_root):
    with pytest.raises(Exception, match=r"3 train tracklets are -1.*--data.illegible true"):
        JerseyDataModule(data_root=str(soccernet_root))
    (soccernet_root / "train" / "images" / "empty").mkdir()
    gt = soccernet_root / "train" / "train_gt.json"
    gt.write_text(json.dumps({**json.loads(gt.read_text()), "empty": 7}))
    data = JerseyDataModule(data_root=str(soccernet_root), illegible=True, num_workers=0)
    with pytest.warns(UserWarning, match=r"(?s)tracklet folder with no frames.*images/empty"):
        data.setup("fit")


def test_predict_over_the_images_folder_or_by_folder_is_predict_over_the_split(soccernet_root):
    main(fit_args(soccernet_root, *ILLEGIBLE_ON))
    test = soccernet_root / "test"
    main(["predict", "--ckpt_path", "best", "--data.predict_path", str(test)])
    expected = json.loads((RUN / "predictions" / "test_submission.json").read_text())
    main(["predict", "--ckpt_path", "best", "--data.predict_path", str(test / "images"),
          "--predictions.path", "images.csv"])  # fmt: skip
    assert json.loads(Path("images_submission.json").read_text()) == expected
    main(["predict", "--ckpt_path", "best", "--data.predict_path", str(test), "--predictions.tracks", "folder",
          "--predictions.path", "folders.csv"])  # fmt: skip
    assert json.loads(Path("folders_submission.json").read_text()) == expected


def write_tall(path: Path, top=(220, 20, 20), bottom=(20, 20, 220)) -> None:
    """A 50 x 110 thumbnail: a red top band, a blue bottom band, grey between."""
    pixels = np.full((110, 50, 3), 128, dtype=np.uint8)
    pixels[:12], pixels[-12:] = top, bottom
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_tall_thumbnails_are_read_in_their_shape_and_the_random_crop_keeps_it(tmp_path):
    for split in ("train", "valid"):
        for label in ("3", "8"):
            for i in range(3):
                write_tall(tmp_path / "tall" / split / label / f"{i}.png")
    data = JerseyDataModule(data_root=str(tmp_path / "tall"), image_size=64, num_workers=0)
    assert data.input_shape == [96, 44]  # 110:50 at about 64 x 64's pixels
    assert JerseyDataModule(data_root=str(tmp_path / "tall"), image_size=64, keep_aspect=False).input_shape == [64, 64]
    image = Image.open(tmp_path / "tall" / "train" / "3" / "0.png")
    torch.manual_seed(0)
    crops = [train_transform((96, 44), Augment(strength=1.0))(image) for _ in range(40)]
    assert all(crop.shape == (3, 96, 44) for crop in crops)

    # The crop is drawn in the thumbnail's shape: both bands stay in view, where a square crop of it cannot hold
    # them both (torchvision falls back to a centre square, 50 x 56, which holds neither).
    def band(crop, rows, first, second) -> bool:  # a row of the crop's top or bottom quarter in the band's colour
        difference = crop[first, rows].float() - crop[second, rows].float()
        return bool((difference.mean(dim=1) > 40).any())

    top, bottom = slice(0, 24), slice(-24, None)
    assert sum(band(crop, top, 0, 2) and band(crop, bottom, 2, 0) for crop in crops) >= 0.6 * len(crops)


def test_a_rendered_tracklet_hides_its_number_on_the_share_asked_for(tmp_path):
    from jersey_cls.synth.tracklets import render_tracklet

    for share in (0.15, 0.4):
        shown = render_tracklet(tmp_path / f"t{share}", "23", 40, share, seed=f"s{share}", kind="players")
        assert sum(shown) == round(share * 40)
        assert len(list((tmp_path / f"t{share}").glob("*.jpg"))) == 40
    assert not any(render_tracklet(tmp_path / "never", None, 10, 0.5, seed="n", kind="players"))


def test_relabel_learns_frames_read_as_illegible_as_illegible_from_then_on_and_resumes_so(soccernet_root,
                                                                                          monkeypatch):  # fmt: skip
    import jersey_cls.training.relabel as relabel

    def designed(path: str, target: int, illegible: int) -> int:
        """Tracklets ending in 0: the first two frames read illegible, the others their number; ending in 1:
        every frame read illegible (no frame shows the number: keep its labels); the rest read right."""
        track, frame = Path(path).parent.name, int(Path(path).stem)
        if target != illegible and (track.endswith("1") or (track.endswith("0") and frame < 2)):
            return illegible
        return target

    def read_frames(pl_module, loader, count):
        illegible = pl_module.class_names.index(ILLEGIBLE)
        return [designed(path, target, illegible) for path, target in loader.dataset.samples]

    monkeypatch.setattr(relabel, "read_frames", read_frames)
    built = []
    train_dataloader = JerseyDataModule.train_dataloader
    monkeypatch.setattr(JerseyDataModule, "train_dataloader",
                        lambda self: built.append(train_dataloader(self)) or built[-1])  # fmt: skip
    main(fit_args(soccernet_root, *ILLEGIBLE_ON, "--model.head", "digits", epochs=2))
    first, second = (dict(loader.dataset.samples) for loader in built)
    names = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]["class_names"]
    illegible = names.index(ILLEGIBLE)
    expected = {
        path
        for path, target in first.items()
        if target != illegible and Path(path).parent.name.endswith("0") and int(Path(path).stem) < 2
    }
    assert expected and {path for path in first if second[path] != first[path]} == expected
    assert all(second[path] == illegible for path in expected)
    saved = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)["JerseyDataModule"]["relabelled"]
    assert {str(soccernet_root.resolve() / path) for path in saved} == expected  # saved relative to data_root
    built.clear()  # a resume trains on the relabelled frames from its first batch
    main(fit_args(soccernet_root, *ILLEGIBLE_ON, "--model.head", "digits", "--ckpt_path", "last", epochs=3))
    assert dict(built[0].dataset.samples) == second


def test_a_run_resumed_past_the_relabelling_epoch_relabels_at_its_first_epoch_end(soccernet_root, monkeypatch):
    import jersey_cls.training.relabel as relabel

    monkeypatch.setattr(relabel, "read_frames", lambda pl_module, loader, count: [  # every frame read illegible
        pl_module.class_names.index(ILLEGIBLE) if Path(path).stem == "0000" else target
        for path, target in loader.dataset.samples])  # fmt: skip
    main(fit_args(soccernet_root, *ILLEGIBLE_ON, "--model.head", "digits", "--relabel.at", "null", epochs=1))
    assert "relabelled" not in torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)["JerseyDataModule"]
    # Resumed at epoch 1 with the relabelling due at the end of epoch 0: it happens at the end of epoch 1.
    main(fit_args(soccernet_root, *ILLEGIBLE_ON, "--model.head", "digits", "--relabel.at", "0.25",
                  "--ckpt_path", "last", epochs=3))  # fmt: skip
    state = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)["JerseyDataModule"]
    assert state["relabelled"] and all(Path(path).stem == "0000" for path in state["relabelled"])
    assert not any(Path(path).is_absolute() for path in state["relabelled"])  # relative to data_root


def test_tracks_labelled_frame_by_frame_are_scored_by_the_number_their_frames_show(tmp_path):
    # JSONL rows with a track_id, each frame labelled with what it shows (jersey-cls-synth players' frames): most
    # frames of a numbered track are -1, and the track is still that number, even when the frames evaluation
    # reads (4, evenly spaced: 0, 6, 13 and 19) all show nothing.
    root, numbers = tmp_path / "frames", {"a": "7", "b": "23", "c": "-1", "d": "7", "e": "23", "f": "-1"}
    for split in ("train", "valid", "test"):
        rows = []
        for track, number in numbers.items():
            for frame in range(20):
                shows = number != "-1" and frame == 3
                name = f"{track}{frame:02d}.jpg"
                write_crop(root / split / name, number if shows else "", seed=f"{split}{track}{frame}")
                rows.append({"image": name, "suffix": number if shows else "-1", "track_id": track})
        (root / split / "annotations.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    main(fit_args(root, "--data.illegible", "true", "--data.frames_per_track", "4"))
    main(["test", "--ckpt_path", "last", "--data.num_workers", "0"])
    with open(next(RUN.glob("reports/*/test_tracks.csv")), newline="") as f:
        truths = {row["track"]: row["truth"] for row in csv.DictReader(f)}
    assert truths == {track: ILLEGIBLE if number == "-1" else number for track, number in numbers.items()}
