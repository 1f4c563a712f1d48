"""The recipes' engine: one config runs data -> build -> gradual unfreezing -> fit -> evaluate -> report -> export.

`tftune train` runs `run_recipe` on a `RecipeConfig` made from its flags and
`--config` file (see `tftune.cli`); the data and model helpers here are the
steps a recipe script calls.
"""

from tftune.recipe.config import (
    LEARNING_RATES,
    MODALITIES,
    MODALITY_OPTIONS,
    SCHEDULES,
    TASK_ONLY_OPTIONS,
    TASKS,
    RecipeConfig,
    auto_schedule,
    check_steps,
    schedule_help,
    unfreezing_schedule,
)
from tftune.recipe.data import (
    IMAGE_DEMO_DATASETS,
    TEXT_DEMO_DATASETS,
    evaluation_data,
    load_splits,
    model_spec,
    prepared_data,
    representative_data,
)
from tftune.recipe.fine_tune import fine_tune
from tftune.recipe.run import (
    ADAPTERS_FILE,
    BACKUP_DIR,
    HISTORY_FILE,
    MODEL_FILE,
    RecipeResult,
    Training,
    next_commands,
    progress_verbosity,
    run_recipe,
    save_model,
    sweep_learning_rate,
    train_on_splits,
)

__all__ = [
    "ADAPTERS_FILE",
    "BACKUP_DIR",
    "HISTORY_FILE",
    "IMAGE_DEMO_DATASETS",
    "LEARNING_RATES",
    "MODALITIES",
    "MODALITY_OPTIONS",
    "MODEL_FILE",
    "SCHEDULES",
    "TASKS",
    "TASK_ONLY_OPTIONS",
    "TEXT_DEMO_DATASETS",
    "RecipeConfig",
    "RecipeResult",
    "Training",
    "auto_schedule",
    "check_steps",
    "evaluation_data",
    "fine_tune",
    "load_splits",
    "model_spec",
    "next_commands",
    "prepared_data",
    "progress_verbosity",
    "representative_data",
    "run_recipe",
    "save_model",
    "schedule_help",
    "sweep_learning_rate",
    "train_on_splits",
    "unfreezing_schedule",
]
