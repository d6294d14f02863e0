"""A PyTorch restatement of the official VQA answer ranking (models/model_vqa.py
rank_answer) and captioning beam search (models/model_captioning.py generate ->
transformers 4.12.5 beam search over models/xbert.py BertLMHeadModel), for the
benchmarks: the official code needs transformers and timm, which Debian 12 does
not package. It computes what the official code computes, the way it computes
it (tensor ops, batching, caches), and check_vqa_caption_fixture.py shows it
reproduces ../shared/fixtures/vqa and captioning (ids exact).

What the official code does and this follows:
- rank_answer: the decoder on [CLS] alone per question, softmax over the
  vocabulary at each answer's first piece, top-k; then the k candidates of
  every question padded to the answer list's length, the question states tiled
  k times, the decoder with labels (pads -100) and reduction 'none': logits at
  every position, per-answer summed cross-entropy; log(first prob) - nll,
  softmax, top-k again.
- generation: image states repeat_interleave'd per beam; each step runs the
  decoder on the newest token with the self-attention keys/values of the
  earlier ones cached (past_key_values, reordered by index_select on the beam
  rows), while the cross-attention keys/values are computed again from the
  image states at every step (xbert's BertSelfAttention recomputes them when
  encoder_hidden_states is given); log-softmax, min_length forbids [SEP], top
  2K per image, BeamSearchScorer / BeamHypotheses (length_penalty 1, no early
  stopping), finalize.

Parameters: a {official state_dict name: tensor} dict (weights.safetensors of
the fixture layout, or what bench_vqa_caption --save-weights writes)."""
import math

import torch
import torch.nn.functional as F

from xvlm_ref import XVLMRef, layer_norm, linear

TEXT_MASK = -10000.0
ENCODER_MASK = -1e9  # invert_attention_mask, float32


class Bert:
    """BertModel / the bert of BertLMHeadModel under `prefix`; layers >= fusion_layer cross-attend."""

    def __init__(self, p, prefix, tcfg, layers, fusion_layer):
        self.p, self.prefix, self.eps = p, prefix, tcfg["layer_norm_eps"]
        self.heads, self.layers, self.fusion_layer = tcfg["num_attention_heads"], layers, fusion_layer
        self.pad = tcfg["pad_token_id"]

    def embed(self, ids, past_len=0):
        p, pre = self.p, self.prefix + ".embeddings"
        pos = torch.arange(past_len, past_len + ids.shape[1]).unsqueeze(0)
        e = F.embedding(ids, p[pre + ".word_embeddings.weight"], padding_idx=self.pad)
        e = e + F.embedding(torch.zeros_like(ids), p[pre + ".token_type_embeddings.weight"])
        e = e + F.embedding(pos, p[pre + ".position_embeddings.weight"])
        return layer_norm(p, pre + ".LayerNorm", e, self.eps)

    def split(self, t):
        return t.view(t.shape[0], t.shape[1], self.heads, -1).permute(0, 2, 1, 3)

    def attention(self, name, x, kv, mask, past=None):
        """BertAttention; past: cached (key, value) [B, heads, t, d] of a self-attention. Returns (out, (k, v))."""
        p = self.p
        q = self.split(linear(p, name + ".self.query", x))
        k = self.split(linear(p, name + ".self.key", kv))
        v = self.split(linear(p, name + ".self.value", kv))
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores + mask
        ctx = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(x.shape)
        out = layer_norm(p, name + ".output.LayerNorm", linear(p, name + ".output.dense", ctx) + x, self.eps)
        return out, (k, v)

    def forward(self, ids, atts, enc, enc_atts, causal, past=None):
        """ids [B, L] (the new tokens when past is given); returns (hidden [B, L, H], new past)."""
        past_len = past[0][0].shape[2] if past is not None else 0
        x = self.embed(ids, past_len)
        B, L = ids.shape
        if atts is None:
            atts = torch.ones(B, past_len + L, dtype=torch.long)
        m = atts[:, None, None, :].float()
        if causal:  # get_extended_attention_mask(is_decoder): causal over the new tokens, the past visible
            tri = torch.tril(torch.ones(L, L))
            tri = torch.cat([torch.ones(L, past_len), tri], 1)
            m = tri[None, None] * m
        mask = (1.0 - m) * TEXT_MASK
        enc_mask = None if enc_atts is None else (1.0 - enc_atts[:, None, None, :].float()) * ENCODER_MASK
        new_past = []
        for i in range(self.layers):
            name = f"{self.prefix}.encoder.layer.{i}"
            x, kv = self.attention(name + ".attention", x, x, mask, past[i] if past is not None else None)
            new_past.append(kv)
            if i >= self.fusion_layer:
                x, _ = self.attention(name + ".crossattention", x, enc, enc_mask)
            h = F.gelu(linear(self.p, name + ".intermediate.dense", x))
            x = layer_norm(self.p, name + ".output.LayerNorm", linear(self.p, name + ".output.dense", h) + x, self.eps)
        return x, new_past


