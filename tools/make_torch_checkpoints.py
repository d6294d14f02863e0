#!/usr/bin/python3
"""Write PyTorch checkpoints in the official X-VLM state_dict layout, with random
weights, for testing `xvlm convert` and the checkpoint reader; plus hostile and
broken files that the reader must refuse.

Run with Debian's interpreter (torch 1.13): /usr/bin/python3 tools/make_torch_checkpoints.py SET OUT_DIR

Sets:
  small  micro-sized models (what tests/data/torch/ holds, < 1 MB in all): both text
         layouts, fp32 and fp16, a file of awkward tensors (non-contiguous views, a
         storage shared at different offsets, bf16, int64, 0-d, empty, a Parameter),
         each with <name>.expected.safetensors (every tensor, contiguous, bit-exact),
         and bad/*.th (hostile or broken files).
  tiny   the shapes of shared/fixtures/tiny (pretraining layout, fp32) + expected.safetensors.
  base   X-VLM base (Swin-B @224 + BERT-base, pretraining layout, ~216M parameters, fp32)
         + base.expected.json (per-tensor dtype, shape and CRC-32 of the bytes).
  seeds  fuzz seeds (OUT_DIR = fuzz/seeds): unpickler/*.pkl whose storages follow the
         fuzz target's rule (key k in 0..9 has 64*(k+1) bytes), torch_zip/*.th.

Keys, shapes, buffers and their order follow the official models (models/xvlm.py,
swin_transformer.py, xbert.py): parameters of a module come before its buffers,
then its children; the tied MLM decoder shares the word-embedding tensor.
"""
import collections
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
import zlib

import torch

# ---------------------------------------------------------------- model shapes

MICRO = dict(
    vision=dict(embed_dim=2, depths=[2, 2, 2, 2], heads=[1, 1, 2, 2], window=3, image_res=96, patch=4, mlp_ratio=4),
    text=dict(hidden=8, layers=4, fusion_layer=2, intermediate=16, vocab=50, max_pos=12, type_vocab=2),
    embed_dim=4,
)
TINY = dict(  # shared/fixtures/tiny/config.json
    vision=dict(embed_dim=32, depths=[2, 2, 2, 2], heads=[1, 2, 4, 8], window=7, image_res=224, patch=4, mlp_ratio=4),
    text=dict(hidden=64, layers=4, fusion_layer=2, intermediate=128, vocab=1000, max_pos=64, type_vocab=2),
    embed_dim=32,
)
BASE = dict(  # configs/config_swinB_224.json + configs/config_bert.json
    vision=dict(embed_dim=128, depths=[2, 2, 18, 2], heads=[4, 8, 16, 32], window=7, image_res=224, patch=4, mlp_ratio=4),
    text=dict(hidden=768, layers=12, fusion_layer=6, intermediate=3072, vocab=30522, max_pos=512, type_vocab=2),
    embed_dim=256,
)


class Rand:
    """Deterministic random tensors; LayerNorm-like vectors near 1, others small."""

    def __init__(self, seed, dtype):
        self.g = torch.Generator().manual_seed(seed)
        self.dtype = dtype

    def __call__(self, *shape, around=0.0):
        t = torch.randn(*shape, generator=self.g) * 0.05 + around
        return t.to(self.dtype)


def rel_position_index(w):
    """[w*w, w*w] int64: (dh + w-1) * (2w-1) + (dw + w-1) for query i, key j."""
    hw = torch.arange(w * w)
    h, c = hw // w, hw % w
    dh = h[:, None] - h[None, :] + (w - 1)
    dc = c[:, None] - c[None, :] + (w - 1)
    return dh * (2 * w - 1) + dc


def shift_attn_mask(res, w, shift):
    """[nW, w*w, w*w]: 0 within a region, -100 across (shifted-window attention)."""
    bounds = [(0, res - w), (res - w, res - shift), (res - shift, res)]
    label = torch.zeros(res, res)
    for a, (r0, r1) in enumerate(bounds):
        for b, (c0, c1) in enumerate(bounds):
            label[r0:r1, c0:c1] = 3 * a + b
    n = res // w
    windows = label.view(n, w, n, w).permute(0, 2, 1, 3).reshape(n * n, w * w)
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


