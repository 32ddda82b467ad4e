"""What export libraries print from C++ (fd 1 and 2) goes to the `core.deploy` log, not the user's terminal."""

from __future__ import annotations

import logging
import os

import pytest

from core.deploy.native_logs import native_output_to_log


def test_native_output_goes_to_the_log_not_the_terminal(capfd, caplog):
    with caplog.at_level(logging.DEBUG, logger='core.deploy'), native_output_to_log('probe'):
        os.write(2, b'I0000 00:00 flatbuffer_export.cc] a notice\n')
        os.write(1, b'(00:00) [START] a progress tree\n')
    out, err = capfd.readouterr()
    assert out == '' and err == ''
    assert [r.getMessage() for r in caplog.records] == ['probe: I0000 00:00 flatbuffer_export.cc] a notice',
                                                        'probe: (00:00) [START] a progress tree']
    os.write(2, b'after\n')  # the descriptors are back
    assert capfd.readouterr().err == 'after\n'


def test_an_error_inside_still_raises_and_restores_the_terminal(capfd):
    with pytest.raises(RuntimeError, match='conversion failed'), native_output_to_log('probe'):
        os.write(2, b'noise\n')
        raise RuntimeError('conversion failed')
    os.write(2, b'visible\n')
    assert capfd.readouterr().err == 'visible\n'
