/* WordPiece tokenizer, batch encodings, pre_caption / pre_question and the
 * vocab reader, on a small built-in vocab. Expected outputs follow the official
 * Python semantics (transformers 4.12.5 BertTokenizer, dataset/utils.py); the
 * non-obvious ones were checked with tools/text_reference.py. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/caption.h"
#include "data/tokenizer.h"
#include "data/vocab.h"
#include "testutil.h"

static const char k_vocab[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"
    "a\n##a\nman\nriding\nhorse\n.\n,\n!\n?\n-\n/\n[\n]\n<\n>\n#\n$\n^\n`\n~\n"
    "cafe\nnaive\nhello\nworld\nis\non\nthe\nun\n##aff\n##able\nplay\n##ing\n##s\n"
    "猫\n狗\n人\n大\ndog\ncat\nmask\n\xf0\x9f\x98\x80\n¿\n–\ni\n##i\nσ\nς\nο\n##δ\n##ο\n##σ\nοδος\n"
    "한\n\xe1\x84\x92\n##\xe1\x85\xa1\n##\xe1\x86\xab\nperson\nsign\n"
    "##b\n##\xf0\x9d\x85\xa5\n##\xf0\x9d\x85\xad\n"; /* U+1D165 (class 216), U+1D16D (class 226): Mc marks */

static xv_tokenizer *g_tok;

/* Tokens of `text` joined by single spaces (static buffer), or "ERROR". */
static const char *toks_n(const char *text, size_t len) {
    static char buf[8192];
    xv_ids ids = {0};
    if (xv_tokenize(g_tok, text, len, &ids) != XV_OK) {
        xv_ids_free(&ids);
        return "ERROR";
    }
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ids.n; i++) {
        const char *t = xv_tokenizer_id_to_token(g_tok, ids.v[i]);
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? " " : "", t);
    }
    xv_ids_free(&ids);
    return buf;
}
static const char *toks(const char *text) { return toks_n(text, strlen(text)); }

#define CHECK_TOKS(text, expected)                                                                 \
    do {                                                                                           \
        const char *got_ = toks(text);                                                             \
        CHECK(strcmp(got_, expected) == 0, "tokens of \"%s\": got \"%s\", expected \"%s\"", text, got_, \
              expected);                                                                           \
    } while (0)

static void test_basic_rules(void) {
    CHECK_TOKS("A man riding a horse.", "a man riding a horse .");
    CHECK_TOKS("", "");
    CHECK_TOKS("   \t\n  ", "");
    /* accents: NFD then nonspacing marks dropped; precomposed and combining alike */
    CHECK_TOKS("Café NAÏVE", "cafe naive");
    CHECK_TOKS("cafe\xcc\x81", "cafe");
    CHECK_TOKS("\xcc\x81\xcc\x88", ""); /* a word of marks only vanishes */
    /* CJK ideographs are words of their own; Hangul is not CJK here and is
     * decomposed by NFD into jamo (Lo, kept) */
    CHECK_TOKS("猫is大人", "猫 is 大 人");
    CHECK_TOKS("한", "\xe1\x84\x92 ##\xe1\x85\xa1 ##\xe1\x86\xab");
    /* punctuation: ASCII non-alphanumerics (incl. $ ^ ` ~ which are not P*) and Unicode P* */
    CHECK_TOKS("hello,world!?", "hello , world ! ?");
    CHECK_TOKS("$^`~", "$ ^ ` ~");
    CHECK_TOKS("¿cafe–dog", "¿ cafe – dog");
    /* control / format characters are dropped, not spaces: the word stays whole */
    CHECK_TOKS("hel\x01lo wor\x7f" "ld", "hello world");
    CHECK_TOKS("hel\xe2\x80\x8blo", "hello");          /* U+200B ZERO WIDTH SPACE (Cf) */
    CHECK_TOKS("hel\xef\xbb\xbflo", "hello");          /* U+FEFF BOM (Cf) */
    CHECK_TOKS("hel\xef\xbf\xbdlo", "hello");          /* U+FFFD */
    CHECK_TOKS("hel\xee\x80\x80lo", "hello");          /* U+E000 private use (Co) */
    CHECK_TOKS("hel\xc2\x85lo", "hello");              /* U+0085 NEL is Cc */
    {
        const char nul_text[] = "hel\0lo";
        const char *got = toks_n(nul_text, sizeof nul_text - 1);
        CHECK(strcmp(got, "hello") == 0, "NUL dropped: %s", got);
    }
    /* Unicode spaces split words: NBSP, ideographic space, thin space (Zs), and
     * U+2028 / U+2029 (not whitespace to BERT's cleaner, but str.split() splits) */
    CHECK_TOKS("hello\xc2\xa0world", "hello world");
    CHECK_TOKS("hello\xe3\x80\x80world", "hello world");
    CHECK_TOKS("hello\xe2\x80\x89world", "hello world");
    CHECK_TOKS("hello\xe2\x80\xa8world\xe2\x80\xa9" "dog", "hello world dog");
    /* emoji: in the vocab -> itself; a word that cannot be split -> [UNK] */
    CHECK_TOKS("\xf0\x9f\x98\x80 dog", "\xf0\x9f\x98\x80 dog");
    CHECK_TOKS("\xf0\x9f\x90\xb6 dog", "[UNK] dog");
    CHECK_TOKS("zebra", "[UNK]");
    /* WordPiece: greedy longest match with ## continuations */
    CHECK_TOKS("unaffable playings", "un ##aff ##able play ##ing ##s");
    CHECK_TOKS("unaffablex", "[UNK]");
    /* lower-casing is per character: capital sigma always becomes σ */
    CHECK_TOKS("ΟΔΟΣ οδος", "ο ##δ ##ο ##σ οδος");
    CHECK_TOKS("\xc4\xb0", "i"); /* U+0130 -> i + U+0307 -> i */
}

