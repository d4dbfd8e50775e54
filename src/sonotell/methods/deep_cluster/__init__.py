"""Deep clustering for organ classification in ultrasound (Dadoun et al. 2023), PICA-style.

The recipe: a ResNet encoder with a softmax cluster head sees two augmentations of each
frame (weak and strong ultrasound augmentations); the cluster prediction matrices P, P'
are trained with PICA's partition-uncertainty cross-entropy ``L_CE`` plus a cluster-size
term, PICA's negative entropy ``L_NE`` or the paper's symmetric Dirichlet prior ``L_SD``
(alpha = 1 + eps):

    loss = L_CE + lambda * L_SD          (lambda = 2)

Clusters are named by a small labelled dev set (``cluster_match``, Algorithm 1); the
clustering encoder initialises multi-label fine-tuning and FixMatch (``finetune_multilabel``,
``fixmatch``). ``run_experiment`` produces the paper's tables on a frame folder.

The recipe in parts: ``model`` (the network), ``task`` (its training objectives and
configs), ``splits`` (subject-level splits), ``run`` (the runs and the experiment grid),
``report`` (summaries, Markdown, plots) and ``speech_labels`` (the speech-label experiment).

Example:
    >>> import torch
    >>> from sonotell.methods.finetune_multilabel import build_encoder
    >>> net = ClusterNet(build_encoder({"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1]}), k=3)
    >>> task = DeepClusterTask(net, config={"prior": "dirichlet", "prior_weight": 2.0})
    >>> sorted(task.step({"image": torch.rand(4, 1, 32, 32)}))
    ['largest_cluster', 'loss', 'loss_ce', 'loss_size']
"""

from sonotell.methods.deep_cluster.model import DEGENERATE_FRACTION, PRIORS, ClusterNet, assign_clusters
from sonotell.methods.deep_cluster.report import paired_clustering, summarise, write_report
from sonotell.methods.deep_cluster.run import SEMISUP_METHODS, cluster_frames, run_experiment, semisup_frames
from sonotell.methods.deep_cluster.speech_labels import run_speech_labels
from sonotell.methods.deep_cluster.splits import Split, labelled_subset, subject_splits
from sonotell.methods.deep_cluster.task import (
    ClusteringConfig,
    DeepClusterTask,
    semisup_config,
    semisup_model,
    size_prior,
    train_clustering,
)

__all__ = [
    "DEGENERATE_FRACTION",
    "PRIORS",
    "SEMISUP_METHODS",
    "ClusterNet",
    "ClusteringConfig",
    "DeepClusterTask",
    "Split",
    "assign_clusters",
    "cluster_frames",
    "labelled_subset",
    "paired_clustering",
    "run_experiment",
    "run_speech_labels",
    "semisup_config",
    "semisup_frames",
    "semisup_model",
    "size_prior",
    "subject_splits",
    "summarise",
    "train_clustering",
    "write_report",
]
