"""A short test clip made here, so video tests and benchmarks need no downloaded footage: a camera pan across a
scikit-image photograph (real texture, so the encoder works as hard as on footage), a sine tone as audio, and
optionally two SubRip captions."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction

import cv2
import numpy as np

from core.data.demo_data import load_bgr

AUDIO_RATE = 48_000
_AUDIO_FRAME = 1024  # samples per AAC frame


def _pan_frames(height: int, width: int, count: int) -> list[np.ndarray]:
    """`count` BGR frames of height×width, moving 2 pixels right and 1 down per frame over the astronaut."""
    photo = load_bgr('astronaut')
    travel = 2 * count
    zoom = max((width + travel) / photo.shape[1], (height + count) / photo.shape[0])
    photo = cv2.resize(photo, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_CUBIC)
    return [np.ascontiguousarray(photo[i:i + height, 2 * i:2 * i + width]) for i in range(count)]


CAPTIONS = '1\n00:00:00,000 --> 00:00:00,500\nHello\n\n2\n00:00:00,600 --> 00:00:01,200\nfrom the test clip\n'


@contextlib.contextmanager
def _captions_file() -> Iterator[str]:
    """CAPTIONS as a .srt file: FFmpeg's SubRip encoder wants a header PyAV cannot give, so the captions are
    demuxed from a file and remuxed."""
    fd, path = tempfile.mkstemp(suffix='.srt')
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(CAPTIONS)
        yield path
    finally:
        os.remove(path)


def write_demo_clip(path: str, height: int = 180, width: int = 320, seconds: float = 2.0, fps: int = 30,
                    audio: bool = True, ten_bit: bool = False, codec: str = 'libx264',
                    pix_fmt: str | None = None, captions: bool = False) -> int:
    """Write the clip (H.264 yuv420p by default, AAC stereo, SubRip captions in containers that hold them, such as
    .mkv); returns its frame count."""
    import av

    count = round(seconds * fps)
    with contextlib.ExitStack() as stack:
        container = stack.enter_context(av.open(path, 'w'))
        container.metadata['title'] = 'demo clip'
        srt = stack.enter_context(av.open(stack.enter_context(_captions_file()))) if captions else None
        video = container.add_stream(codec, rate=Fraction(fps))
        video.width, video.height = width, height
        video.pix_fmt = pix_fmt or ('yuv420p10le' if ten_bit else 'yuv420p')
        video.options = {'crf': '20'}
        sound = None
        if audio:
            sound = container.add_stream('aac', rate=AUDIO_RATE)
            sound.layout = 'stereo'
            sound.metadata['language'] = 'eng'
        caption_stream = container.add_stream_from_template(srt.streams[0]) if srt else None  # before any packet
        for frame in _pan_frames(height, width, count):
            layout = 'bgr24'
            if ten_bit:
                frame, layout = frame.astype(np.uint16) * 257, 'bgr48le'
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format=layout)):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = np.arange(round(seconds * AUDIO_RATE))
            tone = (0.2 * np.sin(2 * np.pi * 440 * samples / AUDIO_RATE)).astype(np.float32)
            for start in range(0, len(tone), _AUDIO_FRAME):
                chunk = tone[start:start + _AUDIO_FRAME]
                chunk = np.pad(chunk, (0, _AUDIO_FRAME - len(chunk)))
                block = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format='fltp', layout='stereo')
                block.sample_rate = AUDIO_RATE
                block.pts = start
                for packet in sound.encode(block):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
        if srt is not None:
            for packet in srt.demux():
                if packet.dts is not None:
                    packet.stream = caption_stream
                    container.mux(packet)
    return count
