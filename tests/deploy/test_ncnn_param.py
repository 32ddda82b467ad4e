"""Reading ncnn .param files: blob renaming, input channels and the receptive-field radius from the layers."""

import pytest

from core.deploy.ncnn_param import input_channels, parse_layers, receptive_radius, rename_blobs


def _param(*layers: str) -> str:
    return '\n'.join(['7767517', f'{len(layers)} {len(layers)}', *layers]) + '\n'


def test_radius_counts_convs_after_a_pixel_shuffle_in_input_pixels():
    text = _param('Input in0 0 1 in0',
                  'Convolution c1 1 1 in0 1 0=16 1=3 11=3 6=432',  # 3×3 on the input: 1
                  'Convolution c2 1 1 1 2 0=16 1=5 2=2 6=6400',  # 5×5 dilated 2: 4 more
                  'PixelShuffle ps 1 1 2 3 0=2',
                  'Convolution c3 1 1 3 out0 0=3 1=3 6=108')  # 3×3 at twice the resolution: half an input pixel
    assert receptive_radius(text) == 6  # ceil(1 + 4 + 0.5)


def test_radius_takes_the_longest_of_two_branches_and_a_deconvolution():
    text = _param('Input in0 0 1 in0', 'Split s 1 2 in0 a b',
                  'Convolution c1 1 1 a c 0=3 1=7 6=441',
                  'BinaryOp add 2 1 b c d 0=0',
                  'Deconvolution up 1 1 d out0 0=3 1=9 3=4 6=243')  # 9 taps over stride 4: one input pixel
    assert receptive_radius(text) == 4


def test_an_unknown_layer_gives_no_radius_rather_than_a_wrong_one():
    assert receptive_radius(_param('Input in0 0 1 in0', 'Pooling p 1 1 in0 out0 0=0 1=3')) is None


def test_blobs_are_renamed_everywhere_and_params_untouched():
    text = _param('Input in0 0 1 in0', 'Convolution c 1 1 in0 out0 0=12 1=3 6=324 -23310=1,-233')
    renamed = rename_blobs(text, {'in0': 'data', 'out0': 'output'})
    layers = parse_layers(renamed)
    assert layers[0].tops == ['data'] and layers[1].bottoms == ['data'] and layers[1].tops == ['output']
    assert layers[1].params == {'0': '12', '1': '3', '6': '324', '-23310': '1,-233'}


def test_input_channels_are_read_through_splits_crops_and_spatial_concatenations():
    text = _param('Input in0 0 1 in0', 'Split s 1 2 in0 a b',
                  'Crop edge 1 1 a c -23309=1,0 -23310=1,1 -23311=1,1',
                  'Concat pad 2 1 c b d 0=1',  # along height: channels kept
                  'ConvolutionDepthWise dw 1 1 d out0 0=6 1=5 11=5 6=150 7=3')
    assert input_channels(parse_layers(text), 'in0') == 3


def test_a_file_that_is_not_ncnn_is_named():
    with pytest.raises(ValueError, match='not an ncnn .param file'):
        parse_layers('<?xml version="1.0"?>\n<net/>\n')
