"""Installs the `core` plugin package; the entry scripts (train.py, test.py, converter.py) stay at the top."""

from setuptools import find_packages, setup

setup(
    name='mobile-sr-toolkit',
    version='0.1.0',
    description='Train, exactly reparameterize and evaluate mobile super-resolution networks on basicsr',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.11',
    packages=find_packages(include=['core', 'core.*']),
    package_data={'core': ['training/option_keys.yaml']},
    install_requires=[
        'torch>=2.4',
        'torchvision>=0.19',
        'basicsr>=1.4.2,<1.5',
        'numpy>=1.24',
        'opencv-python>=5.0',  # imdecodeWithMetadata and imwriteWithMetadata: EXIF and ICC kept
        'scikit-image>=0.21',
        'pillow>=10',
        'lmdb>=1.4',
        'tqdm>=4.60',
        'PyYAML>=6.0',
        'optuna>=3.6',
        'onnx>=1.15',
        'safetensors>=0.4',
        'av>=14',  # video; its wheel carries FFmpeg with the GPL x264/x265 encoders
        'psutil>=5.9',  # the memory available, for scripts/upscale.py's plan
    ],
    extras_require={
        # scripts/export.py, scripts/upscale.py --backend, scripts/benchmark_models.py; core.deploy.optional names it
        'export': ['onnxruntime>=1.20', 'onnxscript>=0.5', 'litert-torch>=0.10', 'ai-edge-litert>=2.0',
                   'torchao>=0.14', 'matplotlib>=3.8'],
        # one per runtime apps ship (scripts/export.py --format, scripts/upscale.py --backend)
        'ncnn': ['pnnx>=20261020', 'ncnn>=1.0.20261020'],
        'executorch': ['executorch>=1.5', 'torchao>=0.18'],
        'coreml': ['coremltools>=9.0'],
        'openvino': ['openvino>=2026.0'],
        'dev': ['pytest>=8', 'ruff>=0.6', 'import-linter>=2.10'],
    },
)
