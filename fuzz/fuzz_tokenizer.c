/* libFuzzer target: arbitrary bytes through the vocab reader, pre_caption,
 * pre_question, the WordPiece and pre-tokenized readers and the batch encoders. Besides the
 * sanitizers' checks it traps when an invariant breaks: ids out of range, a
 * successful cleaning that is not valid UTF-8, an encoding of the wrong shape.
 *
 * The first byte picks the mode: byte % 4 == 0 parses the rest as a vocab.txt;
 * otherwise the rest is a text and the byte also sets max_words (byte / 4). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/caption.h"
#include "data/tokenizer.h"

/* A small vocab with specials, ASCII, "##" pieces and multi-byte tokens, so
 * WordPiece finds real matches and real failures. */
static const char k_vocab[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n!\n\"\n#\n$\n%\n&\n'\n(\n)\n*\n+\n,\n-\n.\n/\n:\n;\n<\n=\n>\n?\n@\n[\n\\\n]\n"
    "^\n_\n`\n{\n|\n}\n~\n0\n1\n2\n3\n4\n5\n6\n7\n8\n9\na\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\no\np\nq\nr\n"
    "s\nt\nu\nv\nw\nx\ny\nz\n##a\n##b\n##c\n##d\n##e\n##i\n##n\n##o\n##s\n##t\n##ing\n##ed\nthe\nman\ndog\n"
    "person\nriding\nhorse\nun\n##aff\n##able\ncafe\n\xc3\x9f\n\xcf\x83\n##\xcf\x82\n\xe7\x8c\xab\n"
    "\xf0\x9f\x98\x80\n\xe2\x80\x93\n";

static const xv_tokenizer *tokenizer(void) {
    static xv_tokenizer *t;
    if (!t && xv_tokenizer_from_memory(k_vocab, sizeof k_vocab - 1, "fuzz-vocab", &t) != XV_OK)
        __builtin_trap();
    return t;
}

static void check_ids(const xv_tokenizer *t, const xv_ids *ids) {
    int32_t n = xv_tokenizer_vocab_size(t);
    for (size_t i = 0; i < ids->n; i++)
        if (ids->v[i] < 0 || ids->v[i] >= n) __builtin_trap();
}

static void fuzz_vocab(const uint8_t *data, size_t size) {
    xv_tokenizer *t;
    if (xv_tokenizer_from_memory((const char *)data, size, "fuzz-input", &t) != XV_OK) return;
    static const char text[] = "A man [MASK] riding caf\xc3\xa9 ##s x";
    xv_ids ids = {0};
    if (xv_tokenize(t, text, sizeof text - 1, &ids) != XV_OK) __builtin_trap();
    check_ids(t, &ids);
    for (size_t i = 0; i < ids.n; i++) (void)strlen(xv_tokenizer_id_to_token(t, ids.v[i]));
    xv_ids_free(&ids);
    xv_tokenizer_free(t);
}

static void fuzz_text(const uint8_t *data, size_t size, int max_words) {
    const xv_tokenizer *t = tokenizer();
    const char *text = (const char *)data;
    xv_ids ids = {0};
    xv_status s = xv_tokenize(t, text, size, &ids);
    if (s == XV_OK) check_ids(t, &ids);
    ids.n = 0;
    if (xv_tokenize_pretokenized(t, text, size, &ids) == XV_OK) {
        if (ids.n == 0) __builtin_trap(); /* split(' ') always gives at least one piece */
        check_ids(t, &ids);
    }
    xv_ids_free(&ids);

    char *caption = NULL;
    size_t len = 0;
    if (xv_pre_caption(text, size, max_words, &caption, &len) == XV_OK) {
        if (len == 0) __builtin_trap(); /* an empty caption must be rejected */
        xv_ids cap = {0};
        if (xv_tokenize(t, caption, len, &cap) != XV_OK) __builtin_trap(); /* output must be valid UTF-8 */
        check_ids(t, &cap);
        xv_ids_free(&cap);
        if (strlen(caption) == len) { /* the encoders take NUL-terminated texts */
            const char *one[] = {caption};
            const xv_encode_opts forms[] = {xv_encode_pretrain(8), xv_encode_finetune(0), xv_encode_vqa_answer(),
                                            xv_encode_caption(6)};
            for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
                xv_text_batch b;
                if (xv_encode_batch(t, one, 1, &forms[f], &b) != XV_OK) __builtin_trap();
                if (b.batch != 1 || b.len < 1 || (forms[f].max_tokens && b.len > forms[f].max_tokens) ||
                    b.ids[0] != xv_tokenizer_special_ids(t).cls || b.atts[0] != 1)
                    __builtin_trap();
                xv_text_batch_free(&b);
            }
        }
    }
    free(caption);

    char *question = NULL;
    if (xv_pre_question(text, size, max_words, &question, &len) == XV_OK) {
        xv_ids q = {0};
        if (xv_tokenize(t, question, len, &q) != XV_OK) __builtin_trap();
        xv_ids_free(&q);
    }
    free(question);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] % 4 == 0)
        fuzz_vocab(data + 1, size - 1);
    else
        fuzz_text(data + 1, size - 1, data[0] / 4);
    return 0;
}
