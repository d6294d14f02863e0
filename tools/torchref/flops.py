"""Analytic FLOP counts of the X-VLM pieces, shared by the benchmarks so that the
PyTorch and the C benchmark report GFLOP/s on the same numerator.

Convention (restate it in C when porting):
- Only matrix products count, 2 FLOPs per multiply-add: a Linear with n rows,
  `i` inputs, `o` outputs is 2*n*i*o. LayerNorm, GELU, softmax, bias adds,
  masks, pooling and losses are not counted.
- Attention scores and the weighted sum of values count as products:
  2*q*k*d each for q queries, k keys, total head width d.
- A training step counts 3x its forward (backward = input gradient + weight
  gradient, each as large as the forward product).

Per piece (T tokens, C channels):
- Swin patch embedding (4x4 conv as a product): 2 * T0 * (3*16) * E per image,
  T0 = (res/4)^2.
- Swin block, window w (effective, see swin_geometry), T = side^2:
      qkv 6*T*C^2 + scores/values 4*T*w^2*C + proj 2*T*C^2 + MLP 16*T*C^2
    = 24*T*C^2 + 4*T*w^2*C
- Patch merging (T tokens of C in, T/4 of 2C out): 2*(T/4)*4C*2C = 4*T*C^2.
- BERT self-attention sub-layer, L tokens, hidden H: 8*L*H^2 + 4*L^2*H.
- Cross-attention sub-layer, K image tokens of width Cv:
      query+output 4*L*H^2 + key/value 4*K*Cv*H + scores/values 4*L*K*H.
- FFN, width I: 4*L*H*I.
- Heads: projections 2*Cin*E per row; build_mlp(H, o) 2*H*2H + 2*2H*o per row;
  MLM head per masked position 2*H^2 + 2*H*V; ITC logits 2*B*B*E.
"""
from xvlm_ref import swin_geometry


def swin(vcfg, images):
    """Vision encoder forward on `images` images."""
    side0 = vcfg["image_res"] // vcfg["swin_patch_size"]
    total = 2 * side0 * side0 * 3 * vcfg["swin_patch_size"] ** 2 * vcfg["embed_dim"]
    for st in swin_geometry(vcfg):
        t, c = st["side"] ** 2, st["dim"]
        for win, _ in st["blocks"]:
            total += 24 * t * c * c + 4 * t * win * win * c
        if st["merge"]:
            total += 4 * t * c * c
    return images * total


def bert_self_layer(tcfg, n, length):
    """Self-attention + FFN of one layer on n sequences of `length` tokens."""
    h, i = tcfg["hidden_size"], tcfg["intermediate_size"]
    return n * (8 * length * h * h + 4 * length * length * h + 4 * length * h * i)


def cross_attention(tcfg, n, length, image_tokens):
    h, cv = tcfg["hidden_size"], tcfg["encoder_width"]
    return n * (4 * length * h * h + 4 * image_tokens * cv * h + 4 * length * image_tokens * h)


def text(tcfg, n, length):
    """mode 'text': layers [0, fusion_layer)."""
    return tcfg["fusion_layer"] * bert_self_layer(tcfg, n, length)


def fusion(tcfg, n, length, image_tokens):
    """mode 'fusion': layers [fusion_layer, num_hidden_layers), each with cross-attention."""
    layers = tcfg["num_hidden_layers"] - tcfg["fusion_layer"]
    return layers * (bert_self_layer(tcfg, n, length) + cross_attention(tcfg, n, length, image_tokens))


def head_mlp(h, out, n):
    return n * (2 * h * 2 * h + 2 * 2 * h * out)


def fusion_itm(cfg, n, length, image_tokens):
    """Fusion encoder + ITM head on n (text, image) pairs."""
    return fusion(cfg["text"], n, length, image_tokens) + head_mlp(cfg["text"]["hidden_size"], 2, n)


def fusion_box(cfg, n, length, image_tokens):
    """Fusion encoder + box head on n pairs."""
    return fusion(cfg["text"], n, length, image_tokens) + head_mlp(cfg["text"]["hidden_size"], 4, n)


def pretrain_forward(cfg, batch, images, length, masks):
    """Forward of a region pretraining step: `images` images, `batch` texts of
    `length` tokens, `masks` MLM slots per text, all four losses."""
    t, e = cfg["text"], cfg["embed_dim"]
    h, cv, v = t["hidden_size"], cfg["vision"]["vision_width"], t["vocab_size"]
    k = 1 + (cfg["vision"]["image_res"] // cfg["vision"]["patch_size"]) ** 2
    total = swin(cfg["vision"], images)
    total += text(t, batch, length)
    total += 2 * batch * (cv * e + h * e) + 2 * batch * batch * e  # projections + ITC logits
    total += fusion_itm(cfg, 3 * batch, length, k)  # positives + 2 negatives per text
    total += text(t, batch, length) + fusion(t, batch, length, k)  # MLM: all layers on the masked text
    total += batch * masks * (2 * h * h + 2 * h * v)  # MLM head at the masked slots
    total += fusion_box(cfg, batch, length, k)
    return total


def pretrain_step(cfg, batch, images, length, masks):
    return 3 * pretrain_forward(cfg, batch, images, length, masks)
