"""One answer per player track over jersey-cls's ONNX export, by predict's rule: each number's evidence is its
probability summed over the track's crops, the answer is the number with the most, and a track whose answer has
less evidence than the model's track_threshold (labels.json) is illegible.

    python read_tracks.py runs/jersey/export/model.onnx crops/annotations.jsonl track_id   # or model.int8.onnx

It reads every row of the file; `jersey-cls predict --predictions.tracks track_id` reads at most
--data.frames_per_track crops of a track (16), and given the same crops it answers what this answers
(tests/test_arena.py runs this file)."""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

model, jsonl, key = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
labels = json.loads(model.with_name("labels.json").read_text())
session = ort.InferenceSession(str(model))
names, (height, width) = labels["class_names"], labels["input_shape"]
rows = [json.loads(line) for line in Path(jsonl).read_text().splitlines()]


def read(row):
    image = Image.open(Path(jsonl).parent / row["image"]).convert("RGB").resize((width, height), Image.BILINEAR)
    return np.asarray(image).transpose(2, 0, 1)  # uint8, channels first


probabilities = session.run(["probabilities"], {"images": np.stack([read(row) for row in rows])})[0]
numbers = [i for i, name in enumerate(names) if name != "illegible"]
evidence = {row[key]: np.zeros(len(numbers)) for row in rows}
for row, p in zip(rows, probabilities, strict=True):
    evidence[row[key]] += p[numbers]
for track, votes in evidence.items():
    legible = "illegible" not in names or votes.max() >= labels["track_threshold"]
    print(track, names[numbers[votes.argmax()]] if legible else "illegible")