def swin(sd, v, r):
    p, c0 = v['patch'], v['embed_dim']
    sd['vision_encoder.patch_embed.proj.weight'] = r(c0, 3, p, p)
    sd['vision_encoder.patch_embed.proj.bias'] = r(c0)
    sd['vision_encoder.patch_embed.norm.weight'] = r(c0, around=1)
    sd['vision_encoder.patch_embed.norm.bias'] = r(c0)
    res = v['image_res'] // p
    for s, depth in enumerate(v['depths']):
        c, h, rs = c0 * 2 ** s, v['heads'][s], res // 2 ** s
        w = min(v['window'], rs)
        for b in range(depth):
            pre = f'vision_encoder.layers.{s}.blocks.{b}.'
            shift = w // 2 if (b % 2 == 1 and rs > v['window']) else 0
            if shift:
                sd[pre + 'attn_mask'] = shift_attn_mask(rs, w, shift).to(r.dtype)
            sd[pre + 'norm1.weight'] = r(c, around=1)
            sd[pre + 'norm1.bias'] = r(c)
            sd[pre + 'attn.relative_position_bias_table'] = r((2 * w - 1) ** 2, h)
            sd[pre + 'attn.relative_position_index'] = rel_position_index(w)
            sd[pre + 'attn.qkv.weight'] = r(3 * c, c)
            sd[pre + 'attn.qkv.bias'] = r(3 * c)
            sd[pre + 'attn.proj.weight'] = r(c, c)
            sd[pre + 'attn.proj.bias'] = r(c)
            sd[pre + 'norm2.weight'] = r(c, around=1)
            sd[pre + 'norm2.bias'] = r(c)
            hid = v['mlp_ratio'] * c
            sd[pre + 'mlp.fc1.weight'] = r(hid, c)
            sd[pre + 'mlp.fc1.bias'] = r(hid)
            sd[pre + 'mlp.fc2.weight'] = r(c, hid)
            sd[pre + 'mlp.fc2.bias'] = r(c)
        if s < len(v['depths']) - 1:
            pre = f'vision_encoder.layers.{s}.downsample.'
            sd[pre + 'reduction.weight'] = r(2 * c, 4 * c)
            sd[pre + 'norm.weight'] = r(4 * c, around=1)
            sd[pre + 'norm.bias'] = r(4 * c)
    cl = c0 * 2 ** (len(v['depths']) - 1)
    sd['vision_encoder.norm.weight'] = r(cl, around=1)
    sd['vision_encoder.norm.bias'] = r(cl)
    return cl


def linear(sd, pre, o, i, r):
    sd[pre + 'weight'] = r(o, i)
    sd[pre + 'bias'] = r(o)


def layernorm(sd, pre, n, r):
    sd[pre + 'weight'] = r(n, around=1)
    sd[pre + 'bias'] = r(n)


def bert(sd, t, pre, vision_width, r, mlm):
    hd = t['hidden']
    e = pre + 'embeddings.'
    sd[e + 'position_ids'] = torch.arange(t['max_pos']).view(1, -1)
    sd[e + 'word_embeddings.weight'] = r(t['vocab'], hd)
    sd[e + 'position_embeddings.weight'] = r(t['max_pos'], hd)
    sd[e + 'token_type_embeddings.weight'] = r(t['type_vocab'], hd)
    layernorm(sd, e + 'LayerNorm.', hd, r)
    for i in range(t['layers']):
        lp = f'{pre}encoder.layer.{i}.'
        for part, kv_in in [('attention.', hd)] + ([('crossattention.', vision_width)] if i >= t['fusion_layer'] else []):
            linear(sd, lp + part + 'self.query.', hd, hd, r)
            linear(sd, lp + part + 'self.key.', hd, kv_in, r)
            linear(sd, lp + part + 'self.value.', hd, kv_in, r)
            linear(sd, lp + part + 'output.dense.', hd, hd, r)
            layernorm(sd, lp + part + 'output.LayerNorm.', hd, r)
        linear(sd, lp + 'intermediate.dense.', t['intermediate'], hd, r)
        linear(sd, lp + 'output.dense.', hd, t['intermediate'], r)
        layernorm(sd, lp + 'output.LayerNorm.', hd, r)
    if mlm:  # BertForMaskedLM: cls.predictions, decoder tied to the word embeddings
        c = 'text_encoder.cls.predictions.'
        sd[c + 'bias'] = r(t['vocab'])
        linear(sd, c + 'transform.dense.', hd, hd, r)
        layernorm(sd, c + 'transform.LayerNorm.', hd, r)
        sd[c + 'decoder.weight'] = sd[e + 'word_embeddings.weight']
        sd[c + 'decoder.bias'] = sd[c + 'bias']


