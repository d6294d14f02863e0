#!/usr/bin/python3
"""Generate tests/data/augment/expected.safetensors: the official RandomAugment
ops (X-VLM's dataset/randaugment.py, run as is with numpy + OpenCV) applied with
the M=7 magnitudes to small test images.

Needs a checkout of the official repository (for dataset/randaugment.py) and
Debian's python3-opencv + python3-numpy:
    /usr/bin/python3 tools/make_augment_cases.py /path/to/X-VLM tests/data/augment

Tensors (U8 [H,W,3]): `src.<img>` the inputs; `<img>.<Op>[.<arg>]` the outputs."""
import importlib.util
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torchref'))
import safetensors_io  # noqa: E402  (tools/torchref: the one safetensors writer)


def load_official(repo):
    path = os.path.join(repo, 'dataset', 'randaugment.py')
    spec = importlib.util.spec_from_file_location('official_randaugment', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_images():
    rng = np.random.default_rng(7)
    h, w = 47, 61
    y, x = np.mgrid[0:h, 0:w]
    smooth = np.stack([128 + 100 * np.sin(x / 4.0) * np.cos(y / 6.0), 255 * x / (w - 1), 255 * y / (h - 1)], -1)
    noisy = np.clip(smooth + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    # a channel without 0 (AutoContrast's wrap-around), a constant channel, a narrow one
    low = noisy.copy()
    low[..., 0] = np.clip(low[..., 0], 40, 220)
    low[..., 1] = 77
    low[..., 2] = 100 + low[..., 2] // 16
    # few distinct values: Equalize's step can be 0
    few = np.zeros((h, w, 3), np.uint8)
    few[:, : w // 2] = 200
    few[0, 0] = (3, 3, 3)
    return {'noisy': noisy, 'low': low, 'few': few}


def main():
    repo, out = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else 'tests/data/augment')
    ra = load_official(repo)
    os.makedirs(out, exist_ok=True)
    level = 7
    # the magnitudes exactly as the official level_to_args compute them
    enhance = (level / ra.MAX_LEVEL) * 1.8 + 0.1
    shear = (level / ra.MAX_LEVEL) * 0.3
    translate = (level / ra.MAX_LEVEL) * float(ra.translate_const)
    rotate = (level / ra.MAX_LEVEL) * 30
    fill = ra.replace_value
    cases = {
        'AutoContrast': lambda im: ra.autocontrast_func(im),
        'Equalize': lambda im: ra.equalize_func(im),
        'Brightness': lambda im: ra.brightness_func(im, enhance),
        'Sharpness': lambda im: ra.sharpness_func(im, enhance),
        'ShearX.pos': lambda im: ra.shear_x_func(im, shear, fill),
        'ShearX.neg': lambda im: ra.shear_x_func(im, -shear, fill),
        'ShearY.pos': lambda im: ra.shear_y_func(im, shear, fill),
        'ShearY.neg': lambda im: ra.shear_y_func(im, -shear, fill),
        'TranslateX.pos': lambda im: ra.translate_x_func(im, translate, fill),
        'TranslateX.neg': lambda im: ra.translate_x_func(im, -translate, fill),
        'TranslateY.pos': lambda im: ra.translate_y_func(im, translate, fill),
        'TranslateY.neg': lambda im: ra.translate_y_func(im, -translate, fill),
        'Rotate.pos': lambda im: ra.rotate_func(im, rotate, fill),
        'Rotate.neg': lambda im: ra.rotate_func(im, -rotate, fill),
    }
    tensors = {}
    for iname, img in test_images().items():
        tensors['src.' + iname] = img
        for cname, fn in cases.items():
            if iname != 'noisy' and not cname.startswith(('AutoContrast', 'Equalize', 'Brightness')):
                continue
            with np.errstate(over='ignore'):
                tensors[f'{iname}.{cname}'] = fn(img.copy())
    safetensors_io.write(os.path.join(out, 'expected.safetensors'),
                         {k: np.asarray(v, dtype=np.uint8) for k, v in tensors.items()})
    print(f'{len(tensors)} tensors written to {out}')


if __name__ == '__main__':
    main()
