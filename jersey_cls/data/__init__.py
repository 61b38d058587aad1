from jersey_cls.data.datamodule import JerseyDataModule

__all__ = ["JerseyDataModule"]
