"""Video files through PyAV (FFmpeg): decode frames as arrays, encode upscaled frames, and copy every other stream.

PyAV rather than OpenCV: OpenCV's wheel cannot write H.264 and has no audio. Audio and subtitle packets are
remuxed untouched (byte for byte), and every video frame keeps its input timestamp, so frame count, frame rate
and duration are the input's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from core.errors import UserError
from core.io.pixel_limit import DEFAULT_MAX_MEGAPIXELS, check_pixel_count

if TYPE_CHECKING:  # the command lines import this module to check --input before numpy loads
    import numpy as np

VIDEO_EXTENSIONS = ('.mp4', '.mkv', '.mov', '.m4v', '.avi', '.webm', '.ts', '.mts', '.m2ts', '.flv', '.wmv',
                    '.mpg', '.mpeg', '.3gp', '.ogv')
_COPIED_TYPES = ('audio', 'subtitle')
_EIGHT_BIT_FORMATS = ('yuv420p', 'bgr24', 'rgb24', 'bgr0', 'gbrp')  # what --pix-fmt picks, best first
_DEEP_FORMATS = ('yuv420p10le', 'gbrp10le', 'yuv444p10le')
_YUV420_FAMILY = ('420', 'nv12', 'nv21')


def is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def _av():
    try:
        import av
    except ImportError as err:
        raise UserError(f'video needs PyAV ({err.msg}); pip install -r requirements.txt') from None
    return av


@dataclass
class Frame:
    """One decoded picture as H×W×3 BGR (uint8, or uint16 for deep sources) with its presentation time."""

    bgr: np.ndarray
    pts: int | None


class VideoSource:
    """An opened input: its first video stream is decoded, its audio and subtitle streams are handed on as packets."""

    def __init__(self, path: str, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                 hint: str = 'shrink it first') -> None:
        av = _av()
        self.path = path
        try:
            self.container = av.open(path)
        except av.error.FFmpegError as err:
            raise UserError(f'{path} is not a video PyAV can read ({err.strerror or err}); pass a video file or '
                            'an image') from None
        if not self.container.streams.video:
            self.container.close()
            raise UserError(f'{path} has no video stream; pass a video file')
        self.video = self.container.streams.video[0]
        self.video.thread_type = 'AUTO'  # frame and slice threads in the decoder
        self.copied = [s for s in self.container.streams if s.type in _COPIED_TYPES]
        context = self.video.codec_context
        self.width, self.height = context.width, context.height
        try:
            check_pixel_count(path, self.height, self.width, max_megapixels, hint)
        except UserError:
            self.container.close()
            raise
        fmt = context.format
        self.deep = fmt is not None and max(c.bits for c in fmt.components) > 8

    @property
    def rate(self) -> Fraction | None:
        return self.video.average_rate or self.video.guessed_rate

    @property
    def frame_estimate(self) -> int | None:
        """The container's frame count, or duration × rate, for the progress bar (None when neither is known)."""
        if self.video.frames:
            return self.video.frames
        if self.video.duration and self.rate:
            return round(self.video.duration * self.video.time_base * self.rate)
        if self.container.duration and self.rate:
            return round(self.container.duration / 1_000_000 * self.rate)
        return None

    def items(self) -> Iterator[Frame | object]:
        """Decoded video frames and packets to copy, in the order the file holds them."""
        av = _av()
        layout = 'bgr48le' if self.deep else 'bgr24'
        try:
            for packet in self.container.demux(self.video, *self.copied):
                if packet.stream is self.video:
                    for frame in packet.decode():
                        yield Frame(frame.to_ndarray(format=layout), frame.pts)
                elif packet.dts is not None:  # the demuxer's empty flush packet has none
                    yield packet
        except av.error.InvalidDataError as err:
            raise UserError(f'{self.path} is damaged ({err.strerror or err}); re-encode or replace it') from None

    def close(self) -> None:
        self.container.close()


