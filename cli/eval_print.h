/* What `xvlm evaluate` prints and writes: the result tables, the JSON
 * summaries and the example pictures. */
#ifndef XV_CLI_EVAL_PRINT_H
#define XV_CLI_EVAL_PRINT_H

#include <stdio.h>

#include "tasks/eval_grounding.h"
#include "tasks/eval_retrieval.h"

void xv_print_retrieval_table(FILE *f, const xv_eval_retrieval_result *r);
void xv_print_grounding_table(FILE *f, const xv_grounding_set *s, const xv_eval_grounding_result *r);

/* JSON summaries (one object; per-item details for grounding). `label`
 * names what was evaluated (the model path). */
xv_status xv_write_retrieval_json(const char *path, const char *label, const xv_eval_retrieval_result *r);
xv_status xv_write_grounding_json(const char *path, const char *label, const xv_grounding_set *s,
                                  const xv_eval_grounding_result *r);

/* n_rows text queries spread evenly over the test texts, each with its top
 * 5 images by the re-ranked score. */
xv_status xv_draw_retrieval_examples(const char *png, const xv_retrieval_set *s, const xv_eval_retrieval_result *r,
                                     int n_rows);
/* The first n expressions of the test set with their predicted boxes. */
xv_status xv_draw_grounding_examples(const char *png, const xv_grounding_set *s, const xv_eval_grounding_result *r,
                                     int n);

/* `xvlm evaluate table DIR...`: the R@1, r_mean and grounding accuracy of the
 * runs whose results (retrieval.json, grounding.json) are in dirs, side by
 * side, then the chance row. Returns the exit code. */
int xv_eval_table(int n, char **dirs);

/* Progress of the evaluation stages on stderr (carriage returns on a tty,
 * one line per finished stage otherwise). user = the command name. */
void xv_eval_progress_stderr(void *user, const char *stage, int64_t done, int64_t total);

#endif