static void test_long_words(void) {
    char w[128];
    memset(w, 'a', sizeof w);
    w[100] = '\0'; /* exactly 100 characters: split into pieces */
    const char *got = toks(w);
    CHECK(strncmp(got, "a ##a ##a", 9) == 0 && strlen(got) == 1 + 99 * 4, "100 chars -> 100 pieces (%zu bytes)",
          strlen(got));
    w[100] = 'a';
    w[101] = '\0'; /* 101 characters: [UNK] */
    CHECK_TOKS(w, "[UNK]");
    /* the limit counts characters after accent stripping, not bytes */
    char acc[512];
    size_t k = 0;
    for (int i = 0; i < 100; i++) acc[k++] = 'a', acc[k++] = '\xcc', acc[k++] = '\x81';
    acc[k] = '\0';
    got = toks(acc);
    CHECK(strlen(got) == 1 + 99 * 4, "100 accented chars -> 100 pieces");
}

/* NFD's canonical ordering, seen through the spacing marks (Mc) that survive
 * accent stripping: U+1D16D (class 226) before U+1D165 (class 216) swap; a
 * class-0 mark (U+0E31, Mn) between them blocks the swap; a dropped class-230
 * Mn does not. Expected tokens from tools/text_reference.py. */
#define STEM "\xf0\x9d\x85\xa5"
#define DOT "\xf0\x9d\x85\xad"
static void test_canonical_order(void) {
    CHECK_TOKS("a" DOT STEM "b", "a ##" STEM " ##" DOT " ##b");
    CHECK_TOKS("a" DOT "\xe0\xb8\xb1" STEM "b", "a ##" DOT " ##" STEM " ##b");
    CHECK_TOKS("a" DOT "\xcc\x81" STEM "b", "a ##" STEM " ##" DOT " ##b");
    /* a long run takes the linear-time path; it must sort the same way */
    char text[1024], want[4096];
    size_t k = (size_t)snprintf(text, sizeof text, "a");
    for (int i = 0; i < 40; i++) k += (size_t)snprintf(text + k, sizeof text - k, DOT STEM);
    snprintf(text + k, sizeof text - k, "b");
    k = (size_t)snprintf(want, sizeof want, "a");
    for (int i = 0; i < 40; i++) k += (size_t)snprintf(want + k, sizeof want - k, " ##" STEM);
    for (int i = 0; i < 40; i++) k += (size_t)snprintf(want + k, sizeof want - k, " ##" DOT);
    snprintf(want + k, sizeof want - k, " ##b");
    CHECK_TOKS(text, want);
}

