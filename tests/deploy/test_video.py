"""Video: frames, timestamps and audio survive upscaling; a frame equals the image path's output; bad inputs."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from basicsr.archs import build_network

from conftest import assert_one_line_error, perturb, run_repo_script, tiny_etds
from core.data.demo_clip import write_demo_clip
from core.deploy.images import picture_to_array, read_picture
from core.deploy.runtimes import TorchRuntime
from core.deploy.upscaling import upscale_picture
from core.deploy.video_upscaling import VideoSettings, upscale_video
from core.errors import UserError
from core.io.checkpoint import save_checkpoint
from core.io.video import pixel_format


def _checkpoint(tmp_path, scale: int = 2) -> str:
    net = perturb(build_network(tiny_etds(scale)), 0.05)
    args = {k: v for k, v in tiny_etds(scale).items() if k != 'type'}
    path = str(tmp_path / f'etds_x{scale}.pth')
    save_checkpoint(path, net.state_dict(), {'arch': 'ETDS', 'args': args})
    return path


def _runtime(tmp_path, scale: int = 2) -> TorchRuntime:
    from core.deploy.model import load_deploy_model

    return TorchRuntime(load_deploy_model(_checkpoint(tmp_path, scale), None))


def _streams(path) -> dict:
    """What must survive: video size, frame timestamps, duration, and the audio packets' bytes and timestamps."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(video=0)]
        size = (video.codec_context.width, video.codec_context.height)
        duration, rate, time_base = video.duration, video.average_rate, video.time_base
        tags = {'title': container.metadata.get('title'),
                'languages': [s.metadata.get('language') for s in container.streams if s.type != 'video']}
    copied = {}
    for kind in ('audio', 'subtitles'):
        with av.open(str(path)) as container:
            streams = getattr(container.streams, kind)[:1]
            packets = container.demux(*streams) if streams else []
            copied[kind] = [(bytes(p), p.pts) for p in packets if p.dts is not None]
    return {'size': size, 'pts': pts, 'duration': duration, 'rate': rate, 'time_base': time_base, 'tags': tags,
            **copied}


@pytest.mark.slow
@pytest.mark.parametrize('backend, name', [('torch', 'clip.mkv'), ('onnxruntime', 'clip.mp4')])
def test_a_clip_keeps_its_frames_duration_audio_and_captions(tmp_path, backend, name):
    clip = tmp_path / name
    captions = name.endswith('.mkv')  # MP4 holds no SubRip
    assert write_demo_clip(str(clip), height=36, width=64, seconds=2.0, captions=captions) == 60
    result = run_repo_script('scripts/upscale.py', '--model', _checkpoint(tmp_path), '--input', str(clip),
                             '--output', str(tmp_path / 'out'), '--backend', backend)
    assert result.returncode == 0, result.stderr
    assert 'wrote' in result.stdout and '60 frames' in result.stdout
    before, after = _streams(clip), _streams(tmp_path / 'out' / name)
    assert after['size'] == (128, 72)
    assert len(after['pts']) == 60 and after['pts'] == before['pts']
    for key in ('duration', 'rate', 'time_base', 'tags'):
        assert after[key] == before[key], key
    assert before['tags']['title'] == 'demo clip' and before['tags']['languages'][0] == 'eng'
    with av.open(str(clip)) as source, av.open(str(tmp_path / 'out' / name)) as output:
        assert abs(output.duration - source.duration) <= 1000  # container duration, µs
    assert len(before['audio']) > 90 and after['audio'] == before['audio']  # byte for byte, same timestamps
    assert after['subtitles'] == before['subtitles'] and len(before['subtitles']) == (2 if captions else 0)
    assert [p.name for p in (tmp_path / 'out').iterdir()] == [name]


def test_every_frame_equals_the_image_path(tmp_path):
    """Losslessly encoded (FFV1, RGB), the output frames are exactly what the image path makes of each frame."""
    clip = tmp_path / 'clip.mkv'
    write_demo_clip(str(clip), height=20, width=30, seconds=0.2, audio=False)
    runtime = _runtime(tmp_path)
    settings = VideoSettings(codec='ffv1', crf=None, pix_fmt='bgr0', tile=(8, 8), pad=runtime.radius)
    result = upscale_video(str(clip), str(tmp_path / 'out.mkv'), runtime, settings)
    assert result.frames == 6 and result.copied_packets == 0
    with av.open(str(clip)) as source, av.open(str(tmp_path / 'out.mkv')) as output:
        inputs = [f.to_ndarray(format='bgr24') for f in source.decode(video=0)]
        outputs = [f.to_ndarray(format='bgr24') for f in output.decode(video=0)]
    assert len(outputs) == 6
    for i, (frame, upscaled) in enumerate(zip(inputs, outputs, strict=True)):
        cv2.imwrite(str(tmp_path / f'{i}.png'), frame)
        picture = upscale_picture(read_picture(str(tmp_path / f'{i}.png')), runtime, None, runtime.radius)
        assert np.array_equal(upscaled, picture_to_array(picture)), i


