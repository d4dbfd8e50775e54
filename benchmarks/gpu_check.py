"""Throughput and memory of every recipe's training step, and encoder frames/s: use a lent GPU at once.

For each recipe (show_from_tell, dual, av_contrastive, voice_label, deep_cluster, fixmatch,
downstream) and each image/video encoder (``scratch``: the recipe's own from-scratch network;
``imagenet``: EfficientNet-Lite0 with ImageNet weights), the recipe's model is built from its
``paper`` config and trained for ``--steps`` optimiser steps on synthetic batches of the
config's input shape (real recipe losses: ``model.losses`` / PICA + size prior / FixMatch /
cross-entropy). Reported: clips (or images) per second after ``--warmup`` steps, and peak
memory (CUDA: ``max_memory_allocated``; CPU: the process's peak RSS). Then each encoder's
inference frames/s at 224x224.

    python benchmarks/gpu_check.py                       # paper configs, 200 steps, cuda if present
    python benchmarks/gpu_check.py --tiny --steps 2      # CPU smoke run (small configs, tiny inputs)
    python benchmarks/gpu_check.py --small --device cpu  # CPU throughput of the small configs

``benchmarks/gpu_check.sh`` wraps this with a time limit. Prints a table; writes JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

RECIPES = ("show_from_tell", "dual", "av_contrastive", "voice_label", "deep_cluster", "fixmatch", "downstream")
ENCODERS = ("scratch", "imagenet")


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _video_spec(encoder: str, pretrained: bool = True) -> dict | None:
    return (
        {"name": "video_efficientnet_lite0", "config": "paper", "pretrained": pretrained}
        if encoder == "imagenet"
        else None
    )


def ssl_case(recipe: str, encoder: str, tiny: bool, batch: int | None, paper: bool = True):
    """(model, step(batch) -> loss, make_batch(), clips per batch) for a pretraining recipe."""
    from sonotell.methods.downstream import model_for_recipe, recipe_config

    over = ["model.text.vocabulary=[<pad>, <unk>, here, is, the, liver, b-lines]"] if recipe == "show_from_tell" else []
    cfg = recipe_config(recipe, "paper" if paper else "small", over)
    if encoder == "imagenet":
        cfg["model"]["video"] = _video_spec(encoder)
        if recipe == "dual":
            cfg["model"]["image"] = {"name": "image_efficientnet_lite0", "config": "paper"}
    model = model_for_recipe(recipe, cfg)
    d = cfg["data"]
    n, t = (4, 4) if tiny else (batch or int(cfg["train"]["batch_size"]), int(d["n_frames"]))
    h, w = (32, 32) if tiny else tuple(d["size"])
    samples = int(0.6 * int(d.get("sample_rate_hz", 16000)))
    scans = [f"s{i // 2}" for i in range(n)]

    def make():
        return {
            "frames": torch.rand(n, t, h, w),
            "audio": torch.randn(n, samples) * 0.1,
            "text": ["here is the liver", "b-lines"] * (n // 2) + [""] * (n % 2),
            "scan_id": scans,
            "subject_id": scans,
            "time_s": torch.arange(n, dtype=torch.float32) * 3.0,
        }

    return model, lambda m, b: m.losses(b)["loss"], make, n


def voice_label_case(encoder: str, tiny: bool, batch: int | None, paper: bool = True):
    from sonotell.methods.voice_label import build_model, method_config

    cfg = method_config(
        "paper" if paper else "small",
        ["image_encoder={name: image_efficientnet_lite0, config: paper}"] if encoder == "imagenet" else [],
    )
    model = build_model(cfg, {"mode": "image_voice"}, num_classes=3)
    n = 2 if tiny else batch or int(cfg["train"]["batch_size"])
    t = int(cfg["data"]["n_frames"])
    h, w = (32, 32) if tiny else tuple(cfg["data"]["size"])

    def make():
        return {"frames": torch.rand(n, t, h, w), "spec": torch.rand(n, 1024, 66), "label": torch.randint(0, 3, (n,))}

    return model, lambda m, b: F.cross_entropy(m(b["frames"], b["spec"]), b["label"]), make, n


def image_cases(recipe: str, encoder: str, tiny: bool, batch: int | None, paper: bool = True):
    from sonotell.config import load_config
    from sonotell.methods.deep_cluster import ClusterNet, DeepClusterTask
    from sonotell.methods.finetune_multilabel import MultiLabelNet, build_encoder
    from sonotell.methods.fixmatch import FixMatchTask

    cfg = load_config("methods/deep_cluster", "paper" if paper else "small")
    enc_cfg = {"model": "image_efficientnet_lite0", "config": "paper"} if encoder == "imagenet" else cfg["encoder"]
    h, w = (32, 32) if tiny else tuple(cfg["image_size"])
    k = 5
    if recipe == "deep_cluster":
        n = 8 if tiny else batch or int(cfg["clustering"]["batch_size"])
        task = DeepClusterTask(ClusterNet(build_encoder(enc_cfg), k), config=cfg["clustering"])

        def make():
            return {"image": torch.rand(n, 1, h, w)}

        return task, lambda m, b: m.step(b)["loss"], make, n
    semi = load_config("methods/fixmatch", "paper" if paper else "small")
    n = 2 if tiny else batch or int(semi["batch_size"])
    mu = int(semi.get("unlabelled_ratio", 2))
    task = FixMatchTask(MultiLabelNet(build_encoder(enc_cfg), k), "one_head", config=semi)

    def make():
        return {
            "labelled": {"image": torch.rand(n, 1, h, w), "labels": torch.randint(0, 2, (n, k)).float()},
            "unlabelled": {"image": torch.rand(n * mu, 1, h, w)},
        }

    return task, lambda m, b: m.step(b)["loss"], make, n * (1 + mu)


def downstream_case(encoder: str, tiny: bool, batch: int | None, paper: bool = True):
    from sonotell.config import load_config
    from sonotell.methods.downstream import DownstreamClassifier, model_for_recipe, recipe_config

    cfg = load_config("methods/downstream", "paper" if paper else "small")
    rcfg = recipe_config("av_contrastive", "paper" if paper else "small")
    if encoder == "imagenet":
        rcfg["model"]["video"] = _video_spec(encoder)
    n = 2 if tiny else batch or int(cfg["finetune"]["batch_size"])
    t = 4 if tiny else int(cfg["data"]["n_frames"])
    h, w = (32, 32) if tiny else tuple(cfg["data"]["size"])
    model = DownstreamClassifier(model_for_recipe("av_contrastive", rcfg), 3, torch.rand(1, t, h, w))

    def make():
        return {"frames": torch.rand(n, t, h, w), "label": torch.randint(0, 3, (n,))}

    return model, lambda m, b: F.cross_entropy(m(b["frames"]), b["label"]), make, n


def build_case(recipe: str, encoder: str, mode: str, batch: int | None):
    """``mode``: ``paper`` (paper configs and shapes), ``small`` (small configs and shapes) or ``tiny``."""
    tiny, paper = mode == "tiny", mode == "paper"
    if recipe in ("show_from_tell", "dual", "av_contrastive"):
        return ssl_case(recipe, encoder, tiny, batch, paper)
    if recipe == "voice_label":
        return voice_label_case(encoder, tiny, batch, paper)
    if recipe in ("deep_cluster", "fixmatch"):
        return image_cases(recipe, encoder, tiny, batch, paper)
    if recipe == "downstream":
        return downstream_case(encoder, tiny, batch, paper)
    raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")


def _to(batch, device):
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def train_throughput(
    recipe: str, encoder: str, steps: int, warmup: int, device: torch.device, mode: str, batch: int | None, amp: bool
) -> dict:
    torch.manual_seed(0)
    model, loss_fn, make, per_batch = build_case(recipe, encoder, mode, batch)
    model = model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)
    data = [_to(make(), device) for _ in range(2)]  # two batches, reused: throughput of the step, not of data loading
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = c0 = None
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model, data[i % 2])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "recipe": recipe,
        "encoder": encoder,
        "batch": per_batch,
        "steps": steps,
        "clips_per_s": round(steps * per_batch / seconds, 2),
        "clips_per_cpu_s": round(steps * per_batch / max(cpu, 1e-9), 2),
        "step_ms": round(1000 * seconds / steps, 1),
        "peak_mb": round(_peak_mb(device)),
        "final_loss": round(float(loss.detach()), 4),
        "trainable_params": sum(p.numel() for p in params),
    }


@torch.no_grad()
def encoder_fps(name: str, config: str, device: torch.device, size: int, batch: int, reps: int) -> dict:
    from sonotell.models import create_model

    net = create_model(name, config).to(device).eval()
    x = torch.rand(batch, size, size, device=device)
    net(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        net(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    s, cpu = time.perf_counter() - t0, time.process_time() - c0
    # frames per CPU-second as well: on a shared CPU the wall-clock rate depends on the other jobs
    return {
        "encoder": f"{name} ({config})",
        "size": size,
        "batch": batch,
        "frames_per_s": round(reps * batch / s, 1),
        "frames_per_cpu_s": round(reps * batch / max(cpu, 1e-9), 1),
        "params": sum(p.numel() for p in net.parameters()),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--tiny", action="store_true", help="small configs, tiny inputs (a CPU smoke run)")
    ap.add_argument("--small", action="store_true", help="small configs and their input shapes (CPU throughput)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    ap.add_argument("--batch", type=int, default=None, help="override every recipe's batch size")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    ap.add_argument("--fps-size", type=int, default=224)
    ap.add_argument("--fps-batch", type=int, default=32)
    ap.add_argument("--fps-reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("bench_out/gpu_check.json"))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    mode = "tiny" if args.tiny else ("small" if args.small else "paper")
    print(f"device {device} ({name}), torch {torch.__version__}, {mode} configs, {args.steps} steps", flush=True)
    rows, failures = [], []
    for recipe in filter(None, args.recipes.split(",")):
        for encoder in args.encoders.split(","):
            try:
                r = train_throughput(recipe, encoder, args.steps, args.warmup, device, mode, args.batch, args.amp)
            except Exception as e:  # one recipe's failure (e.g. out of memory) must not hide the others
                failures.append(
                    {"recipe": recipe, "encoder": encoder, "error": f"{e.__class__.__name__}: {str(e)[:200]}"}
                )
                print(f"{recipe:<15} {encoder:<9} FAILED {failures[-1]['error']}", flush=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            rows.append(r)
            print(
                f"{recipe:<15} {encoder:<9} batch {r['batch']:>4}  {r['clips_per_s']:>9.1f} clips/s"
                f" ({r['clips_per_cpu_s']:.1f} per CPU-s)"
                f"  {r['step_ms']:>8.1f} ms/step  peak {r['peak_mb']:>7} MB"
                f"  trainable {r['trainable_params']:>10,}",
                flush=True,
            )
    fps = []
    size = 32 if args.tiny else args.fps_size
    for enc, cfg in (("image_resnet", "paper"), ("image_resnet", "small"), ("image_efficientnet_lite0", "paper")):
        try:
            fps.append(
                encoder_fps(
                    enc, cfg, device, size, 2 if args.tiny else args.fps_batch, 1 if args.tiny else args.fps_reps
                )
            )
            print(
                f"encoder {fps[-1]['encoder']:<36} {size}x{size}: {fps[-1]['frames_per_s']:>9.1f} frames/s"
                f" ({fps[-1]['frames_per_cpu_s']:.1f} per CPU-s)",
                flush=True,
            )
        except Exception as e:
            failures.append(
                {"recipe": "encoder_fps", "encoder": enc, "error": f"{e.__class__.__name__}: {str(e)[:200]}"}
            )
    result = {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "mode": mode,
        "steps": args.steps,
        "amp": args.amp,
        "train": rows,
        "encoder_fps": fps,
        "failures": failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}", flush=True)
    return result


if __name__ == "__main__":
    res = main()
    sys.exit(1 if res["failures"] else 0)