static void test_special_tokens(void) {
    CHECK_TOKS("[MASK] is a dog", "[MASK] is a dog");
    CHECK_TOKS("dog[MASK]cat", "dog [MASK] cat");
    CHECK_TOKS("[CLS][SEP][PAD][UNK]", "[CLS] [SEP] [PAD] [UNK]");
    CHECK_TOKS("[mask]", "[ mask ]"); /* only the exact spelling is special */
    CHECK_TOKS("[MASK", "[ mask");
    xv_special_ids sp = xv_tokenizer_special_ids(g_tok);
    CHECK(sp.pad == 0 && sp.unk == 1 && sp.cls == 2 && sp.sep == 3 && sp.mask == 4, "special ids");
    CHECK(xv_tokenizer_token_to_id(g_tok, "##aff") == xv_tokenizer_token_to_id(g_tok, "un") + 1, "## lookup");
    CHECK(xv_tokenizer_token_to_id(g_tok, "nope") == sp.unk, "absent -> [UNK]");
    CHECK(strcmp(xv_tokenizer_id_to_token(g_tok, -1), "[UNK]") == 0, "id -1");
    CHECK(strcmp(xv_tokenizer_id_to_token(g_tok, 1 << 30), "[UNK]") == 0, "id out of range");
    CHECK(strcmp(xv_tokenizer_id_to_token(g_tok, 5), "a") == 0, "id 5");
}

/* Pre-tokenized captions: strip(), split(' '), whole-token look-up. */
static const char *pretok(const char *text) {
    static char buf[1024];
    xv_ids ids = {0};
    if (xv_tokenize_pretokenized(g_tok, text, strlen(text), &ids) != XV_OK) {
        xv_ids_free(&ids);
        return "ERROR";
    }
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ids.n; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? " " : "", xv_tokenizer_id_to_token(g_tok, ids.v[i]));
    xv_ids_free(&ids);
    return buf;
}

static void test_pretokenized(void) {
    CHECK(strcmp(pretok(" \ta man riding\n"), "a man riding") == 0, "strip + split: %s", pretok(" \ta man riding\n"));
    CHECK(strcmp(pretok("un ##aff ##able"), "un ##aff ##able") == 0, "## pieces as given");
    CHECK(strcmp(pretok("a  man"), "a [UNK] man") == 0, "double space -> empty piece -> [UNK]");
    CHECK(strcmp(pretok("Man a\tman"), "[UNK] [UNK]") == 0, "no lower-casing, tabs do not split");
    CHECK(strcmp(pretok(""), "[UNK]") == 0, "''.split(' ') is ['']");
    CHECK(strcmp(pretok("\xc2\xa0" "a" "\xe3\x80\x80"), "a") == 0, "Unicode whitespace stripped");
    CHECK(strcmp(pretok("a \xff"), "ERROR") == 0, "invalid UTF-8");
}

static void test_invalid_utf8(void) {
    const char *bad[] = {"ab\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"};
    const size_t offset[] = {2, 2, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        xv_ids ids = {0};
        xv_status s = xv_tokenize(g_tok, bad[i], strlen(bad[i]), &ids);
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu", offset[i]);
        CHECK(s == XV_ERR_FORMAT && strstr(xv_error_message(), want), "invalid UTF-8 case %zu: %s", i,
              xv_error_message());
        CHECK(ids.n == 0, "nothing appended on error");
        CHECK_OK(xv_tokenize(g_tok, "a man", 5, &ids));
        s = xv_tokenize(g_tok, bad[i], strlen(bad[i]), &ids);
        CHECK(s == XV_ERR_FORMAT && ids.n == 2 && ids.v[1] == xv_tokenizer_token_to_id(g_tok, "man"),
              "earlier ids kept on error");
        xv_ids_free(&ids);
        char *out = NULL;
        s = xv_pre_caption(bad[i], strlen(bad[i]), 30, &out, NULL);
        CHECK(s == XV_ERR_FORMAT && out == NULL && strstr(xv_error_message(), want), "pre_caption rejects: %s",
              xv_error_message());
    }
}

/* pre_caption result, or "ERROR:<message>". */
static const char *cap(const char *text, int max_words) {
    static char buf[1024];
    char *out = NULL;
    xv_status s = xv_pre_caption(text, strlen(text), max_words, &out, NULL);
    if (s != XV_OK)
        snprintf(buf, sizeof buf, "ERROR:%s", xv_error_message());
    else
        snprintf(buf, sizeof buf, "%s", out);
    free(out);
    return buf;
}

static const char *question(const char *text, int max_words) {
    static char buf[1024];
    char *out = NULL;
    xv_status s = xv_pre_question(text, strlen(text), max_words, &out, NULL);
    snprintf(buf, sizeof buf, "%s", s == XV_OK ? out : "ERROR");
    free(out);
    return buf;
}