def pixel_format(codec: str, deep: bool, asked: str | None) -> str:
    """The encoder's pixel format: --pix-fmt if the codec has it, else 10-bit for deep sources, else yuv420p
    (what every player plays), else the codec's first RGB-like format."""
    av = _av()
    try:
        formats = [f.name for f in av.codec.Codec(codec, 'w').video_formats or ()]
    except av.codec.codec.UnknownCodecError:
        raise UserError(f'--codec {codec} is not an encoder in this PyAV build; try libx264, libx265, libsvtav1 '
                        'or libvpx-vp9') from None
    if not formats:
        raise UserError(f'--codec {codec} is not a video encoder; try libx264')
    if asked is not None:
        if asked not in formats:
            raise UserError(f'--codec {codec} cannot write --pix-fmt {asked}; it takes {", ".join(formats)}')
        return asked
    for name in (_DEEP_FORMATS if deep else _EIGHT_BIT_FORMATS):
        if name in formats:
            return name
    if deep:
        raise UserError(f'--codec {codec} writes 8 bits only and the input is 10-bit; pass --codec libx265 (or '
                        'libx264) to keep 10 bits, or --pix-fmt yuv420p to write 8')
    return formats[0]


def is_subsampled(pix_fmt: str) -> bool:
    """Whether the format halves both chroma sides (4:2:0), so it cannot hold an odd width or height."""
    return any(tag in pix_fmt for tag in _YUV420_FAMILY)


class VideoSink:
    """An output file: one encoded video stream at the input's timestamps, plus the input's other streams copied."""

    def __init__(self, path: str, source: VideoSource, width: int, height: int, codec: str, pix_fmt: str,
                 crf: int | None, preset: str | None, shown_as: str | None = None) -> None:
        """`path` may be a temporary file; `shown_as` is the output's name in messages."""
        av = _av()
        self.path = shown_as or path
        if is_subsampled(pix_fmt) and (width % 2 or height % 2):
            raise UserError(f'{source.path}: the output {width}×{height} has an odd side, which {pix_fmt} cannot '
                            'hold; pass --pix-fmt yuv444p, or crop the input to even sides')
        self.container = av.open(path, 'w')
        try:
            self.video = self.container.add_stream(codec, rate=source.rate)
        except ValueError as err:
            self.container.close()
            raise UserError(f'{self.path}: {err}; pick another --codec (.webm takes libvpx-vp9 or libsvtav1)') from None
        self.video.width, self.video.height, self.video.pix_fmt = width, height, pix_fmt
        self.video.time_base = source.video.time_base  # frames keep their input timestamps
        self.video.codec_context.time_base = source.video.time_base
        options = {}
        if crf is not None:
            options['crf'] = str(crf)
        if preset is not None:
            options['preset'] = preset
        self.video.options = options
        self.layout = 'bgr48le' if source.deep else 'bgr24'
        self.container.metadata.update({k: v for k, v in source.container.metadata.items()  # title, date, ...
                                        if k.lower() != 'encoder'})  # the muxer writes its own
        self.copies = {}
        for stream in source.copied:
            try:
                self.copies[stream.index] = self.container.add_stream_from_template(stream)
                self.copies[stream.index].metadata.update(stream.metadata)  # language, title
            except ValueError as err:
                self.container.close()
                raise UserError(f'{self.path} cannot hold the input\'s {stream.type} stream '
                                f'({stream.codec_context.name}: {err}); keep the input\'s container') from None

    def write(self, bgr: np.ndarray, pts: int | None) -> None:
        av = _av()
        frame = av.VideoFrame.from_ndarray(bgr, format=self.layout)
        frame.pts = pts
        frame.time_base = self.video.time_base
        try:
            for packet in self.video.encode(frame):
                self.container.mux(packet)
        except av.error.FFmpegError as err:
            raise UserError(f'{self.video.codec_context.name} failed to encode {self.path}: {err}; try another '
                            '--codec or --pix-fmt') from None

    def copy(self, packet) -> None:
        av = _av()
        packet.stream = self.copies[packet.stream.index]
        try:
            self.container.mux(packet)
        except av.error.FFmpegError as err:
            raise UserError(f'cannot copy a {packet.stream.type} packet into {self.path}: {err}; the input\'s '
                            'stream may be damaged') from None

    def close(self) -> None:
        """Flush the encoder and write the trailer; the file is complete only after this."""
        for packet in self.video.encode():
            self.container.mux(packet)
        self.container.close()

    def abandon(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - a half-written file is deleted by its staging anyway
            pass
