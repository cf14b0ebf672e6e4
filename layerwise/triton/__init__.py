"""``layerwise triton``: a bundle variant as a Triton Inference Server model repository (onnxruntime backend).

repository.py writes the repository (``config.pbtxt``, the graph, the tokenizer); check.py
parses the config with Triton's own ``ModelConfig`` protobuf (from tritonclient) and checks
it against the graph. Imports nothing heavy.
"""
