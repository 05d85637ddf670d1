"""Ray Train loops: self-supervised pretraining, fine-tuning with spatial cross-validation, evaluation."""
