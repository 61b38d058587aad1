"""Read jersey numbers from crops with jersey-cls's ONNX export, with only onnxruntime, numpy and Pillow.

    python read_numbers.py runs/jersey/export/model.onnx crop1.jpg crop2.jpg
    python read_numbers.py runs/jersey/export/model.int8.onnx crop1.jpg crop2.jpg

It answers what `jersey-cls predict --onnx_file` answers with the same file, crop for crop, and with model.onnx
what `jersey-cls predict` answers (tests/test_deploy.py and tests/test_int8.py run this file)."""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

model, paths = Path(sys.argv[1]), sys.argv[2:]
labels = json.loads(model.with_name("labels.json").read_text())
session = ort.InferenceSession(str(model))
height, width = labels["input_shape"]


def read(path):
    image = Image.open(path).convert("RGB").resize((width, height), Image.BILINEAR)
    return np.asarray(image).transpose(2, 0, 1)  # uint8, channels first


probabilities = session.run(["probabilities"], {"images": np.stack([read(p) for p in paths])})[0]
for path, row in zip(paths, probabilities, strict=True):
    print(path, labels["class_names"][row.argmax()], f"{row.max():.3f}")
