"""Export a model to ONNX or TFLite (fp32 or int8), or its weights to safetensors: python scripts/export.py --help"""

from core.cli.export import main

if __name__ == '__main__':
    main()
