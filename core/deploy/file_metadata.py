"""The key under which every exported file carries its model's description (arch, args, scale, radius, format):
ONNX `metadata_props` and a TFLite metadata entry alike."""

META_KEY = 'mobile_sr'