#define CHECK_CAP(text, n, expected)                                                               \
    do {                                                                                           \
        const char *got_ = cap(text, n);                                                           \
        CHECK(strcmp(got_, expected) == 0, "pre_caption(\"%s\", %d): got \"%s\", expected \"%s\"", text, n, \
              got_, expected);                                                                     \
    } while (0)

static void test_pre_caption(void) {
    CHECK_CAP("A man, riding a horse!", 30, "a man riding a horse");
    CHECK_CAP("<person> waves at <PERSON>.", 30, "person waves at person");
    CHECK_CAP("<person >", 30, "<person >"); /* only the exact tag */
    CHECK_CAP("well-known and/or x--y", 30, "well known and or x y");
    CHECK_CAP("a - b", 30, "a b");
    CHECK_CAP("\"quoted\" (paren) *star* #tag: semi; ~t", 30, "quoted paren star tag semi t");
    CHECK_CAP("keep [brackets] {braces} @ & = + _", 30, "keep [brackets] {braces} @ & = + _");
    CHECK_CAP("one two three four", 2, "one two");
    CHECK_CAP("one two three", 3, "one two three");
    /* whitespace: runs of >= 2 \s become one space, a single tab stays */
    CHECK_CAP("a\tb", 30, "a\tb");
    CHECK_CAP("a \t b\r\nc", 30, "a b c");
    CHECK_CAP("a\xc2\xa0\xc2\xa0" "b", 30, "a b");        /* two NBSPs */
    CHECK_CAP("a\xc2\xa0" "b", 30, "a\xc2\xa0" "b");        /* one NBSP stays */
    CHECK_CAP("\ta b\n", 30, "\ta b");                    /* strip(' ') keeps the tab */
    CHECK_CAP("a b \n", 30, "a b");                       /* " \n" collapses, then stripped */
    CHECK_CAP("   a   b   ", 30, "a b");
    /* truncation splits on single spaces only: a tab does not separate words */
    CHECK_CAP("a\tb c d", 2, "a\tb c");
    /* lower() is whole-string: final sigma */
    CHECK_CAP("ΟΔΟΣ ΟΔΟΣ.", 30, "οδος οδος");
    CHECK_CAP("ΑΣ'Α", 30, "ασα"); /* ' is case-ignorable: a letter follows, so σ */
    CHECK_CAP("\xc4\xb0", 30, "i\xcc\x87");
    /* rejections: the official code raises ValueError */
    CHECK_CAP("", 30, "ERROR:" XV_PRE_CAPTION_EMPTY);
    CHECK_CAP("     ", 30, "ERROR:" XV_PRE_CAPTION_EMPTY);
    CHECK_CAP("!!! ... ???", 30, "ERROR:" XV_PRE_CAPTION_EMPTY);
    CHECK_CAP("--//", 30, "ERROR:" XV_PRE_CAPTION_EMPTY);
    CHECK_CAP("\n\n", 30, "ERROR:" XV_PRE_CAPTION_EMPTY);
    CHECK_CAP("a dog", 0, "ERROR:" XV_PRE_CAPTION_EMPTY);
    CHECK_CAP(" a", 30, "a");
    char *out = NULL;
    CHECK(xv_pre_caption("a", 1, 30, &out, NULL) == XV_OK && strcmp(out, "a") == 0, "ok");
    free(out);
    CHECK(xv_pre_caption("a", 1, -1, &out, NULL) == XV_ERR_INVALID_ARG && out == NULL, "max_words < 0");
    /* NUL is an ordinary character to Python: kept */
    size_t n = 0;
    CHECK(xv_pre_caption("a\0b", 3, 30, &out, &n) == XV_OK && n == 3 && out[1] == '\0', "NUL kept");
    free(out);
}

static void test_pre_question(void) {
    CHECK(strcmp(question("What is the man's dog doing?", 30), "what is the mans dog doing") == 0, "basic");
    CHECK(strcmp(question("  two  spaces  ", 30), "  two  spaces") == 0, "no collapsing, rstrip only");
    CHECK(strcmp(question("is it left-handed/right?", 3), "is it left") == 0, "truncate");
    CHECK(strcmp(question("<person> here", 30), "<person> here") == 0, "no <person> rule");
    CHECK(strcmp(question("", 30), "") == 0, "empty is fine");
    CHECK(strcmp(question("???", 30), "") == 0, "punctuation only is fine");
}

