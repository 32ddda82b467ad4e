"""From a checkpoint to what a phone or app runs: loading any checkpoint as a deployable network, tiled upscaling,
runtimes behind one interface (torch, onnxruntime, LiteRT, ncnn, ExecuTorch, OpenVINO), export to those formats
and Core ML, int8 quantization and QAT.

Export and runtime packages are optional (`pip install -e .[export]`, and one extra per runtime);
`core.deploy.optional` names the extra when one is missing. Nothing here is imported by `import core.plugin`, so
training never pays for it (QAT imports what it needs when a run asks for it).
"""
