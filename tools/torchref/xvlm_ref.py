"""An independent PyTorch reference of the X-VLM pretraining model.

Written from docs/architecture.md (sections 2-5) and checked
against the official golden data by check_fixture.py; it does not import or copy
the official code. Parameters live in a plain {official state_dict name: tensor}
dict, so official checkpoints and the fixtures' weights.safetensors load by name,
and gradients come back under the same names.

Config: the fixture layout (../shared/fixtures/tiny/config.json): `vision`
(Swin), `text` (BERT incl. fusion_layer and encoder_width), `embed_dim`,
`head_layer_norm_eps`, `temp_clamp`.

All arithmetic runs in the dtype of the parameters (float32 to mirror the
official numbers, float64 for golden data that is closer to exact)."""
import math

import torch
import torch.nn.functional as F

# Additive mask values (docs/architecture.md §10).
SWIN_SHIFT_MASK = -100.0
TEXT_MASK = -10000.0
CROSS_MASK = -1e9

TIED = [("text_encoder.bert.embeddings.word_embeddings.weight", "text_encoder.cls.predictions.decoder.weight"),
        ("text_encoder.cls.predictions.bias", "text_encoder.cls.predictions.decoder.bias")]

VISION = "vision_encoder"
BERT = "text_encoder.bert"
MLM_HEAD = "text_encoder.cls.predictions"


# --------------------------------------------------------------------------------------------
# Geometry of the Swin stages


