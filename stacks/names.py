"""The names the stacks, training and the local mode share: one home for each.

The bucket's layout, the metric namespace, the SSM parameters the storage stack publishes and
the classification steps the workflow and the local mode name.
The class names are the model's: they travel in the model record (``class_names``).
"""

from __future__ import annotations

PROJECT_NAME = "scones-unlimited"
METRICS_NAMESPACE = "SconesUnlimited"

# The project bucket's layout.
INCOMING_PREFIX = "incoming/"
DATA_PREFIX = "data/"
MODELS_PREFIX = "models/"
CHECKPOINTS_PREFIX = "checkpoints/"
CAPTURE_PREFIX = "data-capture/"
BATCH_PREFIX = "batch/"
BATCH_RESULTS_PREFIX = "batch-results/"
DRIFT_BASELINE_KEY = "monitoring/baseline/baseline.json"
DRIFT_REPORTS_PREFIX = "monitoring/reports/"

# Training writes the drift baseline beside the model record under this name; synth uploads it
# to DRIFT_BASELINE_KEY (training/drift_baseline.py).
DRIFT_BASELINE_FILE = "drift-baseline.json"

# The SSM parameters under ``/<project_name>`` where training/train.py finds the stack's names.
BUCKET_PARAMETER = "data-bucket-name"
ROLE_PARAMETER = "sagemaker-training-role-arn"

# The classification steps: each is a state of the workflow (and of the batch's item
# processor) and names the function it invokes (``<step>Function``).
SERIALIZE_STEP = "SerializeImage"
CLASSIFY_STEP = "ClassifyImage"
FILTER_STEP = "FilterInferences"
# The filter function's environment variable that holds the confidence threshold.
THRESHOLD_VARIABLE = "THRESHOLD"
# The environment variable of the functions that read the endpoint's answer (classify, filter,
# the drift monitor): the record's class names, comma-separated, in the order of the output.
CLASS_NAMES_VARIABLE = "CLASS_NAMES"


def ssm_prefix(project_name: str = PROJECT_NAME) -> str:
    return f"/{project_name}"
