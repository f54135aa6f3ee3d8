"""Training module: data staging, local and SageMaker training, evaluation, model record."""
