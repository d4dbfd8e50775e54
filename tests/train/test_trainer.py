import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sonotell.train import CheckpointError, NonFiniteLossError, Task, fit, load_model_checkpoint, save_model_checkpoint


class Classify(Task):
    def step(self, batch):
        x, y = batch
        logits = self.model(x)
        return {"loss": nn.functional.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}


class ExplodesAtEpoch1(Classify):
    def step(self, batch):
        out = super().step(batch)
        if self.current_epoch >= 1:
            out["loss"] = out["loss"] * float("nan")
        return out


def loaders(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    ds = TensorDataset(x, y)
    return DataLoader(ds, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(seed)), DataLoader(
        ds, batch_size=32
    )


def test_fit_learns_and_writes_checkpoints_and_logs(tmp_path):
    torch.manual_seed(0)
    train, val = loaders()
    task = Classify(nn.Linear(4, 2), {"name": "adam", "lr": 0.05}, recipe="toy", config={"width": 4})
    res = fit(task, train, val, out_dir=tmp_path, max_epochs=8, seed=0)
    assert res.metrics["val/acc"] > 0.85
    assert res.best_checkpoint.exists() and res.last_checkpoint.name == "last.ckpt"
    assert (tmp_path / "config.yaml").read_text().startswith("recipe: toy")
    assert (tmp_path / "logs" / "version_0" / "metrics.csv").exists()
    ckpt = load_model_checkpoint(res.best_checkpoint, expected="toy", model=nn.Linear(4, 2))
    assert ckpt["config"] == {"width": 4}


def test_resume_continues_from_last_epoch(tmp_path):
    train, val = loaders()
    fit(Classify(nn.Linear(4, 2), recipe="toy"), train, val, out_dir=tmp_path, max_epochs=2)
    steps_after_2 = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    res = fit(Classify(nn.Linear(4, 2), recipe="toy"), train, val, out_dir=tmp_path, max_epochs=3)
    state = torch.load(res.last_checkpoint, weights_only=False)
    assert steps_after_2 == 2 * 4 and state["global_step"] == 3 * 4  # one more epoch, not three


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    train, _ = loaders()
    with pytest.raises(NonFiniteLossError, match="loss is nan at epoch 1.*last good checkpoint: .*last.ckpt"):
        fit(ExplodesAtEpoch1(nn.Linear(4, 2), recipe="toy"), train, out_dir=tmp_path, max_epochs=3)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_checkpoint_refuses_wrong_recipe_and_shape(tmp_path):
    path = save_model_checkpoint(tmp_path / "enc.pt", nn.Linear(4, 3), "dual", {"dim": 3})
    assert path.with_suffix(".yaml").exists()
    with pytest.raises(CheckpointError, match="recipe 'dual', expected 'show_from_tell'"):
        load_model_checkpoint(path, expected="show_from_tell")
    with pytest.raises(CheckpointError, match=r"weight: checkpoint \(3, 4\) vs model \(5, 4\)"):
        load_model_checkpoint(path, expected="dual", model=nn.Linear(4, 5))
    torch.save(
        {k: v for k, v in nn.Linear(4, 3).state_dict().items()}, tmp_path / "user.pth"
    )  # a user's bare state dict
    assert load_model_checkpoint(tmp_path / "user.pth", model=nn.Linear(4, 3))["recipe"] == "unknown"
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.pt: unreadable checkpoint"):
        load_model_checkpoint(tmp_path / "junk.pt")


DDP_SCRIPT = """
import sys, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sonotell.train import Task, fit

class Classify(Task):
    def step(self, batch):
        x, y = batch
        return {"loss": nn.functional.cross_entropy(self.model(x), y)}

if __name__ == "__main__":
    torch.manual_seed(0)
    x = torch.randn(32, 4); y = (x[:, 0] > 0).long()
    dl = DataLoader(TensorDataset(x, y), batch_size=8)
    res = fit(Classify(nn.Linear(4, 2), recipe="toy"), dl, out_dir=sys.argv[1], max_epochs=2, devices=2, strategy="ddp")
    import torch.distributed as dist
    print(
        "WORLD",
        dist.get_world_size() if dist.is_initialized() else 1,
        "STEPS",
        torch.load(res.last_checkpoint, weights_only=False)["global_step"],
    )
"""


def test_ddp_code_path_on_cpu_with_two_gloo_processes(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run")], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # 32 samples, batch 8, split over 2 ranks -> 2 steps per epoch per rank, 2 epochs
    assert "WORLD 2 STEPS 4" in proc.stdout
