"""BestCheckpoints: the best k checkpoints by a metric, whose bookkeeping survives a moved run folder."""

from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint


class BestCheckpoints(ModelCheckpoint):
    """Lightning's ModelCheckpoint. On a resume from a run folder that moved (or a command run from elsewhere),
    Lightning would drop the list of best checkpoints and keep a best_model_path that no longer exists; here the
    saved paths are taken to the same files in the current folder."""

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict.get("dirpath")
        if saved and self.dirpath and saved != self.dirpath:

            def here(path):
                return str(Path(self.dirpath) / Path(path).name) if path else path

            state_dict = {
                **state_dict,
                "dirpath": self.dirpath,
                "best_model_path": here(state_dict.get("best_model_path")),
                "kth_best_model_path": here(state_dict.get("kth_best_model_path")),
                "last_model_path": here(state_dict.get("last_model_path")),
                "best_k_models": {here(path): score for path, score in state_dict.get("best_k_models", {}).items()},
            }
        super().load_state_dict(state_dict)
