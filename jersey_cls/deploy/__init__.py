"""Deployment: the ONNX export, the model card, and what predict writes."""

from jersey_cls.deploy.export import ExportOnnx
from jersey_cls.deploy.model_card import ModelCard
from jersey_cls.deploy.predictions import PredictionWriter

__all__ = ["ExportOnnx", "ModelCard", "PredictionWriter"]
