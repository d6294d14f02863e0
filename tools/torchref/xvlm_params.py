"""Official state_dict names and shapes of the X-VLM pretraining model for a
fixture-layout config, and a seeded initialisation of them.

init_params() follows the official initialisers (Swin Linear/table: N(0, 0.02);
patch conv and the heads/projections: PyTorch's default U(+-1/sqrt(fan_in));
BERT Linear/Embedding: N(0, 0.02), biases 0; LayerNorm 1/0) and, with
perturb=True, adds noise like the official fixture (std 0.05 to tensors of rank
>= 2, 0.1 to rank <= 1; temp kept at its config value) so that no LayerNorm weight
is 1 and no bias is 0. All draws come from one numpy Generator in sorted name
order, so a seed gives the same bytes everywhere."""
import math

import numpy as np

from xvlm_ref import TIED, swin_geometry


def param_shapes(cfg):
    """{official name: shape}, float32 parameters only (position_ids is a buffer);
    both tied names listed."""
    v, t, e = cfg["vision"], cfg["text"], cfg["embed_dim"]
    s = {}
    pe, ps = "vision_encoder.patch_embed", v["swin_patch_size"]
    s[pe + ".proj.weight"] = [v["embed_dim"], v["in_chans"], ps, ps]
    s[pe + ".proj.bias"] = [v["embed_dim"]]
    s[pe + ".norm.weight"] = s[pe + ".norm.bias"] = [v["embed_dim"]]
    for i, st in enumerate(swin_geometry(v)):
        c, hidden = st["dim"], int(st["dim"] * v["mlp_ratio"])
        for j, (win, _) in enumerate(st["blocks"]):
            b = f"vision_encoder.layers.{i}.blocks.{j}"
            for n in ("norm1", "norm2"):
                s[f"{b}.{n}.weight"] = s[f"{b}.{n}.bias"] = [c]
            s[b + ".attn.relative_position_bias_table"] = [(2 * win - 1) ** 2, st["heads"]]
            s[b + ".attn.qkv.weight"], s[b + ".attn.qkv.bias"] = [3 * c, c], [3 * c]
            s[b + ".attn.proj.weight"], s[b + ".attn.proj.bias"] = [c, c], [c]
            s[b + ".mlp.fc1.weight"], s[b + ".mlp.fc1.bias"] = [hidden, c], [hidden]
            s[b + ".mlp.fc2.weight"], s[b + ".mlp.fc2.bias"] = [c, hidden], [c]
        if st["merge"]:
            d = f"vision_encoder.layers.{i}.downsample"
            s[d + ".norm.weight"] = s[d + ".norm.bias"] = [4 * c]
            s[d + ".reduction.weight"] = [2 * c, 4 * c]
    cv = v["vision_width"]
    s["vision_encoder.norm.weight"] = s["vision_encoder.norm.bias"] = [cv]

    h, inter, vocab = t["hidden_size"], t["intermediate_size"], t["vocab_size"]
    emb = "text_encoder.bert.embeddings"
    s[emb + ".word_embeddings.weight"] = [vocab, h]
    s[emb + ".position_embeddings.weight"] = [t["max_position_embeddings"], h]
    s[emb + ".token_type_embeddings.weight"] = [t["type_vocab_size"], h]
    s[emb + ".LayerNorm.weight"] = s[emb + ".LayerNorm.bias"] = [h]

    def attention(prefix, kv_width):
        for n, width in (("query", h), ("key", kv_width), ("value", kv_width)):
            s[f"{prefix}.self.{n}.weight"], s[f"{prefix}.self.{n}.bias"] = [h, width], [h]
        s[prefix + ".output.dense.weight"], s[prefix + ".output.dense.bias"] = [h, h], [h]
        s[prefix + ".output.LayerNorm.weight"] = s[prefix + ".output.LayerNorm.bias"] = [h]

    for i in range(t["num_hidden_layers"]):
        layer = f"text_encoder.bert.encoder.layer.{i}"
        attention(layer + ".attention", h)
        if i >= t["fusion_layer"]:
            attention(layer + ".crossattention", t["encoder_width"])
        s[layer + ".intermediate.dense.weight"], s[layer + ".intermediate.dense.bias"] = [inter, h], [inter]
        s[layer + ".output.dense.weight"], s[layer + ".output.dense.bias"] = [h, inter], [h]
        s[layer + ".output.LayerNorm.weight"] = s[layer + ".output.LayerNorm.bias"] = [h]
    mlm = "text_encoder.cls.predictions"
    s[mlm + ".bias"] = [vocab]
    s[mlm + ".transform.dense.weight"], s[mlm + ".transform.dense.bias"] = [h, h], [h]
    s[mlm + ".transform.LayerNorm.weight"] = s[mlm + ".transform.LayerNorm.bias"] = [h]
    s[mlm + ".decoder.weight"], s[mlm + ".decoder.bias"] = [vocab, h], [vocab]

    s["vision_proj.weight"], s["vision_proj.bias"] = [e, cv], [e]
    s["text_proj.weight"], s["text_proj.bias"] = [e, h], [e]
    s["temp"] = []
    for head, out in (("itm_head", 2), ("bbox_head", 4)):
        s[head + ".0.weight"], s[head + ".0.bias"] = [2 * h, h], [2 * h]
        s[head + ".1.weight"] = s[head + ".1.bias"] = [2 * h]
        s[head + ".3.weight"], s[head + ".3.bias"] = [out, 2 * h], [out]
    return s


def count_params(cfg):
    """Unique parameters (each tied pair counted once)."""
    shapes = param_shapes(cfg)
    for _, b in TIED:
        del shapes[b]
    return sum(int(np.prod(x, dtype=np.int64)) for x in shapes.values())


def _base_init(name, shapes, rng):
    """The official initialiser of one tensor (see the module comment)."""
    shape = shapes[name]
    if name.endswith(".weight") and len(shape) == 1:  # LayerNorm
        return np.ones(shape)
    default = name.startswith(("vision_proj", "text_proj", "itm_head", "bbox_head", "vision_encoder.patch_embed.proj"))
    if default:  # PyTorch's Linear/Conv2d reset_parameters
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else None
        if fan_in is None:  # a bias: bound from its weight's fan-in
            fan_in = int(np.prod(shapes[name[:-len("bias")] + "weight"][1:]))
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape)
    if len(shape) == 1:  # biases of Swin/BERT Linear layers
        return np.zeros(shape)
    return rng.normal(0.0, 0.02, shape)  # Swin Linear + tables, BERT Linear + embeddings


def init_params(cfg, seed, perturb=True):
    """{official name: float32 numpy array} incl. both tied names and the
    int64 position_ids buffer, deterministic in `seed`."""
    shapes = param_shapes(cfg)
    for _, b in TIED:
        del shapes[b]
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if name == "temp":
            out[name] = np.array(cfg["temp"], dtype=np.float32)
            continue
        x = _base_init(name, shapes, rng)
        if perturb:
            x = x + rng.normal(0.0, 0.05 if len(shape) >= 2 else 0.1, shape)
        out[name] = x.astype(np.float32)
    for a, b in TIED:
        out[b] = out[a]
    maxpos = cfg["text"]["max_position_embeddings"]
    out["text_encoder.bert.embeddings.position_ids"] = np.arange(maxpos, dtype=np.int64).reshape(1, maxpos)
    return out