def lm_logits(p, prefix, hidden, eps):
    """cls.predictions: transform (dense, GELU, LayerNorm), decoder tied to the word embeddings, bias."""
    h = F.gelu(linear(p, prefix + ".transform.dense", hidden))
    h = layer_norm(p, prefix + ".transform.LayerNorm", h, eps)
    return F.linear(h, p[prefix + ".decoder.weight"], p[prefix + ".bias"])


def tie(p):
    """The LM head's output matrix and bias are the decoder's word embeddings and its own bias."""
    p = dict(p)
    p["text_decoder.cls.predictions.decoder.weight"] = p["text_decoder.bert.embeddings.word_embeddings.weight"]
    p.setdefault("text_decoder.cls.predictions.decoder.bias", p["text_decoder.cls.predictions.bias"])
    p.setdefault("temp", torch.zeros(1))  # XVLMRef reads the dtype from it
    return p


class Decoder:
    """BertLMHeadModel `text_decoder` (is_decoder)."""

    def __init__(self, p, tcfg, layers, fusion_layer):
        self.p, self.eps = p, tcfg["layer_norm_eps"]
        self.bert = Bert(p, "text_decoder.bert", tcfg, layers, fusion_layer)

    def logits(self, ids, atts, enc, enc_atts, past=None):
        h, new_past = self.bert.forward(ids, atts, enc, enc_atts, True, past)
        return lm_logits(self.p, "text_decoder.cls.predictions", h, self.eps), new_past

    def sequence_nll(self, ids, atts, enc, enc_atts, pad):
        """labels = ids with pads -100, reduction 'none': summed CE of the shifted targets per row."""
        logits, _ = self.logits(ids, atts, enc, enc_atts)
        labels = ids.masked_fill(ids == pad, -100)
        V = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), reduction="none")
        return loss.view(ids.shape[0], -1).sum(1)


def vision_embeds(ref, image):
    return ref.with_cls(ref.vision_tokens(image)[0])


class VQA:
    def __init__(self, cfg, params):
        t = cfg["text"]
        self.p, self.pad = tie(params), t["pad_token_id"]
        self.vision = XVLMRef(cfg, self.p)
        self.encoder = Bert(self.p, "text_encoder", t, t["num_hidden_layers"], t["fusion_layer"])
        dec = dict(t)
        self.decoder = Decoder(self.p, dec, t["num_hidden_layers"] - t["fusion_layer"], 0)

    def question_states(self, image, q_ids, q_atts):
        img = vision_embeds(self.vision, image)
        h, _ = self.encoder.forward(q_ids, q_atts, img, torch.ones(img.shape[:2], dtype=torch.long), False)
        return h

    def rank_answer(self, q_states, q_atts, answer_ids, answer_atts, k):
        Q = q_states.shape[0]
        start = answer_ids[0, 0].repeat(Q, 1)
        start_logits = self.decoder.logits(start, None, q_states, q_atts)[0][:, 0, :]
        first = F.softmax(start_logits, dim=1).index_select(1, answer_ids[:, 1])
        topk_probs, topk_ids = first.topk(k, dim=1)
        ids = torch.cat([answer_ids.index_select(0, t) for t in topk_ids], 0)
        atts = torch.cat([answer_atts.index_select(0, t) for t in topk_ids], 0)
        qs = q_states.repeat_interleave(k, 0)  # tile(x, 0, k)
        qa = q_atts.repeat_interleave(k, 0)
        nll = self.decoder.sequence_nll(ids, atts, qs, qa, self.pad)
        log_probs = topk_probs.view(-1).log() - nll
        probs = F.softmax(log_probs.view(Q, k), dim=-1)
        probs, rerank = probs.topk(k, dim=1)
        return {"start_logits": start_logits, "first_token_probs": first, "topk_ids_first": topk_ids,
                "candidate_nll": nll, "topk_probs": probs, "topk_ids": torch.gather(topk_ids, 1, rerank)}


