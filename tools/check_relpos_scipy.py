#!/usr/bin/python3
"""Cross-check `xvlm convert`'s relative-position table interpolation against the
official loader's scipy code path (interp2d 'cubic' on geometric nodes).

Optional tool (not used by the tests): needs Debian's /usr/bin/python3 with torch
and scipy (apt install python3-torch python3-scipy).

    /usr/bin/python3 tools/check_relpos_scipy.py build/xvlm

Writes a tiny-shaped X-VLM checkpoint (Swin window 7, tables 169 x heads 1/2/4/8)
with random tables, converts it to 384 px (window 12) and 480 px (window 15), and
compares every converted table with the official function bit for bit.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch

warnings.filterwarnings('ignore')  # interp2d is deprecated in scipy >= 1.10
from scipy import interpolate  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_torch_checkpoints as mk  # noqa: E402


def official_interpolate(rel_pos_bias, dst_num_pos):
    """The official models/swin_transformer.py interpolate_relative_pos_embed, restated."""
    src_num_pos, num_heads = rel_pos_bias.shape
    src_size, dst_size = int(src_num_pos ** 0.5), int(dst_num_pos ** 0.5)
    if src_size == dst_size:
        return rel_pos_bias
    left, right = 1.01, 1.5
    while right - left > 1e-6:
        q = (left + right) / 2.0
        if (1.0 - q ** (src_size // 2)) / (1.0 - q) > dst_size // 2:
            right = q
        else:
            left = q
    dis, cur = [], 1
    for i in range(src_size // 2):
        dis.append(cur)
        cur += q ** (i + 1)
    x = [-d for d in reversed(dis)] + [0] + dis
    t = dst_size // 2.0
    dx = np.arange(-t, t + 0.1, 1.0)
    out = []
    for h in range(num_heads):
        z = rel_pos_bias[:, h].reshape(src_size, src_size).astype(np.float32)
        f = interpolate.interp2d(x, x, z, kind='cubic')
        out.append(np.asarray(f(dx, dx), dtype=np.float32).reshape(-1, 1))
    return np.concatenate(out, -1)


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        assert e['dtype'] == 'F32' or 'relative_position_bias_table' not in name
        if e['dtype'] == 'F32':
            b, end = e['data_offsets']
            out[name] = np.frombuffer(data[b:end], dtype=np.float32).reshape(e['shape'])
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    xvlm = sys.argv[1]
    sd = mk.xvlm_state_dict(mk.TINY, 'pretrain', torch.float32, seed=11)
    g = torch.Generator().manual_seed(5)
    for k in sd:
        if 'relative_position_bias_table' in k:
            sd[k] = torch.randn(sd[k].shape, generator=g) * 3  # away from the generator's small values
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, 'tiny.th')
        torch.save({'model': sd, 'config': mk.official_config(mk.TINY)}, ckpt)
        for res, window in ((384, 12), (480, 15)):
            out = os.path.join(tmp, f'{res}.safetensors')
            subprocess.run([xvlm, 'convert', ckpt, out, '--image-res', str(res), '--window', str(window),
                            '--text-heads', '2'], check=True, stdout=subprocess.DEVNULL)
            got = read_safetensors(out)
            worst, n_tables, n_values = 0.0, 0, 0
            for k, v in sd.items():
                if 'relative_position_bias_table' not in k:
                    continue
                want = official_interpolate(v.numpy(), (2 * window - 1) ** 2)
                diff = np.abs(got[k] - want)
                worst = max(worst, float(diff.max()))
                bad = int((diff > 0).sum())
                failures += bad
                n_tables += 1
                n_values += diff.size
            print(f'{res} px (window {window}): {n_tables} tables, {n_values} values, '
                  f'max |xvlm - scipy| = {worst:g}, {failures} differ')
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