def test_ten_bit_input_stays_ten_bit(tmp_path):
    clip = tmp_path / 'deep.mp4'
    write_demo_clip(str(clip), height=16, width=24, seconds=0.1, audio=False, ten_bit=True)
    upscale_video(str(clip), str(tmp_path / 'out.mp4'), _runtime(tmp_path), VideoSettings(pad=6))
    with av.open(str(tmp_path / 'out.mp4')) as output:
        stream = output.streams.video[0]
        assert stream.codec_context.pix_fmt == 'yuv420p10le'
        assert len(list(output.decode(video=0))) == 3
    with pytest.raises(UserError, match='writes 8 bits only and the input is 10-bit'):
        pixel_format('mpeg4', True, None)


def test_an_odd_output_is_refused_in_one_line_or_written_in_444(tmp_path):
    clip = tmp_path / 'odd.mp4'
    write_demo_clip(str(clip), height=15, width=21, seconds=0.1, audio=False, pix_fmt='yuv444p')
    runtime = _runtime(tmp_path, scale=3)
    with pytest.raises(UserError, match=r'the output 63×45 has an odd side.*--pix-fmt yuv444p'):
        upscale_video(str(clip), str(tmp_path / 'out' / 'odd.mp4'), runtime, VideoSettings(pad=6))
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())
    upscale_video(str(clip), str(tmp_path / 'out' / 'odd.mp4'), runtime, VideoSettings(pix_fmt='yuv444p', pad=6))
    assert _streams(tmp_path / 'out' / 'odd.mp4')['size'] == (63, 45)


class _FailsOnFrame:
    """A runtime that breaks on its n-th call, as a crashed delegate or a Ctrl-C would."""

    def __init__(self, runtime, fail_at: int) -> None:
        self.runtime, self.calls, self.fail_at = runtime, 0, fail_at
        self.scale, self.num_in_ch, self.fixed_size, self.max_size = runtime.scale, 3, None, None

    def __call__(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return self.runtime(x)


def test_an_interrupted_video_leaves_nothing(tmp_path):
    clip = tmp_path / 'clip.mp4'
    write_demo_clip(str(clip), height=16, width=24, seconds=1.0)
    out = tmp_path / 'out'
    with pytest.raises(KeyboardInterrupt):
        upscale_video(str(clip), str(out / 'clip.mp4'), _FailsOnFrame(_runtime(tmp_path), 12), VideoSettings(pad=6))
    assert list(out.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize('make, extra, message', [
    ('text', [], 'is not a video PyAV can read'),
    ('audio only', [], 'has no video stream'),
    ('no pictures', [], 'no video frame could be decoded'),
    ('clip', ['--output', '{folder}'], 'would overwrite its input'),
    ('clip', ['--codec', 'nosuchcodec'], 'is not an encoder in this PyAV build'),
    ('clip', ['--codec', 'libx264', '--pix-fmt', 'rgb24'], 'cannot write --pix-fmt rgb24'),
])
def test_bad_videos_fail_in_one_line_and_leave_nothing(tmp_path, make, extra, message):
    folder = tmp_path / 'in'
    folder.mkdir()
    clip = folder / 'clip.mp4'
    if make == 'text':
        clip.write_text('not a video\n')
    elif make in ('audio only', 'no pictures'):
        with av.open(str(clip), 'w', format='matroska' if make == 'no pictures' else None) as container:
            if make == 'no pictures':  # a video stream in the header, no packets (MP4 would drop the stream)
                video = container.add_stream('mpeg4', rate=30)
                video.width, video.height = 16, 16
            stream = container.add_stream('aac', rate=48000)
            silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format='fltp', layout='mono')
            silence.sample_rate = 48000
            for packet in [*stream.encode(silence), *stream.encode(None)]:
                container.mux(packet)
    else:
        write_demo_clip(str(clip), height=16, width=24, seconds=0.2)
    argv = ['--model', _checkpoint(tmp_path), '--input', str(clip), '--output', str(tmp_path / 'out')]
    result = run_repo_script('scripts/upscale.py', *argv, *[a.format(folder=folder) for a in extra])
    assert_one_line_error(result, message)
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ['clip.mp4']


def test_a_codec_the_container_cannot_hold_is_refused_naming_the_output(tmp_path):
    clip = tmp_path / 'clip.webm'
    write_demo_clip(str(clip), height=16, width=24, seconds=0.1, audio=False, codec='libvpx-vp9')
    out = tmp_path / 'out'
    with pytest.raises(UserError, match=r"^.*out/clip\.webm: 'webm' format does not support 'libx264'.*libvpx-vp9"):
        upscale_video(str(clip), str(out / 'clip.webm'), _runtime(tmp_path), VideoSettings(pad=6))
    assert list(out.iterdir()) == []
    upscale_video(str(clip), str(out / 'clip.webm'), _runtime(tmp_path), VideoSettings('libvpx-vp9', pad=6))
    assert _streams(out / 'clip.webm')['size'] == (48, 32)