def mlp_head(sd, pre, d, out, r):
    linear(sd, pre + '0.', 2 * d, d, r)
    layernorm(sd, pre + '1.', 2 * d, r)
    linear(sd, pre + '3.', out, 2 * d, r)


def xvlm_state_dict(cfg, layout, dtype, seed):
    """layout 'pretrain': text_encoder.bert.* + cls + itm/bbox heads;
    'retrieval': text_encoder.* (BertModel, no MLM head) + itm head."""
    r = Rand(seed, dtype)
    sd = collections.OrderedDict()
    sd['temp'] = torch.tensor(0.07, dtype=dtype)
    vw = swin(sd, cfg['vision'], r)
    t = cfg['text']
    bert(sd, t, 'text_encoder.bert.' if layout == 'pretrain' else 'text_encoder.', vw, r, layout == 'pretrain')
    linear(sd, 'vision_proj.', cfg['embed_dim'], vw, r)
    linear(sd, 'text_proj.', cfg['embed_dim'], t['hidden'], r)
    mlp_head(sd, 'itm_head.', t['hidden'], 2, r)
    if layout == 'pretrain':
        mlp_head(sd, 'bbox_head.', t['hidden'], 4, r)
    # as nn.Module.state_dict() leaves it: module versions in _metadata (pickled with BUILD)
    sd._metadata = collections.OrderedDict([('', {'version': 1}), ('vision_encoder', {'version': 1})])
    return sd


def official_config(cfg):
    """What the official scripts store under 'config' (parsed YAML, plain values)."""
    v = cfg['vision']
    return {
        'train_file': ['hdfs://path/to/coco', 'hdfs://path/to/vg'],
        'use_clip_vit': False, 'use_swin': True, 'use_roberta': False,
        'vision_config': 'configs/config_swin.json', 'text_config': 'configs/config_bert.json',
        'image_res': v['image_res'], 'patch_size': 32,
        'embed_dim': cfg['embed_dim'], 'temp': 0.07,
        'max_words': 30, 'max_tokens': 40, 'mask_prob': 0.25, 'max_masks': 8,
        'optimizer': {'opt': 'adamW', 'lr': 0.0001, 'weight_decay': 0.01, 'lr_mult': 2},
        'schedular': {'sched': 'linear', 'lr': 0.0001, 'epochs': 41, 'num_warmup_steps': 2500},
        'accelerator': {'SYNCBN': False, 'FP16_OPT_LEVEL': 'O1', 'RNG_SEED': 42, 'CLIP_GRAD_NORM': 1.0},
    }


# ---------------------------------------------------------------- expected data

