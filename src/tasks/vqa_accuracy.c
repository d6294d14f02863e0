#include "tasks/vqa_accuracy.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* vqaEval.py's contraction table, as it stands (including its odd entries). */
static const char *const k_contractions[][2] = {
    {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"}, {"couldnt", "couldn't"},
    {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"}, {"didnt", "didn't"}, {"doesnt", "doesn't"},
    {"dont", "don't"}, {"hadnt", "hadn't"}, {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"},
    {"hasnt", "hasn't"}, {"havent", "haven't"}, {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"},
    {"hes", "he's"}, {"howd", "how'd"}, {"howll", "how'll"}, {"hows", "how's"}, {"Id've", "I'd've"},
    {"I'dve", "I'd've"}, {"Im", "I'm"}, {"Ive", "I've"}, {"isnt", "isn't"}, {"itd", "it'd"}, {"itd've", "it'd've"},
    {"it'dve", "it'd've"}, {"itll", "it'll"}, {"let's", "let's"}, {"maam", "ma'am"}, {"mightnt", "mightn't"},
    {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"}, {"mightve", "might've"}, {"mustnt", "mustn't"},
    {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"}, {"oclock", "o'clock"},
    {"oughtnt", "oughtn't"}, {"ow's'at", "'ow's'at"}, {"'ows'at", "'ow's'at"}, {"'ow'sat", "'ow's'at"},
    {"shant", "shan't"}, {"shed've", "she'd've"}, {"she'dve", "she'd've"}, {"she's", "she's"},
    {"shouldve", "should've"}, {"shouldnt", "shouldn't"}, {"shouldnt've", "shouldn't've"},
    {"shouldn'tve", "shouldn't've"}, {"somebody'd", "somebodyd"}, {"somebodyd've", "somebody'd've"},
    {"somebody'dve", "somebody'd've"}, {"somebodyll", "somebody'll"}, {"somebodys", "somebody's"},
    {"someoned", "someone'd"}, {"someoned've", "someone'd've"}, {"someone'dve", "someone'd've"},
    {"someonell", "someone'll"}, {"someones", "someone's"}, {"somethingd", "something'd"},
    {"somethingd've", "something'd've"}, {"something'dve", "something'd've"}, {"somethingll", "something'll"},
    {"thats", "that's"}, {"thered", "there'd"}, {"thered've", "there'd've"}, {"there'dve", "there'd've"},
    {"therere", "there're"}, {"theres", "there's"}, {"theyd", "they'd"}, {"theyd've", "they'd've"},
    {"they'dve", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"}, {"theyve", "they've"},
    {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"}, {"we'dve", "we'd've"}, {"weve", "we've"},
    {"werent", "weren't"}, {"whatll", "what'll"}, {"whatre", "what're"}, {"whats", "what's"},
    {"whatve", "what've"}, {"whens", "when's"}, {"whered", "where'd"}, {"wheres", "where's"},
    {"whereve", "where've"}, {"whod", "who'd"}, {"whod've", "who'd've"}, {"who'dve", "who'd've"},
    {"wholl", "who'll"}, {"whos", "who's"}, {"whove", "who've"}, {"whyll", "why'll"}, {"whyre", "why're"},
    {"whys", "why's"}, {"wont", "won't"}, {"wouldve", "would've"}, {"wouldnt", "wouldn't"},
    {"wouldnt've", "wouldn't've"}, {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"}, {"yall'll", "y'all'll"},
    {"y'allll", "y'all'll"}, {"yall'd've", "y'all'd've"}, {"y'alld've", "y'all'd've"}, {"y'all'dve", "y'all'd've"},
    {"youd", "you'd"}, {"youd've", "you'd've"}, {"you'dve", "you'd've"}, {"youll", "you'll"}, {"youre", "you're"},
    {"youve", "you've"},
};

static const char *const k_numbers[][2] = {{"none", "0"}, {"zero", "0"}, {"one", "1"},   {"two", "2"},
                                           {"three", "3"}, {"four", "4"}, {"five", "5"}, {"six", "6"},
                                           {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"}};

static const char k_punct[] = ";/[]\"{}()=+\\_-><@`,?!";

/* Does the text hold a digit, a comma and a digit in a row (commaStrip)? */
static bool has_digit_comma_digit(const char *s) {
    for (size_t i = 0; s[i] && s[i + 1] && s[i + 2]; i++)
        if (isdigit((unsigned char)s[i]) && s[i + 1] == ',' && isdigit((unsigned char)s[i + 2])) return true;
    return false;
}

/* Is p next to a space in s ("p " or " p")? */
static bool spaced(const char *s, char p) {
    for (size_t i = 0; s[i]; i++)
        if (s[i] == p && ((s[i + 1] == ' ') || (i > 0 && s[i - 1] == ' '))) return true;
    return false;
}

char *xv_vqa_punctuation(const char *text) {
    char *out = strdup(text);
    if (!out) return NULL;
    const bool strip_all = has_digit_comma_digit(text);
    /* Each mark is decided on the original text and applied to the running
     * result, mark by mark, as the official loop does. */
    for (const char *p = k_punct; *p; p++) {
        const bool drop = strip_all || spaced(text, *p);
        size_t w = 0;
        for (size_t r = 0; out[r]; r++) {
            if (out[r] != *p) out[w++] = out[r];
            else if (!drop) out[w++] = ' ';
        }
        out[w] = '\0';
    }
    /* periodStrip "(?!<=\d)(\.)(?!\d)": a '.' not followed by a digit, 32 at most. */
    size_t w = 0;
    int removed = 0;
    for (size_t r = 0; out[r]; r++) {
        if (out[r] == '.' && !isdigit((unsigned char)out[r + 1]) && removed < 32) {
            removed++;
            continue;
        }
        out[w++] = out[r];
    }
    out[w] = '\0';
    return out;
}

static const char *lookup(const char *const (*table)[2], size_t n, const char *word) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(table[i][0], word)) return table[i][1];
    return word;
}

char *xv_vqa_normalize(const char *answer) {
    char *p = xv_vqa_punctuation(answer);
    if (!p) return NULL;
    for (char *c = p; *c; c++) *c = (char)tolower((unsigned char)*c);
    /* The result is never longer than the punctuated text plus what the
     * contractions add (one apostrophe each, at most one per word). */
    const size_t cap = 2 * strlen(p) + 2;
    char *out = malloc(cap);
    if (!out) {
        free(p);
        return NULL;
    }
    size_t w = 0;
    for (char *save = NULL, *word = strtok_r(p, " \t\n\r\v\f", &save); word;
         word = strtok_r(NULL, " \t\n\r\v\f", &save)) {
        word = (char *)lookup(k_numbers, sizeof k_numbers / sizeof *k_numbers, word);
        if (!strcmp(word, "a") || !strcmp(word, "an") || !strcmp(word, "the")) continue;
        const char *final = lookup(k_contractions, sizeof k_contractions / sizeof *k_contractions, word);
        const size_t n = strlen(final);
        if (w + n + 2 > cap) break; /* cannot happen (see cap) */
        if (w) out[w++] = ' ';
        memcpy(out + w, final, n);
        w += n;
    }
    out[w] = '\0';
    free(p);
    return out;
}

double xv_vqa_accuracy(const char *answer, const char *const *gt, int n_gt) {
    if (n_gt < 1) return NAN;
    char *a = strdup(answer);
    if (!a) return NAN;
    for (char *c = a; *c; c++)
        if (*c == '\n' || *c == '\t') *c = ' ';
    char *start = a, *end = a + strlen(a);
    while (*start && isspace((unsigned char)*start)) start++;
    while (end > start && isspace((unsigned char)end[-1])) *--end = '\0';
    char *res = xv_vqa_normalize(start);
    free(a);
    bool differ = false;
    for (int i = 1; i < n_gt; i++) differ |= strcmp(gt[i], gt[0]) != 0;
    char **g = calloc((size_t)n_gt, sizeof *g);
    bool ok = res && g;
    for (int i = 0; ok && i < n_gt; i++) ok = (g[i] = differ ? xv_vqa_punctuation(gt[i]) : strdup(gt[i])) != NULL;
    double sum = 0;
    for (int i = 0; ok && i < n_gt; i++) {
        int matching = 0;
        for (int j = 0; j < n_gt; j++) matching += j != i && !strcmp(g[j], res);
        sum += matching / 3.0 < 1 ? matching / 3.0 : 1.0;
    }
    for (int i = 0; g && i < n_gt; i++) free(g[i]);
    free(g);
    free(res);
    return ok ? sum / n_gt : NAN;
}
