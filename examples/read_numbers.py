"""Read jersey numbers from crops with jersey-cls's ONNX export, with only onnxruntime, numpy and Pillow.

    python read_numbers.py runs/jersey/export crop1.jpg crop2.jpg

It answers what `jersey-cls predict` answers, crop for crop (tests/test_deploy.py runs this file)."""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

export, paths = sys.argv[1], sys.argv[2:]
labels = json.loads(Path(export, "labels.json").read_text())
session = ort.InferenceSession(f"{export}/model.onnx")
height, width = labels["input_shape"]


def read(path):
    image = Image.open(path).convert("RGB").resize((width, height), Image.BILINEAR)
    return np.asarray(image).transpose(2, 0, 1)  # uint8, channels first


probabilities = session.run(["probabilities"], {"images": np.stack([read(p) for p in paths])})[0]
for path, row in zip(paths, probabilities, strict=True):
    print(path, labels["class_names"][row.argmax()], f"{row.max():.3f}")
