"""Voice-assisted image labelling (Bonmati et al. 2021) as a recipe.

The method, as the paper states it: a 1 s voice sample (spectrogram, 1024 × 66) and the 25
frames around it (stacked as channels) go through a six-layer 1D voice CNN and a VGG16-style
image CNN; the two feature sequences are joined by a per-channel matrix product C = Q Pᵀ, a
2D convolution and global average pooling give K class scores, trained with class-weighted
cross-entropy (Adam, lr 1e-3, batch 8). Every variant of the paper's Table III is a row:
image+voice, voice only, image only, pretrained voice / image branches, random pairs and
reduced input (3 of the 25 frames). Evaluation: patient-level CV with one prediction vector
pooled over folds, macro P/R/F1, per-class figures, confusion matrix, bootstrap over patients.

The recipe in parts: ``config`` (typed settings), ``samples`` (voice + frames around each spoken
term), ``task`` (the network of a variant, one fold's training, the spoken-word encoder),
``run`` (Table III under patient-level CV), ``report`` (plots, Grad-CAM) and ``single`` (one
variant on every sample, ``sonotell train voice_label``).

Example:
    >>> from sonotell.methods.voice_label import run_experiment
    >>> run_experiment("bench_out/pocus", "runs/voice_label", config="small")  # doctest: +SKIP
    PosixPath('runs/voice_label/results.md')
"""

from sonotell.methods.voice_label.config import (
    CvConfig,
    GradcamConfig,
    KeywordConfig,
    SampleConfig,
    TrainConfig,
    method_config,
    model_config_name,
)
from sonotell.methods.voice_label.report import accuracy_plot, gradcam_examples
from sonotell.methods.voice_label.run import patient_folds, run_experiment
from sonotell.methods.voice_label.samples import (
    SPEC_BINS,
    SPEC_FRAMES,
    Samples,
    VoiceLabelDataset,
    bonmati_spectrogram,
    extract_samples,
    fit_to_length,
    frame_window,
    target_classes,
)
from sonotell.methods.voice_label.single import gradcam_from_checkpoint, load_voice_label, train_voice_label
from sonotell.methods.voice_label.task import (
    build_model,
    forward,
    keyword_checkpoint,
    model_kwargs,
    predict,
    pretrain_keyword_encoder,
    train_fold,
)

__all__ = [
    "SPEC_BINS",
    "SPEC_FRAMES",
    "CvConfig",
    "GradcamConfig",
    "KeywordConfig",
    "SampleConfig",
    "Samples",
    "TrainConfig",
    "VoiceLabelDataset",
    "accuracy_plot",
    "bonmati_spectrogram",
    "build_model",
    "extract_samples",
    "fit_to_length",
    "forward",
    "frame_window",
    "gradcam_examples",
    "gradcam_from_checkpoint",
    "keyword_checkpoint",
    "load_voice_label",
    "method_config",
    "model_config_name",
    "model_kwargs",
    "patient_folds",
    "predict",
    "pretrain_keyword_encoder",
    "run_experiment",
    "target_classes",
    "train_fold",
    "train_voice_label",
]
