"""Soil spectroscopy: spectral library, chemometric preprocessing, spectral VAE, NIR->MIR conversion, models."""
