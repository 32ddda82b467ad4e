"""From a checkpoint to what a phone runs: loading any checkpoint as a deployable network, tiled upscaling,
runtimes behind one interface (torch, onnxruntime, LiteRT), export to ONNX / TFLite and int8 quantization.

Export and runtime packages are optional (`pip install -e .[export]`); `core.deploy.optional` names the extra when
one is missing. Nothing here is imported by `import core.plugin`, so training never pays for it.
"""
