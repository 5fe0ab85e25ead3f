"""The dataset specs (one YAML per dataset), shipped as package data."""
