"""``sonotell cluster`` and ``sonotell semisup``: deep clustering and multi-label semi-supervised
learning on a folder of frames (Dadoun et al. 2023). ``sonotell experiment deep_cluster`` runs
the paper's full tables."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.ui import OVERRIDE_HELP, SEED_HELP, console, path_option, print_table, progress_bar, seed_everything

FRAMES_HELP = "Frame folder: frameset.npz, or images/*/*.jpg with RGB organ masks in annotations/*/*.png."


def register(app: typer.Typer) -> None:
    """Add ``cluster`` and ``semisup`` to the main app."""

    @app.command()
    def cluster(
        frames: Path = typer.Argument(..., help=FRAMES_HELP),
        out: Path = typer.Option(Path("runs/cluster"), "--out", help="Output folder (checkpoint, assignments.csv, clusters.json)."),
        k: int = typer.Option(0, "--k", help="Number of clusters; 0 = number of frequent label combinations of the labelled frames."),
        prior: str = typer.Option("dirichlet", "--prior", help="Cluster-size term: dirichlet (L_SD) or negative_entropy (PICA's L_NE)."),
        config: str = typer.Option("small", "--config", help="deep_cluster config (paper or small) or a YAML path."),
        override: list[str] = typer.Option([], "--set", help=OVERRIDE_HELP),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    ) -> None:
        """Cluster frames with PICA + a cluster-size prior; name clusters from the labelled frames (Algorithm 1)."""
        import numpy as np
        import pandas as pd
        import torch

        from sonotell.config import load_config
        from sonotell.files import atomic_path, output_lock, refuse_overwriting_inputs, write_json
        from sonotell.methods import cluster_match
        from sonotell.methods.deep_cluster import assign_clusters, train_clustering
        from sonotell.methods.finetune_multilabel import load_frames

        seed_everything(seed)
        torch.manual_seed(seed)
        cfg = load_config("methods/deep_cluster", config, [*override, f"clustering.prior={prior}"])
        with progress_bar("loading frames") as progress:
            fs = load_frames(frames, tuple(cfg["image_size"]), progress, **_loader_kwargs(frames, cfg))
        lab = np.flatnonzero(fs.labelled)
        if k <= 0:
            if not len(lab):
                raise typer.BadParameter("no labelled frames to choose K from; pass --k", param_hint="--k")
            k = cluster_match.choose_k(fs.labels[lab], int(cfg["clustering"]["min_combination_count"]), len(fs.images))
        refuse_overwriting_inputs([out], [frames, path_option(config)])
        with output_lock(out), progress_bar(f"clustering (K={k}, {prior})") as progress:
            model = train_clustering(fs, np.arange(len(fs.images)), k, cfg, out_dir=out, seed=seed, progress=progress)
        ids = assign_clusters(model, fs.images)
        table = pd.DataFrame({"name": fs.names, "subject_id": fs.groups, "cluster": ids})
        with atomic_path(out / "assignments.csv") as tmp:
            table.to_csv(tmp, index=False)
        rows = [{"cluster": c, "frames": int((ids == c).sum())} for c in range(model.k)]
        if len(lab):
            soft = cluster_match.match_clusters(ids[lab], fs.labels[lab], model.k)
            for r in rows:
                r.update({name: float(v) for name, v in zip(fs.classes, soft[r["cluster"]])})
        write_json(out / "clusters.json", {"k": model.k, "prior": prior, "classes": fs.classes, "clusters": rows})
        print_table("clusters (organ frequency among labelled frames)", rows)
        console.print(f"wrote {out / 'assignments.csv'}, {out / 'clusters.json'}, {out / 'cluster_model.pt'}")

    @app.command()
    def semisup(
        frames: Path = typer.Argument(..., help=FRAMES_HELP),
        method: str = typer.Option("two_head", "--method", help="supervised, one_head or two_head (FixMatch)."),
        init: str = typer.Option("random", "--init", help="Encoder init: random, or a checkpoint path (e.g. from `sonotell cluster`)."),
        fraction: float = typer.Option(1.0, "--fraction", help="Fraction of the labelled training frames used as labels."),
        fold: int = typer.Option(0, "--fold", help="Which subject-level split (test = block FOLD, validation = the next)."),
        out: Path = typer.Option(Path("runs/semisup"), "--out", help="Output folder (checkpoints, report.json)."),
        config: str = typer.Option("small", "--config", help="fixmatch config (paper or small) or a YAML path."),
        override: list[str] = typer.Option([], "--set", help=OVERRIDE_HELP),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    ) -> None:
        """Multi-label fine-tuning or FixMatch on one subject-level split; per-class P/R/F1 on test."""
        import numpy as np
        import torch

        from sonotell.config import load_config
        from sonotell.eval.multilabel import evaluate_multilabel
        from sonotell.files import output_lock, refuse_overwriting_inputs, write_json
        from sonotell.methods import cluster_match
        from sonotell.methods.deep_cluster import labelled_subset, subject_splits
        from sonotell.methods.finetune_multilabel import FinetuneTask, MultiLabelNet, build_encoder, encoder_state_from, load_frames, predict_scores, train_multilabel
        from sonotell.methods.fixmatch import VARIANTS, FixMatchTask

        if method not in ("supervised", *VARIANTS):
            raise typer.BadParameter(f"{method!r}: choose supervised, one_head or two_head", param_hint="--method")
        seed_everything(seed)
        torch.manual_seed(seed)
        dc_cfg = load_config("methods/deep_cluster", "small")
        cfg = load_config("methods/fixmatch", config, override)
        with progress_bar("loading frames") as progress:
            fs = load_frames(frames, tuple(dc_cfg["image_size"]), progress, **_loader_kwargs(frames, dc_cfg))
        splits = subject_splits(fs, int(dc_cfg["experiment"]["folds"]), seed)
        if not 0 <= fold < len(splits):
            raise typer.BadParameter(f"{len(splits)} folds available", param_hint="--fold")
        split = splits[fold]
        labelled = labelled_subset(split.train, fraction, seed)
        pool = np.concatenate([split.pool, np.setdiff1d(split.train, labelled)])
        combos = combo_ids = None
        if method == "two_head":
            combos = cluster_match.frequent_combinations(fs.labels[labelled], int(cfg.get("min_combination_count", 1)))
            combo_ids = cluster_match.combination_index(fs.labels[labelled], combos)
        net = MultiLabelNet(build_encoder(dc_cfg["encoder"]), len(fs.classes), 0 if combos is None else len(combos))
        if init != "random":
            net.encoder.load_state_dict(encoder_state_from(init))
        task = FinetuneTask(net, cfg.get("optimizer"), config=cfg, seed=seed) if method == "supervised" else \
            FixMatchTask(net, method, None if combos is None else torch.from_numpy(combos), cfg.get("optimizer"), cfg, seed)
        refuse_overwriting_inputs([out], [frames, path_option(config), None if init == "random" else Path(init)])
        with output_lock(out), progress_bar(f"{method} ({len(labelled)} labelled, {len(pool)} unlabelled)") as progress:
            train_multilabel(task, fs, labelled, config=cfg, out_dir=out, seed=seed,
                             unlabelled_idx=None if method == "supervised" else pool, combination_ids=combo_ids, progress=progress)
        rep = evaluate_multilabel(fs.labels[split.val], predict_scores(net, fs.images[split.val]),
                                  fs.labels[split.test], predict_scores(net, fs.images[split.test]), fs.classes)
        rep.update({"method": method, "init": init, "fraction": fraction, "fold": fold, "test_subjects": split.test_groups, "seed": seed})
        write_json(out / "report.json", rep)
        rows = [{"class": c, **v} for c, v in rep["per_class"].items()] + [{"class": "weighted", **rep["weighted"]}]
        print_table(f"{method}, {init} init, {fraction:g} labelled - test subjects {', '.join(split.test_groups)}", rows)
        console.print(f"wrote {out / 'report.json'}")


def _loader_kwargs(frames: Path, cfg: dict) -> dict:
    return {"min_area_fraction": float(cfg["data"]["min_area_fraction"])} if (Path(frames) / "images").is_dir() else {}
