"""The key under which every exported file carries its model's description (arch, args, scale, radius, format):
ONNX `metadata_props` and a TFLite metadata entry alike; ExecuTorch programs carry the integers among it as
constant methods of these names."""

META_KEY = 'mobile_sr'
META_METHODS = ('scale', 'num_in_ch', 'radius')
