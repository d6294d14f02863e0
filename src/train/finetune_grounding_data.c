/* The grounding tasks' training data (finetune_grounding_data.h). */
#include "train/finetune_grounding_data.h"

#include <string.h>

#include "core/error.h"

xv_status xv_ft_grounding_data_read(xv_ft *f, xv_ft_grounding_data *d) {
    const xv_refer *refer = f->cfg.refcoco_data ? &d->refer : NULL;
    if (refer) XV_TRY(xv_refer_load(f->cfg.refcoco_data, "refcoco+", "unc", &d->refer));
    const xv_fs_root images = xv_finetune_images(&f->cfg);
    XV_TRY(xv_grounding_set_read_files((const char *const *)f->cfg.train_file.paths, f->cfg.train_file.n,
                                       &images, refer, &d->set));
    f->n = d->set.n;
    if (f->n < f->cfg.batch_size) return XV_OK;
    return xv_ft_batch_init(&d->b, f, d->set.image_paths, d->set.n_images, d->set.image, f->n);
}

void xv_ft_grounding_data_free(xv_ft_grounding_data *d) {
    xv_grounding_set_free(&d->set);
    xv_refer_free(&d->refer);
    xv_ft_batch_free(&d->b);
}

xv_status xv_ft_grounding_refer(const xv_ft *f, const xv_ft_grounding_data *d, xv_refer *own,
                                const xv_refer **refer) {
    memset(own, 0, sizeof *own);
    *refer = !f->cfg.refcoco_data ? NULL : d ? &d->refer : own;
    return *refer == own ? xv_refer_load(f->cfg.refcoco_data, "refcoco+", "unc", own) : XV_OK;
}
