#!/usr/bin/python3
"""Generate tests/data/images: small JPEG/PNG files of every kind the decoder
handles, with PIL's reading of them as the reference.

Run with Debian's interpreter (python3-pil 9.4, numpy), from the repository root:
    /usr/bin/python3 tools/make_image_cases.py tests/data/images

Writes the image files and expected.safetensors holding, per file NAME,
`NAME.decoded` (U8 [H,W,3], PIL's Image.open(NAME).convert('RGB')) and, for the
resize cases, `resize.src` (U8 [H,W,3]) and `resize.WxH` (U8 [H,W,3], PIL's
resize((W,H), BICUBIC)). PNG files are written by hand here (not by PIL) so that
every bit depth, colour type, tRNS and interlacing can be produced."""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torchref'))
import safetensors_io  # noqa: E402  (tools/torchref: the one safetensors writer)

rng = np.random.default_rng(20240611)


def smooth_rgb(w, h):
    """A smooth picture plus noise: the kind of content that exercises chroma
    subsampling and the resize filter."""
    y, x = np.mgrid[0:h, 0:w]
    r = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    g = 255 * x / max(w - 1, 1)
    b = 255 * y / max(h - 1, 1)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- PNG writer
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)


def pack_row(samples, depth):
    """One row of samples (ints) at `depth` bits, big-endian, MSB-first packing."""
    if depth == 16:
        return b''.join(struct.pack('>H', int(s)) for s in samples)
    if depth == 8:
        return bytes(int(s) for s in samples)
    per = 8 // depth
    out = bytearray((len(samples) + per - 1) // per)
    for i, s in enumerate(samples):
        out[i // per] |= int(s) << (8 - depth * (i % per + 1))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def make_png(samples, depth, color_type, extra=b'', interlace=False):
    """samples: int array [H, W, channels]."""
    h, w, _ = samples.shape
    raw = b''
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b'\0' + pack_row(row.reshape(-1), depth)
    ihdr = struct.pack('>IIBBBBB', w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + extra + chunk(b'IDAT', zlib.compress(raw, 9)) +
            chunk(b'IEND', b''))


def png_cases():
    w, h = 13, 7
    cases = {}
    for depth in (1, 2, 4, 8, 16):
        cases[f'gray{depth}.png'] = make_png(rng.integers(0, 1 << depth, (h, w, 1)), depth, 0)
    # 16-bit gray with small values: PIL's mode "I" keeps values <= 255 as they are
    cases['gray16_low.png'] = make_png(rng.integers(0, 300, (h, w, 1)), 16, 0)
    cases['gray8_trns.png'] = make_png(rng.integers(0, 256, (h, w, 1)), 8, 0, chunk(b'tRNS', struct.pack('>H', 7)))
    cases['gray2_interlaced.png'] = make_png(rng.integers(0, 4, (h, w, 1)), 2, 0, interlace=True)
    for depth in (8, 16):
        cases[f'gray_alpha{depth}.png'] = make_png(rng.integers(0, 1 << depth, (h, w, 2)), depth, 4)
        cases[f'rgb{depth}.png'] = make_png(rng.integers(0, 1 << depth, (h, w, 3)), depth, 2)
        cases[f'rgba{depth}.png'] = make_png(rng.integers(0, 1 << depth, (h, w, 4)), depth, 6)
    cases['rgb8_trns.png'] = make_png(rng.integers(0, 256, (h, w, 3)), 8, 2, chunk(b'tRNS', struct.pack('>HHH', 1, 2, 3)))
    cases['rgb8_interlaced.png'] = make_png(smooth_rgb(w, h).astype(int), 8, 2, interlace=True)
    for depth in (1, 2, 4, 8):
        n = 1 << depth
        plte = chunk(b'PLTE', bytes(rng.integers(0, 256, 3 * n).tolist()))
        cases[f'palette{depth}.png'] = make_png(rng.integers(0, n, (h, w, 1)), depth, 3, plte)
    plte = chunk(b'PLTE', bytes(rng.integers(0, 256, 3 * 200).tolist()))
    trns = chunk(b'tRNS', bytes(rng.integers(0, 256, 50).tolist()))
    cases['palette8_trns.png'] = make_png(rng.integers(0, 200, (h, w, 1)), 8, 3, plte + trns)
    # indices past the 5-entry PLTE: PIL maps them through its gray ramp
    plte = chunk(b'PLTE', bytes(rng.integers(0, 256, 15).tolist()))
    cases['palette4_short.png'] = make_png(rng.integers(0, 16, (h, w, 1)), 4, 3, plte)
    cases['palette4_interlaced.png'] = make_png(rng.integers(0, 16, (h, w, 1)), 4, 3,
                                                chunk(b'PLTE', bytes(rng.integers(0, 256, 48).tolist())), True)
    return cases


# --------------------------------------------------------------- JPEG files
def pil_save(img, **kw):
    b = io.BytesIO()
    img.save(b, 'JPEG', **kw)
    return b.getvalue()


def find_app14(data):
    """Offset of the Adobe APP14 segment's marker, or -1."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, seglen = data[i + 1], struct.unpack('>H', data[i + 2:i + 4])[0]
        if marker == 0xEE and data[i + 4:i + 9] == b'Adobe':
            return i
        if marker == 0xDA:
            break
        i += 2 + seglen
    return -1


def jpeg_cases():
    w, h = 37, 29
    rgb = Image.fromarray(smooth_rgb(w, h))
    cases = {
        'jpeg_420.jpg': pil_save(rgb, quality=85),
        'jpeg_422.jpg': pil_save(rgb, quality=85, subsampling=1),
        'jpeg_444.jpg': pil_save(rgb, quality=95, subsampling=0),
        'jpeg_progressive.jpg': pil_save(rgb, quality=80, progressive=True),
        'jpeg_optimized_restart.jpg': pil_save(rgb, quality=75, optimize=True, restart_marker_blocks=1),
        'jpeg_gray.jpg': pil_save(rgb.convert('L'), quality=90),
        'jpeg_gray_progressive.jpg': pil_save(rgb.convert('L'), quality=90, progressive=True),
    }
    cmyk = Image.fromarray(rng.integers(0, 256, (h, w, 4)).astype(np.uint8), 'CMYK')
    adobe = pil_save(cmyk, quality=90)
    cases['jpeg_cmyk_adobe.jpg'] = adobe
    at = find_app14(adobe)
    assert at > 0, 'PIL wrote no Adobe marker for CMYK'
    seglen = struct.unpack('>H', adobe[at + 2:at + 4])[0]
    # Same data without the Adobe marker: a plain 4-component file (PIL still inverts)
    cases['jpeg_cmyk_plain.jpg'] = adobe[:at] + adobe[at + 2 + seglen:]
    # Adobe transform byte 0 -> 2: libjpeg now treats the components as YCCK
    ycck = bytearray(adobe)
    assert ycck[at + 15] == 0
    ycck[at + 15] = 2
    cases['jpeg_ycck.jpg'] = bytes(ycck)
    return cases


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'tests/data/images'
    os.makedirs(out, exist_ok=True)
    tensors = {}
    for name, data in {**png_cases(), **jpeg_cases()}.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
        tensors[name + '.decoded'] = np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))
    src = smooth_rgb(61, 47)
    tensors['resize.src'] = src
    for w, h in [(97, 113), (1, 1), (2, 2), (5, 300), (300, 5), (61, 47), (122, 94), (30, 23), (60, 46),
                 (62, 48), (13, 97), (61, 20), (20, 47), (183, 141), (7, 7)]:
        tensors[f'resize.{w}x{h}'] = np.asarray(Image.fromarray(src).resize((w, h), Image.BICUBIC))
    safetensors_io.write(os.path.join(out, 'expected.safetensors'),
                         {k: np.asarray(v, dtype=np.uint8) for k, v in tensors.items()})
    print(f'{len(tensors)} tensors written to {out}')


if __name__ == '__main__':
    main()
