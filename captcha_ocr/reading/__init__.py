"""Reading captchas with a trained model: text table, image preparation, decoding, the reader
and the shipped weights. Needs numpy, Pillow and onnxruntime (or torch for ``.pt`` files), never
Lightning: ``tests/test_layout.py`` holds this package to that."""
