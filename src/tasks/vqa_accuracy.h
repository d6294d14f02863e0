/* The standard VQA accuracy as the official vqaTools/vqaEval.py computes it
 * (vqa-captioning sheet §2.6), for one question at a time:
 *   - the predicted answer: '\n' and '\t' -> ' ', surrounding whitespace
 *     stripped, then punctuation and digits/articles/contractions
 *     normalised (xv_vqa_normalize);
 *   - the annotators' answers: punctuation only (xv_vqa_punctuation), and only
 *     when they are not all the same string;
 *   - accuracy = mean over the annotators i of min(1, #{j != i : gt_j ==
 *     answer} / 3): each leave-one-out subset of 9 of the 10 answers.
 * Text is compared byte for byte; lower-casing is ASCII (the VQA answers are). */
#ifndef XV_TASKS_VQA_ACCURACY_H
#define XV_TASKS_VQA_ACCURACY_H

#include "core/error.h"

/* processPunctuation: each of ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? ! is
 * deleted when it stands next to a space in the text (or the text holds a
 * digit,digit group), else replaced by a space; then every '.' not followed by
 * a digit is deleted (at most 32, the official call's count). malloc'd. */
char *xv_vqa_punctuation(const char *text);
/* processDigitArticle after processPunctuation: lower case, split on
 * whitespace, number words none..ten -> digits, a/an/the dropped,
 * contractions restored ("dont" -> "don't"), joined by single spaces. malloc'd. */
char *xv_vqa_normalize(const char *answer);

/* Accuracy in [0, 1] of `answer` against the n_gt annotators' answers
 * (n_gt >= 1); NAN when out of memory. */
double xv_vqa_accuracy(const char *answer, const char *const *gt, int n_gt);

#endif