class Hypotheses:
    """transformers BeamHypotheses (length_penalty 1, early_stopping False)."""

    def __init__(self, K):
        self.K, self.beams, self.worst = K, [], 1e9

    def add(self, ids, sum_logprobs):
        score = sum_logprobs / ids.shape[-1]
        if len(self.beams) < self.K or score > self.worst:
            self.beams.append((score, ids))
            if len(self.beams) > self.K:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs, cur_len):
        return len(self.beams) >= self.K and self.worst >= best_sum_logprobs / cur_len


class Captioner:
    def __init__(self, cfg, params, sep=102):
        t = cfg["text"]
        self.p, self.pad, self.sep = tie(params), t["pad_token_id"], sep
        self.vision = XVLMRef(cfg, self.p)
        self.decoder = Decoder(self.p, t, t["num_hidden_layers"], t["fusion_layer"])

    def beam_search(self, image, prompt, K, max_length, min_length):
        """generate(num_beams=K): (sequences [B, S], sequence_scores [B])."""
        enc = vision_embeds(self.vision, image).repeat_interleave(K, 0)
        enc_atts = torch.ones(enc.shape[:2], dtype=torch.long)
        B = image.shape[0]
        ids = prompt.view(1, -1).repeat(B * K, 1)
        scores = torch.zeros(B, K)
        scores[:, 1:] = -1e9
        scores = scores.view(-1)
        hyps = [Hypotheses(K) for _ in range(B)]
        done = [False] * B
        past = None
        while True:
            step_ids = ids if past is None else ids[:, -1:]
            logits, past = self.decoder.logits(step_ids, torch.ones_like(ids), enc, enc_atts, past)
            logp = F.log_softmax(logits[:, -1, :], dim=-1)
            cur_len = ids.shape[1]
            if cur_len < min_length:
                logp[:, self.sep] = -float("inf")
            V = logp.shape[-1]
            cand = (logp + scores[:, None]).view(B, K * V)
            cand_scores, cand_idx = torch.topk(cand, 2 * K, dim=1, largest=True, sorted=True)
            beam, tok = cand_idx // V, cand_idx % V
            next_scores, next_tokens, next_rows = torch.zeros(B, K), torch.zeros(B, K, dtype=torch.long), \
                torch.zeros(B, K, dtype=torch.long)
            for b in range(B):
                if done[b]:
                    next_tokens[b] = self.pad
                    continue
                j = 0
                for rank in range(2 * K):
                    row = b * K + beam[b, rank].item()
                    if tok[b, rank].item() == self.sep:
                        if rank < K:
                            hyps[b].add(ids[row].clone(), cand_scores[b, rank].item())
                    else:
                        next_scores[b, j], next_tokens[b, j], next_rows[b, j] = cand_scores[b, rank], tok[b, rank], row
                        j += 1
                    if j == K:
                        break
                done[b] = done[b] or hyps[b].is_done(cand_scores[b].max().item(), cur_len)
            scores, rows = next_scores.view(-1), next_rows.view(-1)
            ids = torch.cat([ids[rows], next_tokens.view(-1, 1)], 1)
            past = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in past]
            if all(done) or ids.shape[1] >= max_length:
                break
        best, best_scores = [], []
        for b in range(B):
            if not done[b]:
                for k in range(K):
                    hyps[b].add(ids[b * K + k], scores[b * K + k].item())
            s, h = sorted(hyps[b].beams, key=lambda x: x[0]).pop()
            best.append(h)
            best_scores.append(s)
        S = min(max(len(h) for h in best) + 1, max_length)
        out = torch.full((B, S), self.pad, dtype=torch.long)
        for b, h in enumerate(best):
            out[b, :len(h)] = h
            if len(h) < max_length:
                out[b, len(h)] = self.sep
        return out, torch.tensor(best_scores)
