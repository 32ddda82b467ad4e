"""Print edge-SR's published test figures from the authors' results file (data/tests.pkl of their repository).

python scripts/esr_reference.py --results tests.pkl                        # the four reference ids, Set5
python scripts/esr_reference.py --results tests.pkl --dataset Urban100 --ids eSR-TM_s2_K7_C16 Bicubic_s2

The authors publish their figures as a pickled dict, {model_id: {'psnr_Set5': ..., 'parameters': ...}}.
Unpickling runs code named in the file, so this reads it with an unpickler that only builds plain values
(dicts, lists, numbers, strings and numpy scalars) and refuses anything else.
"""

import argparse
import pickle

from core.errors import run_cli  # standard library only: --help still answers before torch loads

REFERENCE_IDS = ('Bicubic_s2', 'eSR-MAX_s2_K3_C1', 'eSR-TM_s2_K7_C16', 'eSR-TR_s2_K7_C16', 'eSR-CNN_s2_C8_D9_S15')
_NUMPY_SCALAR = {('numpy', 'dtype'), ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar')}


class _ValuesOnlyUnpickler(pickle.Unpickler):
    """Builds built-in values and numpy scalars; any other class or function in the file is an error."""

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_SCALAR:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'{module}.{name} is not a plain value')


def read_results(path: str) -> dict[str, dict[str, float]]:
    """The authors' {model_id: {metric: value}} dict, read without running anything from the file."""
    from core.errors import UserError

    try:
        with open(path, 'rb') as handle:
            results = _ValuesOnlyUnpickler(handle).load()
    except FileNotFoundError:
        raise UserError(f'{path} does not exist; pass the data/tests.pkl of the edge-SR repository') from None
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise UserError(f'{path} is not a results file of plain values ({error})') from None
    if not isinstance(results, dict) or not all(isinstance(v, dict) for v in results.values()):
        raise UserError(f'{path} is not a {{model_id: {{metric: value}}}} dict')
    return results


def _figure(value: float | None, digits: int) -> str:
    return '-' if value is None else f'{float(value):.{digits}f}'


def table(results: dict[str, dict[str, float]], ids: list[str], dataset: str) -> list[str]:
    """One line per id: parameters, PSNR and SSIM on `dataset` ('-' where the file has no figure)."""
    lines = [f'{"model":<24} {"params":>8} {"PSNR":>8} {"SSIM":>7}   ({dataset})']
    for model_id in ids:
        row = results.get(model_id)
        if row is None:
            lines.append(f'{model_id:<24} not in the results file')
            continue
        psnr = _figure(row.get(f'psnr_{dataset}'), 3)
        ssim = _figure(row.get(f'ssim_{dataset}'), 4)
        lines.append(f'{model_id:<24} {row.get("parameters", "-"):>8} {psnr:>8} {ssim:>7}')
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--results', required=True, help="the authors' data/tests.pkl")
    parser.add_argument('--ids', nargs='+', default=list(REFERENCE_IDS), help='model ids (default: the reference ids)')
    parser.add_argument('--dataset', default='Set5', help='Set5, Set14, BSDS100, Urban100 or Manga109')
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> None:
    print('\n'.join(table(read_results(args.results), args.ids, args.dataset)))


if __name__ == '__main__':
    arguments = parse_args()
    run_cli(lambda: main(arguments))
