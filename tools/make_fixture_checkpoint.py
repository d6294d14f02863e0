#!/usr/bin/python3
"""Write the official tiny fixture's weights as an official-style PyTorch
checkpoint ({'model': state_dict, 'config': {...}}, torch.save zip format), so
the test suite can check that `xvlm convert` + `xvlm forward` reproduce the
official outputs from a .th file without needing torch in CI.

usage: /usr/bin/python3 tools/make_fixture_checkpoint.py FIXTURE_DIR OUT.th
"""
import collections
import json
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=dtypes[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def main():
    fixture, out = sys.argv[1], sys.argv[2]
    sd = read_safetensors(f"{fixture}/weights.safetensors")
    # The official state_dict order: keep the file's, sorted for determinism.
    sd = collections.OrderedDict(sorted(sd.items()))
    cfg = json.load(open(f"{fixture}/config.json"))
    config = {"image_res": cfg["vision"]["image_res"], "embed_dim": cfg["embed_dim"], "temp": cfg["temp"]}
    torch.save({"model": sd, "config": config}, out)


if __name__ == "__main__":
    main()