def swin_geometry(vcfg):
    """Per stage: token grid side, channels, heads, and per block (window, shift).
    A stage whose grid is not larger than the window uses one window of the whole
    grid and never shifts (sheet 2.1)."""
    side = vcfg["image_res"] // vcfg["swin_patch_size"]
    stages = []
    for s, depth in enumerate(vcfg["depths"]):
        r = side >> s
        blocks = []
        for j in range(depth):
            win, shift = vcfg["window_size"], (0 if j % 2 == 0 else vcfg["window_size"] // 2)
            if r <= win:
                win, shift = r, 0
            blocks.append((win, shift))
        stages.append({"side": r, "dim": vcfg["embed_dim"] << s, "heads": vcfg["num_heads"][s],
                       "blocks": blocks, "merge": s + 1 < len(vcfg["depths"])})
    return stages


def relative_position_index(win):
    """idx(i, j) = (hi - hj + W - 1)(2W - 1) + (wi - wj + W - 1), tokens row-major."""
    h = torch.arange(win).repeat_interleave(win)
    w = torch.arange(win).repeat(win)
    dh = h[:, None] - h[None, :] + win - 1
    dw = w[:, None] - w[None, :] + win - 1
    return dh * (2 * win - 1) + dw


def window_partition(x, win):
    """[B, H, W, C] -> [B*nW, win*win, C]; windows image-major, then row, then column."""
    b, h, w, c = x.shape
    x = x.view(b, h // win, win, w // win, win, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, win * win, c)


def window_merge(x, win, h, w):
    """Inverse of window_partition: [B*nW, win*win, C] -> [B, H, W, C]."""
    c = x.shape[-1]
    b = x.shape[0] // ((h // win) * (w // win))
    x = x.view(b, h // win, w // win, win, win, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shift_mask(side, win, shift, dtype):
    """[nW, win^2, win^2]: 0 where two tokens of a window came from the same region
    of the rolled map, -100 otherwise (sheet 2.5)."""
    bounds = [0, side - win, side - shift, side]
    band = torch.zeros(side, dtype=torch.long)
    for k in range(3):
        band[bounds[k]:bounds[k + 1]] = k
    labels = (3 * band[:, None] + band[None, :]).to(dtype)
    lab = window_partition(labels.view(1, side, side, 1), win).squeeze(-1)
    same = lab[:, :, None] == lab[:, None, :]
    return torch.where(same, torch.zeros((), dtype=dtype), torch.full((), SWIN_SHIFT_MASK, dtype=dtype))


# --------------------------------------------------------------------------------------------
# Small building blocks on the parameter dict


def linear(p, name, x, bias=True):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"] if bias else None)


def layer_norm(p, name, x, eps):
    return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps)


def head_mlp(p, name, x, eps):
    """build_mlp: Linear(d, 2d), LN(2d), exact GELU, Linear(2d, out)."""
    h = linear(p, name + ".0", x)
    h = F.gelu(layer_norm(p, name + ".1", h, eps))
    return linear(p, name + ".3", h)


class XVLMRef:
    def __init__(self, cfg, params):
        """cfg: fixture-layout config dict; params: {official name: tensor}, tied
        names sharing one tensor (see load_params)."""
        self.cfg = cfg
        self.p = params
        self.dtype = params["temp"].dtype
        self.vcfg, self.tcfg = cfg["vision"], cfg["text"]
        self.stages = swin_geometry(self.vcfg)
        self.rel_index = {}
        self.masks = {}
        for st in self.stages:
            for win, shift in st["blocks"]:
                self.rel_index.setdefault(win, relative_position_index(win))
                if shift:
                    self.masks[(st["side"], win, shift)] = shift_mask(st["side"], win, shift, self.dtype)

    # ---------------------------------------------------------------- vision (sheet 2)

    def window_attention(self, name, x, heads, win, mask):
        p = self.p
        bn, n, c = x.shape
        qkv = linear(p, name + ".qkv", x).reshape(bn, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q = qkv[0] * (c // heads) ** -0.5  # scale q before the product (trap 7)
        scores = q @ qkv[1].transpose(-2, -1)
        table = p[name + ".relative_position_bias_table"]
        bias = table[self.rel_index[win].reshape(-1)].view(n, n, heads).permute(2, 0, 1)
        scores = scores + bias.unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            scores = scores.view(bn // nw, nw, heads, n, n) + mask[None, :, None]
            scores = scores.view(bn, heads, n, n)
        out = (scores.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(bn, n, c)
        return linear(p, name + ".proj", out)

    def swin_block(self, name, x, st, win, shift):
        p, eps, side = self.p, self.vcfg["layer_norm_eps"], st["side"]
        b, _, c = x.shape
        h = layer_norm(p, name + ".norm1", x, eps).view(b, side, side, c)
        if shift:
            h = torch.roll(h, shifts=(-shift, -shift), dims=(1, 2))
        mask = self.masks.get((side, win, shift)) if shift else None
        h = self.window_attention(name + ".attn", window_partition(h, win), st["heads"], win, mask)
        h = window_merge(h, win, side, side)
        if shift:
            h = torch.roll(h, shifts=(shift, shift), dims=(1, 2))
        x = x + h.reshape(b, side * side, c)
        m = linear(p, name + ".mlp.fc1", layer_norm(p, name + ".norm2", x, eps))
        return x + linear(p, name + ".mlp.fc2", F.gelu(m))

    def patch_merge(self, name, x, side):
        """Channel order (even,even), (odd row,even col), (even row,odd col), (odd,odd); LN; no-bias Linear."""
        b, _, c = x.shape
        g = x.view(b, side, side, c)
        g = torch.cat([g[:, 0::2, 0::2], g[:, 1::2, 0::2], g[:, 0::2, 1::2], g[:, 1::2, 1::2]], -1)
        g = layer_norm(self.p, name + ".norm", g.view(b, -1, 4 * c), self.vcfg["layer_norm_eps"])
        return linear(self.p, name + ".reduction", g, bias=False)

    def vision_tokens(self, image):
        """image [N,3,H,W] -> (final-LN patch tokens [N,P,Cv], per-stage outputs)."""
        p, eps = self.p, self.vcfg["layer_norm_eps"]
        ps = self.vcfg["swin_patch_size"]
        x = F.conv2d(image, p[VISION + ".patch_embed.proj.weight"], p[VISION + ".patch_embed.proj.bias"], stride=ps)
        x = layer_norm(p, VISION + ".patch_embed.norm", x.flatten(2).transpose(1, 2), eps)
        stage_out = []
        for s, st in enumerate(self.stages):
            for j, (win, shift) in enumerate(st["blocks"]):
                x = self.swin_block(f"{VISION}.layers.{s}.blocks.{j}", x, st, win, shift)
            if st["merge"]:
                x = self.patch_merge(f"{VISION}.layers.{s}.downsample", x, st["side"])
            stage_out.append(x)
        return layer_norm(p, VISION + ".norm", x, eps), stage_out

    @staticmethod
    def with_cls(tokens):
        """[N,P,C] -> [N,1+P,C], slot 0 the mean of the tokens (sheet 2.9)."""
        cls = F.adaptive_avg_pool1d(tokens.transpose(1, 2), 1).transpose(1, 2)
        return torch.cat([cls, tokens], 1)

    @staticmethod
    def region_embeds(tokens, image_atts, idx_to_group_img):
        """Per text: [region CLS; all patches of its image] (sheet 2.10); the
        region CLS is the image_atts-weighted mean of the patches."""
        tb = tokens[idx_to_group_img]
        w = image_atts[:, 1:].unsqueeze(2).to(tokens.dtype)
        cls = (w * tb).sum(1, keepdim=True) / w.sum(1, keepdim=True)
        return torch.cat([cls, tb], 1)

    # ---------------------------------------------------------------- text (sheet 3)

    def bert_embeddings(self, ids):
        p = self.p
        n = ids.shape[1]
        e = F.embedding(ids, p[BERT + ".embeddings.word_embeddings.weight"], padding_idx=self.tcfg["pad_token_id"])
        e = e + F.embedding(torch.zeros_like(ids), p[BERT + ".embeddings.token_type_embeddings.weight"])
        e = e + F.embedding(torch.arange(n).unsqueeze(0), p[BERT + ".embeddings.position_embeddings.weight"])
        return layer_norm(p, BERT + ".embeddings.LayerNorm", e, self.tcfg["layer_norm_eps"])

    def additive_mask(self, atts, value):
        """[B,K] 0/1 -> [B,1,1,K]: 0 for kept keys, `value` for dropped ones."""
        return (1.0 - atts[:, None, None, :].to(self.dtype)) * value

    def attention(self, name, x, kv, mask):
        """BertAttention: multi-head attention, scores divided by sqrt(head dim)
        after the product, then output dense + residual + LN."""
        p, heads = self.p, self.tcfg["num_attention_heads"]
        b, n, c = x.shape
        dh = c // heads

        def split(t):
            return t.view(t.shape[0], t.shape[1], heads, dh).permute(0, 2, 1, 3)

        q = split(linear(p, name + ".self.query", x))
        k = split(linear(p, name + ".self.key", kv))
        v = split(linear(p, name + ".self.value", kv))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + mask
        ctx = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, n, c)
        out = linear(p, name + ".output.dense", ctx)
        return layer_norm(p, name + ".output.LayerNorm", out + x, self.tcfg["layer_norm_eps"])

    def bert_layer(self, i, x, mask, image, image_mask):
        p, eps = self.p, self.tcfg["layer_norm_eps"]
        name = f"{BERT}.encoder.layer.{i}"
        a = self.attention(name + ".attention", x, x, mask)
        if i >= self.tcfg["fusion_layer"]:
            a = self.attention(name + ".crossattention", a, image, image_mask)
        h = F.gelu(linear(p, name + ".intermediate.dense", a))
        return layer_norm(p, name + ".output.LayerNorm", linear(p, name + ".output.dense", h) + a, eps)

    def bert_layers(self, x, text_atts, first, last, image=None, image_atts=None):
        mask = self.additive_mask(text_atts, TEXT_MASK)
        image_mask = self.additive_mask(image_atts, CROSS_MASK) if image is not None else None
        for i in range(first, last):
            x = self.bert_layer(i, x, mask, image, image_mask)
        return x

    def text_encode(self, ids, atts):
        """mode 'text': embeddings + layers [0, fusion_layer). Returns (embeddings, states)."""
        e = self.bert_embeddings(ids)
        return e, self.bert_layers(e, atts, 0, self.tcfg["fusion_layer"])

    def fusion(self, text_states, text_atts, image, image_atts):
        """mode 'fusion': layers [fusion_layer, num_layers) on given text states."""
        return self.bert_layers(text_states, text_atts, self.tcfg["fusion_layer"],
                                self.tcfg["num_hidden_layers"], image, image_atts)

    def mlm_logits(self, ids_masked, atts, image, image_atts, masked_pos):
        """mode 'multi_modal' on the masked ids, gathered at masked_pos, MLM head
        with the decoder tied to the word embeddings."""
        p, eps = self.p, self.tcfg["layer_norm_eps"]
        x = self.bert_layers(self.bert_embeddings(ids_masked), atts, 0, self.tcfg["num_hidden_layers"],
                             image, image_atts)
        x = torch.gather(x, 1, masked_pos.unsqueeze(2).expand(-1, -1, x.shape[-1]))
        h = layer_norm(p, MLM_HEAD + ".transform.LayerNorm",
                       F.gelu(linear(p, MLM_HEAD + ".transform.dense", x)), eps)
        return F.linear(h, p[MLM_HEAD + ".decoder.weight"], p[MLM_HEAD + ".bias"])

    # ---------------------------------------------------------------- losses (sheet 5)

    def features(self, image_embeds, text_states):
        p = self.p
        img = F.normalize(linear(p, "vision_proj", image_embeds[:, 0]), dim=-1)
        txt = F.normalize(linear(p, "text_proj", text_states[:, 0]), dim=-1)
        return img, txt

    def itc_loss(self, image_feat, text_feat):
        logits = image_feat @ text_feat.t() / self.p["temp"]
        labels = torch.arange(logits.shape[0])
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2

    def hard_negatives(self, image_feat, text_feat):
        """The argmax of the official sampling weights (softmax(sim/temp) + 1e-5,
        diagonal zeroed): (negative image per text, negative text per image)."""
        with torch.no_grad():
            temp = self.p["temp"]
            w_i2t = F.softmax(image_feat @ text_feat.t() / temp, dim=1) + 1e-5
            w_t2i = F.softmax(text_feat @ image_feat.t() / temp, dim=1) + 1e-5
            w_i2t.fill_diagonal_(0)
            w_t2i.fill_diagonal_(0)
            return w_t2i.argmax(1), w_i2t.argmax(1)

    def itm(self, image_embeds, image_atts, text_states, text_atts, neg_image, neg_text):
        """Positives (text b, image b), then (text b, image neg_image[b]), then
        (text neg_text[b], image b). Returns (fusion CLS [3B,Ct], logits [3B,2], loss)."""
        text_all = torch.cat([text_states, text_states[neg_text]], 0)
        text_atts_all = torch.cat([text_atts, text_atts[neg_text]], 0)
        image_all = torch.cat([image_embeds[neg_image], image_embeds], 0)
        image_atts_all = torch.cat([image_atts[neg_image], image_atts], 0)
        pos = self.fusion(text_states, text_atts, image_embeds, image_atts)[:, 0]
        neg = self.fusion(text_all, text_atts_all, image_all, image_atts_all)[:, 0]
        cls = torch.cat([pos, neg], 0)
        logits = head_mlp(self.p, "itm_head", cls, self.cfg["head_layer_norm_eps"])
        b = text_states.shape[0]
        labels = torch.cat([torch.ones(b, dtype=torch.long), torch.zeros(2 * b, dtype=torch.long)])
        return cls, logits, F.cross_entropy(logits, labels)

    def bbox(self, image_full, text_states, text_atts):
        """Box head on the fusion CLS against full images, all tokens visible."""
        ones = torch.ones(image_full.shape[:2], dtype=torch.long)
        cls = self.fusion(text_states, text_atts, image_full, ones)[:, 0]
        return cls, torch.sigmoid(head_mlp(self.p, "bbox_head", cls, self.cfg["head_layer_norm_eps"]))

    @staticmethod
    def bbox_loss(pred, target, is_image):
        """(sum L1, sum (1 - GIoU)) over non-whole-image texts, each / their count;
        the GIoU term is zero for the batch if any box has x1<x0 or y1<y0 (sheet 5.4)."""
        l1 = (pred - target).abs()

        def corners(b):
            cx, cy, w, h = b.unbind(-1)
            return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)

        b1, b2 = corners(pred), corners(target)
        if (b1[:, 2:] < b1[:, :2]).any() or (b2[:, 2:] < b2[:, :2]).any():
            giou_loss = torch.zeros(pred.shape[0], dtype=pred.dtype)
        else:
            area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
            area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
            wh = (torch.min(b1[:, 2:], b2[:, 2:]) - torch.max(b1[:, :2], b2[:, :2])).clamp(min=0)
            inter = wh[:, 0] * wh[:, 1]
            union = area1 + area2 - inter
            iou = inter / union
            wh = (torch.max(b1[:, 2:], b2[:, 2:]) - torch.min(b1[:, :2], b2[:, :2])).clamp(min=0)
            enclosing = wh[:, 0] * wh[:, 1]
            giou_loss = 1 - (iou - (enclosing - union) / enclosing)
        keep = (1 - is_image).to(pred.dtype)
        n = keep.sum()
        return (l1 * keep[:, None]).sum() / n, (giou_loss * keep).sum() / n

    # ---------------------------------------------------------------- one pretraining step

    def step(self, inp, region):
        """One pretraining forward (the official XVLM.forward) on the fixture's
        input names; returns {output name: tensor} incl. `loss_total`.
        region=False: image-text batch; True: region batch with the box losses.
        Without itm_neg_*_idx in `inp` the negatives are the argmax of the
        official sampling weights."""
        with torch.no_grad():
            self.p["temp"].clamp_(*self.cfg["temp_clamp"])
        out = {}
        tokens, stages = self.vision_tokens(inp["image"])
        full = self.with_cls(tokens)
        out["vision_embeds"] = full
        if region:
            g = inp["idx_to_group_img"]
            image_atts = inp["image_atts"]
            image_embeds = self.region_embeds(tokens, image_atts, g)
            image_full = full[g]
            out["region_vision_embeds"] = image_embeds
            out["vision_embeds_fullatts"] = image_full
        else:
            image_embeds = full
            image_atts = torch.ones(full.shape[:2], dtype=torch.long)
            for s, x in enumerate(stages):
                out[f"swin_stage{s}"] = x[:1]
        text_atts = inp["text_atts"]
        out["text_embedding_output"], text_states = self.text_encode(inp["text_ids"], text_atts)
        out["text_embeds"] = text_states
        image_feat, text_feat = self.features(image_embeds, text_states)
        out["image_feat"], out["text_feat"] = image_feat, text_feat
        out["sim_i2t"] = image_feat @ text_feat.t() / self.p["temp"]
        losses = {"loss_itc": self.itc_loss(image_feat, text_feat)}
        if "itm_neg_image_idx" in inp:
            neg_image, neg_text = inp["itm_neg_image_idx"], inp["itm_neg_text_idx"]
        else:
            neg_image, neg_text = self.hard_negatives(image_feat, text_feat)
        out["itm_cross_cls"], out["itm_logits"], losses["loss_itm"] = self.itm(
            image_embeds, image_atts, text_states, text_atts, neg_image, neg_text)
        logits = self.mlm_logits(inp["text_ids_masked"], text_atts, image_embeds, image_atts, inp["masked_pos"])
        out["mlm_logits"] = logits
        losses["loss_mlm"] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), inp["masked_ids"].reshape(-1),
                                             ignore_index=-100)
        if region:
            out["bbox_cross_cls"], out["bbox_pred"] = self.bbox(image_full, text_states, text_atts)
            losses["loss_bbox"], losses["loss_giou"] = self.bbox_loss(out["bbox_pred"], inp["target_bbox"],
                                                                      inp["is_image"])
        total = sum(losses.values())
        out.update(losses)
        out["loss_total"] = total
        return out


# --------------------------------------------------------------------------------------------
# Parameters


def load_params(arrays, dtype=torch.float32):
    """{name: numpy array} -> {name: leaf tensor requiring grad} in `dtype`.
    Integer buffers (position_ids) are skipped; tied names share one tensor."""
    params = {}
    for name, a in arrays.items():
        if a.dtype.kind != "f":
            continue
        params[name] = torch.tensor(a, dtype=dtype).requires_grad_(True)
    for a, b in TIED:
        params[b] = params[a]
    return params


def unique_params(params):
    """(name, tensor) with each tied tensor once, in sorted name order."""
    seen, out = set(), []
    for name in sorted(params):
        if id(params[name]) not in seen:
            seen.add(id(params[name]))
            out.append((name, params[name]))
    return out


def grads(params, loss):
    """({name: d loss / d param} for every name, tied names repeated; sorted names
    the loss does not reach, whose gradient is returned as zeros)."""
    uniq = unique_params(params)
    g = torch.autograd.grad(loss, [t for _, t in uniq], allow_unused=True)
    by_id = {id(t): gi for (_, t), gi in zip(uniq, g)}
    unused = sorted(name for name, t in params.items() if by_id[id(t)] is None)
    return {name: by_id[id(t)] if by_id[id(t)] is not None else torch.zeros_like(t)
            for name, t in params.items()}, unused


def inputs_to_torch(arrays, prefix, dtype=torch.float32):
    """Picks the `prefix.` inputs; float arrays become `dtype`, integers int64."""
    out = {}
    for name, a in arrays.items():
        if name.startswith(prefix + "."):
            t = torch.tensor(a)
            out[name[len(prefix) + 1:]] = t.to(dtype) if t.is_floating_point() else t.long()
    return out