static void test_encode(void) {
    const int32_t A = xv_tokenizer_token_to_id(g_tok, "a"), MAN = xv_tokenizer_token_to_id(g_tok, "man"),
                  RIDING = xv_tokenizer_token_to_id(g_tok, "riding"), DOG = xv_tokenizer_token_to_id(g_tok, "dog");
    const char *texts[] = {"a man riding a horse", "dog", ""};
    xv_text_batch b;
    xv_encode_opts o = xv_encode_pretrain(4);
    CHECK_OK(xv_encode_batch(g_tok, texts, 3, &o, &b));
    const int32_t want_ids[] = {2, A, MAN, RIDING, 2, DOG, 0, 0, 2, 0, 0, 0};
    const int32_t want_att[] = {1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0};
    CHECK(b.batch == 3 && b.len == 4, "pretrain shape %dx%d", b.batch, b.len);
    CHECK(!memcmp(b.ids, want_ids, sizeof want_ids) && !memcmp(b.atts, want_att, sizeof want_att),
          "pretrain: [CLS] + tokens[:3], padded to 4");
    xv_text_batch_free(&b);

    o = xv_encode_finetune(0);
    CHECK_OK(xv_encode_batch(g_tok, texts, 3, &o, &b));
    CHECK(b.len == 6 && b.ids[6] == 2 && b.ids[7] == DOG && b.ids[8] == 0 && b.atts[7] == 1 && b.atts[8] == 0,
          "finetune: longest row, no [SEP] (len %d)", b.len);
    xv_text_batch_free(&b);

    const char *answers[] = {"yes", "a dog"};
    o = xv_encode_vqa_answer();
    CHECK_OK(xv_encode_batch(g_tok, answers, 2, &o, &b));
    const int32_t want_vqa[] = {2, 1, 3, 0, 2, A, DOG, 3};
    CHECK(b.len == 4 && !memcmp(b.ids, want_vqa, sizeof want_vqa), "vqa: [CLS] ans [SEP]");
    xv_text_batch_free(&b);

    const char *caps[] = {"dog", "a man riding a horse"};
    o = xv_encode_caption(5);
    CHECK_OK(xv_encode_caption_batch(g_tok, "a ", caps, 2, &o, &b));
    const int32_t want_cap[] = {2, A, DOG, 3, 0, 2, A, A, MAN, 3};
    CHECK(b.len == 5 && !memcmp(b.ids, want_cap, sizeof want_cap), "caption: [CLS] prompt caption [SEP], cut");
    xv_text_batch_free(&b);

    o = (xv_encode_opts){.pad_to = 3};
    CHECK(xv_encode_batch(g_tok, texts, 3, &o, &b) == XV_ERR_INVALID_ARG && b.ids == NULL, "row > pad_to");
    o = (xv_encode_opts){.max_tokens = 1, .add_sep = true};
    CHECK(xv_encode_batch(g_tok, texts, 3, &o, &b) == XV_ERR_INVALID_ARG, "no room for specials");
    const char *bad[] = {"ok", "bad\xff"};
    o = xv_encode_finetune(0);
    CHECK(xv_encode_batch(g_tok, bad, 2, &o, &b) == XV_ERR_FORMAT && strstr(xv_error_message(), "text 1"),
          "names the bad text: %s", xv_error_message());
}

static xv_status parse(const char *data, size_t n, xv_tokenizer **t) {
    return xv_tokenizer_from_memory(data, n, "test-vocab.txt", t);
}

