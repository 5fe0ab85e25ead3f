"""Exporters: SavedModel (savedmodel), TFLite (tflite; its files read without tensorflow
by tflite_file and tflite_ops) and ONNX (onnx), all from the I/O contract of
fomm_convert.signatures; metadata says what each file holds."""
