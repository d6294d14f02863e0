/* The answer-prior baseline of VQA: for each question type, the answer the
 * training annotators gave most often, answered to every test question of
 * that type without looking at the image (the "per Q-type prior" of the
 * VQA papers). A question's type is its "question_type" when the data
 * gives one (VQA v2 annotations), else the first two words of
 * pre_question(question) ("what colour", "how many", "is there"). */
#ifndef XV_TASKS_VQA_PRIOR_H
#define XV_TASKS_VQA_PRIOR_H

#include "core/error.h"

typedef struct xv_vqa_prior xv_vqa_prior;

xv_status xv_vqa_prior_new(xv_vqa_prior **out);
void xv_vqa_prior_free(xv_vqa_prior *p);

/* Count one training question's annotator answers under its type
 * (question_type may be NULL). */
xv_status xv_vqa_prior_add(xv_vqa_prior *p, const char *question_type, const char *question,
                           const char *const *answers, int n);

/* The prior's answer for a question: its type's most frequent answer (the
 * first counted among equals), else the most frequent overall; NULL when
 * nothing was counted. Borrowed from p. */
const char *xv_vqa_prior_answer(const xv_vqa_prior *p, const char *question_type, const char *question);

#endif
