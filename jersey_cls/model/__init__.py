"""The model: JerseyClassifier, its backbone, its heads, its metrics and its learning-rate schedule."""

from jersey_cls.model.module import JerseyClassifier

__all__ = ["JerseyClassifier"]
