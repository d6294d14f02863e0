#!/usr/bin/python3
"""The official test transform timed in Python for comparison with
bench/bench_image.c: PIL open + convert('RGB') + resize((R,R), BICUBIC) +
ToTensor/Normalize (torch, as torchvision does it) on a 640x480 q90 JPEG,
one thread.  Run: /usr/bin/python3 tools/bench_image_pil.py"""
import io
import time

import numpy as np
import torch
from PIL import Image

torch.set_num_threads(1)
h, w = 480, 640
y, x = np.mgrid[0:h, 0:w]
rng = np.random.default_rng(0)
n = rng.integers(-8, 8, (h, w))
img = np.stack([(x * 255 // w + n) & 255, (y * 255 // h + n) & 255, ((x + y) * 128 // (w + h) + 64 + n) & 255], -1)
buf = io.BytesIO()
Image.fromarray(img.astype(np.uint8)).save(buf, 'JPEG', quality=90)
data = buf.getvalue()
mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)


def pipeline(res):
    im = Image.open(io.BytesIO(data)).convert('RGB').resize((res, res), Image.BICUBIC)
    t = torch.from_numpy(np.array(im)).permute(2, 0, 1).float().div(255)
    return t.sub_(mean).div_(std)


def median_time(fn, seconds=1.0):
    fn()
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], min(times)


print(f'PIL {Image.__version__} + torch {torch.__version__}, 640x480 JPEG ({len(data)} bytes), 1 thread')
dec, best = median_time(lambda: Image.open(io.BytesIO(data)).convert('RGB').load())
print(f'  decode only             median {dec * 1e3:7.2f} ms  best {best * 1e3:7.2f} ms  {1 / best:7.1f} images/s (best)')
for res in (224, 384):
    t, best = median_time(lambda: pipeline(res))
    print(f'  full pipeline @{res}       median {t * 1e3:7.2f} ms  best {best * 1e3:7.2f} ms  {1 / best:7.1f} images/s (best)')
