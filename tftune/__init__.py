"""tftune: fine-tune pretrained text and image backbones of every keras-hub family, serve them with TF Serving.

The public API, grouped by what a user does (`__all__` below; the README's API list is the same):
build, train, unfreeze, data, export / serve, report. Workarounds and internals stay in their
modules (`tftune.distribute.AllReplicasLossScaleOptimizer`, `tftune.unfreeze.route_group_optimizers`, ...).
"""

from tftune._backend import ensure_tensorflow_backend

ensure_tensorflow_backend()

from tftune import families  # noqa: E402
from tftune.builders import ModelSpec, build_classifier, build_image_classifier, build_text_classifier  # noqa: E402
from tftune.classifiers import ImageClassifier, ReverseChannels, TextClassifier  # noqa: E402
from tftune.data import (  # noqa: E402
    DatasetUnavailableError,
    DataSplits,
    LabeledImages,
    LabeledTexts,
    PreparedData,
    image_pipelines,
    load_image_splits,
    load_mnist_digits,
    load_rotten_tomatoes,
    load_text_splits,
    text_pipelines,
)
from tftune.distribute import (  # noqa: E402
    KerasMultiWorkerMirroredStrategy,
    device_kind,
    distribute_dataset,
    get_strategy,
    global_batch_size,
    synchronize_batch_normalization,
)
from tftune.export import (  # noqa: E402
    CustomOpReport,
    ExportResult,
    FormatExportResult,
    Prediction,
    ServingModel,
    custom_op_report,
    export_from_file,
    export_model,
    export_saved_model,
    load_keras_model,
    load_serving_model,
    predict_from_saved_model,
    write_models_config,
)
from tftune.families import (  # noqa: E402
    BackboneUnavailableError,
    LayerGroup,
    ResolvedImage,
    ResolvedText,
    TextPreprocessor,
    known_backbones,
    resolve_backbone,
)
from tftune.logs import show_logs  # noqa: E402
from tftune.lora import LoraCheckpoint, enable_lora, load_adapters, save_adapters  # noqa: E402
from tftune.lr_finder import LearningRateSweep, find_learning_rate  # noqa: E402
from tftune.options import DistributionOptions, LoraOptions, OptimizerOptions  # noqa: E402
from tftune.precision import precision_policy, precision_scope  # noqa: E402
from tftune.recipe import (  # noqa: E402
    RecipeConfig,
    RecipeResult,
    auto_schedule,
    evaluation_data,
    fine_tune,
    load_splits,
    next_commands,
    representative_data,
    run_recipe,
    save_model,
    sweep_learning_rate,
)
from tftune.report import EvaluationReport, classification_metrics, evaluate_classifier, write_report  # noqa: E402
from tftune.schedules import WarmupDecay  # noqa: E402
from tftune.train import FitResult, balanced_class_weights, fit  # noqa: E402
from tftune.unfreeze import (  # noqa: E402
    GradualUnfreezing,
    compile_for_unfreezing,
    freeze,
    head_first_schedule,
    parse_schedule,
    spread_schedule,
    trainable_summary,
    unfreeze_all,
    unfreeze_top,
)

__version__ = "0.1.0"

# Grouped by what a user does; the README's "Public API" section lists the same names (tests/public_api_test.py).
API = {
    "build": [
        "families", "build_classifier", "build_text_classifier", "build_image_classifier", "TextClassifier",
        "ImageClassifier", "ModelSpec", "ReverseChannels", "TextPreprocessor", "resolve_backbone", "known_backbones",
        "LayerGroup", "ResolvedText", "ResolvedImage", "BackboneUnavailableError",
    ],
    "train": [
        "fine_tune", "fit", "FitResult", "OptimizerOptions", "DistributionOptions", "LoraOptions", "run_recipe",
        "RecipeConfig", "RecipeResult", "auto_schedule", "balanced_class_weights", "find_learning_rate",
        "LearningRateSweep", "sweep_learning_rate", "WarmupDecay", "enable_lora", "save_adapters", "load_adapters",
        "LoraCheckpoint", "get_strategy", "global_batch_size", "distribute_dataset", "device_kind", "precision_policy",
        "precision_scope", "synchronize_batch_normalization", "KerasMultiWorkerMirroredStrategy", "show_logs",
    ],
    "unfreeze": [
        "GradualUnfreezing", "compile_for_unfreezing", "freeze", "unfreeze_top", "unfreeze_all", "trainable_summary",
        "head_first_schedule", "spread_schedule", "parse_schedule",
    ],
    "data": [
        "load_text_splits", "load_image_splits", "load_rotten_tomatoes", "load_mnist_digits", "load_splits",
        "evaluation_data", "representative_data", "text_pipelines", "image_pipelines", "LabeledTexts",
        "LabeledImages", "DataSplits", "PreparedData", "DatasetUnavailableError",
    ],
    "export / serve": [
        "export_saved_model", "export_model", "export_from_file", "save_model", "load_keras_model",
        "load_serving_model", "predict_from_saved_model", "ServingModel", "Prediction", "ExportResult",
        "FormatExportResult", "CustomOpReport", "custom_op_report", "write_models_config", "next_commands",
    ],
    "report": ["evaluate_classifier", "classification_metrics", "write_report", "EvaluationReport"],
}
__all__ = [name for names in API.values() for name in names]
