"""Exporters: SavedModel, TFLite and ONNX, all from the same model functions."""
