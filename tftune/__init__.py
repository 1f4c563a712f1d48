"""tftune: fine-tune pretrained text and image backbones of every keras-hub family, serve them with TF Serving."""

from tftune._backend import ensure_tensorflow_backend

ensure_tensorflow_backend()

from tftune import families  # noqa: E402
from tftune.builders import (  # noqa: E402
    ImageClassifier,
    ModelSpec,
    ReverseChannels,
    TextClassifier,
    build_classifier,
    build_image_classifier,
    build_text_classifier,
)
from tftune.cli import show_logs  # noqa: E402
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
    AllReplicasLossScaleOptimizer,
    KerasMultiWorkerMirroredStrategy,
    device_kind,
    distribute_dataset,
    get_strategy,
    global_batch_size,
    precision_policy,
    precision_scope,
    synchronize_batch_normalization,
    use_all_replicas_loss_scaling,
)
from tftune.export import (  # noqa: E402
    CustomOpReport,
    ExportResult,
    Prediction,
    ServingModel,
    custom_op_report,
    export_from_file,
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
from tftune.lora import LoraCheckpoint, enable_lora, load_adapters, save_adapters  # noqa: E402
from tftune.lr_finder import LearningRateSweep, find_learning_rate  # noqa: E402
from tftune.recipe import (  # noqa: E402
    RecipeConfig,
    RecipeResult,
    auto_schedule,
    fine_tune,
    load_splits,
    next_commands,
    run_recipe,
    save_model,
)
from tftune.report import (  # noqa: E402
    EvaluationReport,
    classification_metrics,
    evaluate_classifier,
    write_report,
)
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
