/* `xvlm finetune retrieval|grounding`: the official Retrieval.py and
 * Grounding_bbox.py fine-tuning (train/finetune.h does the work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "dist/dist.h"
#include "options.h"
#include "train/finetune_task.h"
#include "train/stop_signal.h"
#include "xvlm.h"

int xv_cmd_finetune(int argc, char **argv) {
    xv_finetune_opts o = xv_finetune_opts_default();
    int threads = 0;
    bool quiet = false, no_eval_before = false;
    xv_opt_list task = {0};
    const xv_opt opts[] = {
        {.name = "--config", .kind = XV_OPT_STRING, .dest = &o.config_path, .value = "FILE", .required = true,
         .help = "Retrieval.yaml / Grounding_bbox.yaml keys: train_file, test_file\n"
                 "(a path or a list, read in full), val_file (retrieval),\n"
                 "refcoco_data (grounding: REFER refcoco+/refs(unc).p and\n"
                 "instances.json give boxes and splits), det_file, coco_file,\n"
                 "image_root, image_res, batch_size_train | batch_size, k_test,\n"
                 "max_words, max_tokens, optimizer{lr, weight_decay},\n"
                 "schedular{epochs, num_warmup_steps}, careful_hflip; relative\n"
                 "paths are from the working directory, as the official scripts. An\n"
                 "image_res other than the model's scales the Swin window with it\n"
                 "(224/7 -> 384/12) and interpolates the relative-position tables"},
        {.name = "--init", .kind = XV_OPT_STRING, .dest = &o.init, .value = "M", .required = true,
         .help = "the model to start from: a folder (config.json,\n"
                 "weights.safetensors, vocab.txt), a single-file .safetensors model,\n"
                 "or an official PyTorch checkpoint (.th/.pth, converted once)"},
        XV_OPT_IMAGE_RES(&o.infer.image_res),
        XV_OPT_TEXT_HEADS(&o.infer.text_heads),
        {.name = "--output-dir", .short_name = 'o', .kind = XV_OPT_STRING, .dest = &o.output_dir, .value = "DIR",
         .help = "where log.jsonl, loss_curves.png, checkpoints/, model_best/ (the\n"
                 "best epoch's model), model/ (the final one, same layout as the\n"
                 "input), result.json (with the official dicts: itm_eval of val and\n"
                 "test, or val_d / testA_d / testB_d) and, for grounding, result/*.json\n"
                 "(ref_id and box of every expression) go"},
        {.name = "--resume", .kind = XV_OPT_OPTIONAL, .dest = &o.resume, .value = "CKPT",
         .help = "continue exactly from CKPT, or from the newest checkpoint in\n"
                 "DIR/checkpoints (a fresh start if there is none)"},
        {.name = "--keep-last", .kind = XV_OPT_INT, .dest = &o.keep_last, .value = "N", .lo = 1, .hi = 1000000,
         .help = "checkpoints kept (one is written after every epoch)", .unset = "2"},
        XV_OPT_SEED(&o.seed, "data order, augmentation, dropout, negatives"),
        {.name = "--max-steps", .kind = XV_OPT_I64, .dest = &o.max_steps, .value = "N", .lo = 1, .hi = 1099511627776.0,
         .help = "stop after N steps in all, with a checkpoint (the schedule keeps\nthe config's length)",
         .unset = "the config's epochs"},
        XV_OPT_THREADS(&threads),
        {.name = "--no-eval-before", .kind = XV_OPT_FLAG, .dest = &no_eval_before,
         .help = "skip the evaluation of the initial model"},
        {.name = "--quiet", .short_name = 'q', .kind = XV_OPT_FLAG, .dest = &quiet, .help = "no progress lines"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "finetune",
        .usage = "xvlm finetune retrieval|grounding|vqa|captioning|captioning_scst|nlvr|\n"
                 "                     nlvr_pretrain|grounding_bbox_pretrain|weak_grounding\n"
                 "                     --config FILE.yaml --init M [--image-res R] [--text-heads N]\n"
                 "                     [--output-dir DIR] [--resume [CKPT]] [--keep-last N] [--seed S]\n"
                 "                     [--max-steps N] [--threads N] [--no-eval-before] [--quiet]",
        .about = "retrieval: Retrieval.py: ITC (same image_id = positive) + ITM (negatives from other\n"
                 "  images), RandomResizedCrop(0.5..1) + flip + RandAug, pre_caption 30 words;\n"
                 "  Retrieval.py evaluation (ITC top k_test re-ranked by ITM) of val_file and test_file\n"
                 "  after every epoch; model_best/ is the epoch of the best test r_mean, as Retrieval.py\n"
                 "  keeps it.\n"
                 "grounding: Grounding_bbox.py: box crop + careful flip + colour RandAug, loss L1 + GIoU;\n"
                 "  accuracy at IoU >= 0.5 on test_file after every epoch, per REFER split (val_d,\n"
                 "  testA_d, testB_d; test_d without refcoco_data); model_best/ by val_d, else test_d.\n"
                 "vqa: VQA.py: questions with weighted answers, the answer decoder's loss; VQA accuracy\n"
                 "  of the ranked answer list (k_test) after every epoch, with the answer prior.\n"
                 "captioning: Captioning.py: prompt + caption as a causal LM with label smoothing; beam\n"
                 "  search and BLEU / CIDEr-D on test_file. captioning_scst: Captioning_scst.py, sampled\n"
                 "  captions rewarded by CIDEr-D against the greedy baseline (num_training_steps, eval_steps).\n"
                 "nlvr: NLVR.py: JSON {images: [left, right], sentence, label \"True\"/\"False\"}, each image\n"
                 "  RandomResizedCrop(0.5..1) + flip + RandAug, cross-entropy over cls_head (an NLVR2\n"
                 "  model, or a pretraining one converted as NLVR.py loads it); keys batch_size,\n"
                 "  val_file (dev), test_file; accuracy on both after every epoch, model_best/ by dev\n"
                 "  accuracy (val_acc, else test_acc).\n"
                 "nlvr_pretrain: NLVR_pretrain.py text assignment on a JSON-lines image-text corpus\n"
                 "  (images{batch_size, ...}); model/ is the domain-pretrained start of `finetune nlvr`.\n"
                 "grounding_bbox_pretrain: Grounding_bbox_pretrain.py, box L1 + GIoU on region corpora\n"
                 "  (train_file_regions, regions{batch_size, max_images, ...}).\n"
                 "  Both: no evaluation, clipping to accelerator.CLIP_GRAD_NORM (1.0).\n"
                 "weak_grounding: Grounding.py: ITC + ITM with the image as the label; Grad-CAM over\n"
                 "  det_file's proposals (block_num) after every epoch, model_best/ by val_d, else test_d.\n"
                 "All: AdamW (optimizer.lr, weight_decay), linear schedule with warmup, no clipping\n"
                 "  unless said.\n"
                 "SIGINT / SIGTERM stop after the current step with a checkpoint (exit status 130 /\n"
                 "143; --resume continues exactly); a killed run loses at most the epoch under way.\n"
                 "Under mpirun (docs/distributed.md): batch size per rank, the data sharded as\n"
                 "DistributedSampler does, gradients averaged, retrieval's ITC over the global batch;\n"
                 "rank 0 alone writes; --resume needs the same number of processes.\n",
        .opts = opts,
        .positional = &task,
        .max_positional = 1,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    const char *name = task.n ? task.items[0] : "";
    xv_opt_list_free(&task);
    const xv_finetune_task *t = xv_finetune_task_find(name);
    if (!*name) return xv_cli_usage_error("finetune", "first name the task: %s", xv_finetune_task_names());
    if (!t) return xv_cli_usage_error("finetune", "unknown task '%s' (%s)", name, xv_finetune_task_names());
    o.progress = !quiet;
    o.eval_before = !no_eval_before;
    o.notes = quiet ? NULL : stderr;
    xvlm_set_threads(threads);
    xv_finetune_result r;
    if (xv_finetune_run(name, &o, &r) != XV_OK) {
        fprintf(stderr, "xvlm finetune: %s\n", xvlm_last_error());
        return 1;
    }
    xv_cli_ranks_stop_together = r.interrupted != 0; /* every rank stopped after the same step */
    if (xv_dist_rank() != 0) return r.interrupted ? 1 : 0; /* rank 0 reports */
    if (r.interrupted) {
        fprintf(stderr,
                "xvlm finetune: interrupted by %s at step %lld of %lld; the checkpoint in %s/checkpoints holds it: "
                "run the same command with --resume to continue exactly\n",
                xv_stop_signal_name(r.interrupted), (long long)r.steps, (long long)r.total_steps, o.output_dir);
        return xv_stop_exit_status(r.interrupted);
    }
    if (!t->evaluate) {
        printf("%s: steps %lld..%lld of %lld in %.1f s, loss %.4f -> %.4f; model in %s/model\n", name,
               (long long)r.start_step, (long long)r.steps, (long long)r.total_steps, r.seconds_train, r.first_loss,
               r.last_loss, o.output_dir);
        return 0;
    }
    const char *metric = t->metric_label;
    printf("%s: steps %lld..%lld of %lld in %.1f s, loss %.4f -> %.4f; %s %.2f -> %.2f, best epoch %lld; results "
           "in %s/result.json\n",
           name, (long long)r.start_step, (long long)r.steps, (long long)r.total_steps, r.seconds_train, r.first_loss,
           r.last_loss, metric, r.metric_before, r.metric_after, (long long)r.best_epoch, o.output_dir);
    return 0;
}
