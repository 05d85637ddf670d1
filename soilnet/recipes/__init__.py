"""Recipes (shapes, model, SSL stage) and the model bundles built from them: above both models and ssl."""