static void test_vocab_reading(void) {
    xv_tokenizer *t = NULL;
    /* CRLF and lone CR end lines (Python's universal newlines); ids are line numbers */
    const char crlf[] = "[PAD]\r\n[UNK]\r\n[CLS]\r[SEP]\n\n[MASK]\r\ndog";
    CHECK_OK(parse(crlf, sizeof crlf - 1, &t));
    if (t) {
        xv_special_ids sp = xv_tokenizer_special_ids(t);
        CHECK(sp.pad == 0 && sp.unk == 1 && sp.cls == 2 && sp.sep == 3 && sp.mask == 5, "CRLF ids");
        CHECK(xv_tokenizer_vocab_size(t) == 7 && xv_tokenizer_token_to_id(t, "dog") == 6, "empty line takes an id");
        CHECK(strcmp(xv_tokenizer_id_to_token(t, 4), "") == 0, "empty token");
        xv_tokenizer_free(t);
    }
    /* a repeated token: the last line wins; the earlier id reads back as [UNK] */
    const char dup[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ndog\ndog\n";
    CHECK_OK(parse(dup, sizeof dup - 1, &t));
    if (t) {
        CHECK(xv_tokenizer_token_to_id(t, "dog") == 6, "last duplicate wins");
        CHECK(strcmp(xv_tokenizer_id_to_token(t, 5), "[UNK]") == 0, "shadowed id");
        xv_tokenizer_free(t);
    }
    const char missing[] = "[PAD]\n[UNK]\n[CLS]\ndog\n";
    CHECK(parse(missing, sizeof missing - 1, &t) == XV_ERR_MISSING && t == NULL, "missing specials");
    CHECK(strstr(xv_error_message(), "test-vocab.txt") && strstr(xv_error_message(), "[SEP] [MASK]"),
          "names file and tokens: %s", xv_error_message());
    const char bom[] = "\xef\xbb\xbf[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    CHECK(parse(bom, sizeof bom - 1, &t) == XV_ERR_MISSING && strstr(xv_error_message(), "byte-order mark"),
          "BOM hint: %s", xv_error_message());
    const char spaced[] = "[PAD] \n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    CHECK(parse(spaced, sizeof spaced - 1, &t) == XV_ERR_MISSING, "'[PAD] ' is not [PAD]");
    const char binary[] = "[PAD]\n\0\x01\x02";
    CHECK(parse(binary, sizeof binary - 1, &t) == XV_ERR_FORMAT && strstr(xv_error_message(), "offset 6"),
          "binary: %s", xv_error_message());
    const char badutf[] = "[PAD]\n[UNK]\nab\xfe\n";
    CHECK(parse(badutf, sizeof badutf - 1, &t) == XV_ERR_FORMAT && strstr(xv_error_message(), "line 3") &&
              strstr(xv_error_message(), "offset 14"),
          "invalid UTF-8: %s", xv_error_message());
    CHECK(parse("", 0, &t) == XV_ERR_FORMAT && strstr(xv_error_message(), "empty"), "empty vocab");
    CHECK(xv_tokenizer_load("/nonexistent/vocab.txt", &t) == XV_ERR_IO && strstr(xv_error_message(), "/nonexistent"),
          "missing file: %s", xv_error_message());
    CHECK(xv_tokenizer_load("/tmp", &t) == XV_ERR_IO && strstr(xv_error_message(), "directory"), "directory: %s",
          xv_error_message());
    /* a huge file is refused after reading at most the limit + 1 byte */
    char path[256];
    xv_test_tmp_path("xv_vocab_huge_XXXXXX", path, sizeof path);
    int fd = mkstemp(path);
    if (fd >= 0) {
        CHECK(ftruncate(fd, (off_t)XV_VOCAB_MAX_BYTES + 10) == 0, "sparse file");
        close(fd);
        CHECK(xv_tokenizer_load(path, &t) == XV_ERR_FORMAT && strstr(xv_error_message(), "too large"), "huge: %s",
              xv_error_message());
        unlink(path);
    }
}

/* The tokenizer is read-only once loaded: threads must agree with one thread. */
static void test_threads(void) {
    enum { N = 64 };
    static char texts[N][64];
    size_t ref_n[N];
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "Caf\xc3\xa9 %d, a man riding-a horse %s", i, i % 2 ? "猫" : "!");
        xv_ids ids = {0};
        xv_tokenize(g_tok, texts[i], strlen(texts[i]), &ids);
        ref_n[i] = ids.n;
        xv_ids_free(&ids);
    }
    int mismatches = 0;
#pragma omp parallel for schedule(static) reduction(+ : mismatches)
    for (int i = 0; i < N; i++) {
        xv_ids ids = {0};
        if (xv_tokenize(g_tok, texts[i], strlen(texts[i]), &ids) != XV_OK || ids.n != ref_n[i]) mismatches++;
        xv_ids_free(&ids);
    }
    CHECK(mismatches == 0, "%d texts differ under threads", mismatches);
}

int main(void) {
    if (xv_tokenizer_from_memory(k_vocab, sizeof k_vocab - 1, "builtin", &g_tok) != XV_OK) {
        fprintf(stderr, "built-in vocab: %s\n", xv_error_message());
        return 1;
    }
    test_basic_rules();
    test_long_words();
    test_canonical_order();
    test_special_tokens();
    test_invalid_utf8();
    test_pretokenized();
    test_pre_caption();
    test_pre_question();
    test_encode();
    test_vocab_reading();
    test_threads();
    xv_tokenizer_free(g_tok);
    return xv_test_finish("test_tokenizer");
}