ST_DTYPE = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int64: 'I64'}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {'dtype': ST_DTYPE[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def write_crc_list(path, tensors):
    out = collections.OrderedDict()
    for name, t in tensors.items():
        b = tensor_bytes(t)
        out[name] = {'dtype': ST_DTYPE[t.dtype], 'shape': list(t.shape), 'nbytes': len(b), 'crc32': zlib.crc32(b)}
    with open(path, 'w') as f:
        json.dump(out, f, indent=0)


# ---------------------------------------------------------------- awkward tensors

def special_state_dict():
    g = torch.Generator().manual_seed(7)
    sd = collections.OrderedDict()
    w = torch.randn(4, 6, generator=g)
    sd['w'] = w
    sd['w_t'] = w.t()                                   # transposed view of the same storage
    big = torch.arange(40, dtype=torch.float32) * 0.5
    sd['first'] = big[0:10]                             # one storage, two tensors at offsets 0 and 10
    sd['second'] = big[10:30].view(4, 5)
    m = torch.randn(5, 6, generator=g)
    sd['strided'] = m[1:, ::2]                          # offset 6, stride (6, 2)
    sd['expanded'] = torch.randn(3, generator=g).expand(4, 3)   # stride (0, 1)
    sd['permuted'] = torch.randn(2, 3, 4, generator=g).permute(2, 0, 1)
    sd['column'] = torch.randn(5, 3, generator=g)[:, 1:2]       # [5, 1], stride (3, 1), offset 1
    sd['half_t'] = torch.randn(3, 5, generator=g).half().t()
    sd['bf16'] = torch.randn(7, generator=g).bfloat16()
    sd['long'] = torch.arange(-3, 9).view(3, 4)
    sd['scalar'] = torch.tensor(0.25)
    sd['empty'] = torch.zeros(0, 3)
    sd['param'] = torch.nn.Parameter(torch.randn(2, 2, generator=g))  # _rebuild_parameter
    return sd


SPECIAL_CONFIG = {
    'image_res': 384, 'name': 'spécial ✓', 'none': None, 'flag': True, 'ratio': 2.5,
    'big': 2 ** 40, 'neg': -7, 'pair': (1, 2), 'nested': {'list': [1, [2, [3]]], 'empty': {}},
}


# ---------------------------------------------------------------- hand-made archives

class Storage:
    def __init__(self, key, stype, numel):
        self.key, self.stype, self.numel = key, stype, numel


class Tensor:
    """Pickles exactly like a tensor, with any size/stride/offset we choose."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ('storage', obj.stype, obj.key, 'cpu', obj.numel)
        return None


def entry(name, compress=zipfile.ZIP_STORED):
    """A zip entry with a fixed date, so regenerated files are identical."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compress
    return info


def write_archive(path, pkl, storages, prefix='archive', extra=()):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        z.writestr(entry(f'{prefix}/data.pkl'), pkl)
        for name, data in extra:
            z.writestr(entry(f'{prefix}/{name}'), data)
        for key, data in storages.items():
            z.writestr(entry(f'{prefix}/data/{key}'), data)
        z.writestr(entry(f'{prefix}/version'), b'3\n')


class Pairs:
    """Pickles as an OrderedDict filled from a list of pairs, duplicates kept
    (what no Python dict can hold, but a pickle can say)."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __reduce__(self):
        return (collections.OrderedDict, (), None, None, iter(self.pairs))


def crafted(path, tensors, storages, config=None, **kw):
    import io
    buf = io.BytesIO()
    obj = {'model': Pairs(tensors)}
    if config is not None:
        obj['config'] = config
    Pickler(buf, protocol=2).dump(obj)
    write_archive(path, buf.getvalue(), storages, **kw)


class Evil:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def hostile(out):
    import io
    os.makedirs(out, exist_ok=True)
    ok = torch.arange(12, dtype=torch.float32)
    # code execution attempts: the reader must name the global and run nothing
    torch.save(Evil(eval, "print('pwned')"), f'{out}/builtins_eval.th')
    torch.save(Evil(subprocess.Popen, ['true']), f'{out}/subprocess_popen.th')
    torch.save({'model': collections.OrderedDict([('a', ok), ('b', Evil(os.system, 'true'))])},
               f'{out}/posix_system_nested.th')
    write_archive(f'{out}/os_system.th', b'\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.', {})
    write_archive(f'{out}/stack_global.th', pickle.dumps(Evil(os.system, 'true'), protocol=4), {})
    # storages and views that do not fit
    f32 = torch.FloatStorage
    data12 = ok.numpy().tobytes()
    crafted(f'{out}/missing_storage.th', [('w', Tensor(Storage('7', f32, 12), 0, [12], [1]))], {'0': data12})
    crafted(f'{out}/size_past_storage.th', [('w', Tensor(Storage('0', f32, 12), 0, [4, 4], [4, 1]))], {'0': data12})
    crafted(f'{out}/offset_past_storage.th', [('w', Tensor(Storage('0', f32, 12), 100, [2], [1]))], {'0': data12})
    crafted(f'{out}/stride_past_storage.th', [('w', Tensor(Storage('0', f32, 12), 0, [3, 4], [100, 1]))], {'0': data12})
    crafted(f'{out}/extent_overflow.th', [('w', Tensor(Storage('0', f32, 12), 0, [2, 2], [2 ** 62, 2 ** 62]))], {'0': data12})
    crafted(f'{out}/numel_mismatch.th', [('w', Tensor(Storage('0', f32, 100), 0, [12], [1]))], {'0': data12})
    crafted(f'{out}/dup_tensor.th', [('w', Tensor(Storage('0', f32, 12), 0, [12], [1]))] * 2, {'0': data12})
    # a view bomb: one float expanded to 2^30 elements (4 GiB) by a zero stride
    crafted(f'{out}/view_bomb.th', [('w', Tensor(Storage('0', f32, 1), 0, [2 ** 30], [0]))], {'0': data12[:4]})
    crafted(f'{out}/path_key.th', [('w', Tensor(Storage('../../etc/passwd', f32, 12), 0, [12], [1]))], {'0': data12})
    crafted(f'{out}/big_endian.th', [('w', Tensor(Storage('0', f32, 12), 0, [12], [1]))], {'0': data12},
            extra=[('byteorder', b'big')])
    torch.save({'model': {'w': torch.zeros(3, dtype=torch.float64)}}, f'{out}/float64.th')
    torch.save([1, 2, 3], f'{out}/not_a_dict.th')
    torch.save({'model': {'w': ok}}, f'{out}/legacy.th', _use_new_zipfile_serialization=False)
    # archive damage
    whole = open(f'{out}/../special.th', 'rb').read()
    open(f'{out}/truncated.th', 'wb').write(whole[: len(whole) * 3 // 5])
    zip_bomb(f'{out}/zip_bomb.th')


def zip_bomb(path):
    """A deflated storage whose directory claims ~4 GB (both headers agree)."""
    declared = 0xFFFFFFF0
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        z.writestr(entry('archive/data.pkl'), b'\x80\x02}q\x00.')
        z.writestr(entry('archive/data/0', zipfile.ZIP_DEFLATED), bytes(1 << 20))
        z.writestr(entry('archive/version'), b'3\n')
    b = bytearray(open(path, 'rb').read())
    name = b'archive/data/0'
    for sig, size_at in ((b'PK\x03\x04', 22), (b'PK\x01\x02', 24)):  # local header, central directory
        i = 0
        while True:
            i = b.find(sig, i)
            if i < 0:
                break
            name_at = 30 if sig == b'PK\x03\x04' else 46
            if b[i + name_at: i + name_at + len(name)] == name:
                struct.pack_into('<I', b, i + size_at, declared)
            i += 4
    open(path, 'wb').write(b)


# ---------------------------------------------------------------- fuzz seeds

def fuzz_seeds(out):
    """Pickles that parse completely under fuzz/fuzz_unpickler.c's resolver, and small archives."""
    import io
    os.makedirs(f'{out}/unpickler', exist_ok=True)
    os.makedirs(f'{out}/torch_zip', exist_ok=True)

    def st(key, stype, elem):  # key k holds 64*(k+1) bytes
        return Storage(str(key), stype, 64 * (key + 1) // elem)

    sd = collections.OrderedDict()
    sd['w'] = Tensor(st(2, torch.FloatStorage, 4), 0, [6, 8], [8, 1])
    sd['w_t'] = Tensor(st(2, torch.FloatStorage, 4), 0, [8, 6], [1, 8])          # same storage, transposed
    sd['tail'] = Tensor(st(2, torch.FloatStorage, 4), 40, [8], [1])              # same storage, offset
    sd['h'] = Tensor(st(0, torch.HalfStorage, 2), 3, [4, 2], [0, 1])             # stride 0
    sd['b'] = Tensor(st(1, torch.BFloat16Storage, 2), 0, [64], [1])
    sd['i'] = Tensor(st(3, torch.LongStorage, 8), 0, [2, 4, 4], [16, 4, 1])
    sd['s'] = Tensor(st(9, torch.FloatStorage, 4), 159, [], [])                  # 0-d, last element
    sd['e'] = Tensor(st(4, torch.FloatStorage, 4), 80, [0, 5], [5, 1])           # empty
    sd._metadata = collections.OrderedDict([('', {'version': 1})])
    for name, obj, proto in (('state_dict_p2', {'model': sd, 'config': SPECIAL_CONFIG}, 2),
                             ('bare_p2', sd, 2), ('state_dict_p4', {'model': sd}, 4)):
        buf = io.BytesIO()
        Pickler(buf, protocol=proto).dump(obj)
        open(f'{out}/unpickler/{name}.pkl', 'wb').write(buf.getvalue())
    open(f'{out}/unpickler/plain_p4.pkl', 'wb').write(pickle.dumps(SPECIAL_CONFIG, protocol=4))
    sd = special_state_dict()
    torch.save({'model': sd, 'config': SPECIAL_CONFIG}, f'{out}/torch_zip/special.th')
    src = zipfile.ZipFile(f'{out}/torch_zip/special.th')
    with zipfile.ZipFile(f'{out}/torch_zip/special_deflated.th', 'w') as z:
        for info in src.infolist():
            z.writestr(entry(info.filename, zipfile.ZIP_DEFLATED), src.read(info.filename))
    torch.save(collections.OrderedDict([('w', torch.arange(6, dtype=torch.float16).view(2, 3).t())]),
               f'{out}/torch_zip/bare_fp16.th')


# ---------------------------------------------------------------- sets

def save_with_expected(path, obj, sd, crc=False):
    torch.save(obj, path)
    stem = path[: -len('.th')]
    if crc:
        write_crc_list(stem + '.expected.json', sd)
    else:
        write_safetensors(stem + '.expected.safetensors', sd)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ('small', 'tiny', 'base', 'seeds'):
        sys.exit(__doc__)
    which, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    if which == 'small':
        sd = xvlm_state_dict(MICRO, 'pretrain', torch.float32, seed=1)
        save_with_expected(f'{out}/micro_pretrain_fp32.th', {'model': sd, 'config': official_config(MICRO)}, sd)
        sd = xvlm_state_dict(MICRO, 'retrieval', torch.float16, seed=2)
        save_with_expected(f'{out}/micro_retrieval_fp16.th', sd, sd)  # a bare state_dict
        sd = special_state_dict()
        save_with_expected(f'{out}/special.th', {'model': sd, 'config': SPECIAL_CONFIG}, sd)
        # duplicate config keys: the last one counts, as when Python loads it
        crafted(f'{out}/dup_config_keys.th', [('w', Tensor(Storage('0', torch.FloatStorage, 2), 0, [2], [1]))],
                {'0': struct.pack('<2f', 1.5, -2.0)}, config=Pairs([('image_res', 224), ('x', 1), ('image_res', 384)]))
        hostile(f'{out}/bad')
    elif which == 'seeds':
        fuzz_seeds(out)
    elif which == 'tiny':
        sd = xvlm_state_dict(TINY, 'pretrain', torch.float32, seed=3)
        save_with_expected(f'{out}/tiny_pretrain_fp32.th', {'model': sd, 'config': official_config(TINY)}, sd)
    else:
        sd = xvlm_state_dict(BASE, 'pretrain', torch.float32, seed=4)
        save_with_expected(f'{out}/base_pretrain_fp32.th', {'model': sd, 'config': official_config(BASE)}, sd, crc=True)


if __name__ == '__main__':
    main()
