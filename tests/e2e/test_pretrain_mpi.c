/* `mpirun -np 2 xvlm pretrain` (data-parallel training, docs/distributed.md)
 * on a tiny X-VLM and a tiny generated world:
 * - the run learns: the MLM and ITC losses of its last steps are below those
 *   of its first (rank 0's log);
 * - N steps straight == N/2 steps, then --resume to N: the final checkpoints
 *   (every rank's loader position and random streams are in them) and model
 *   weights are byte-identical;
 * - a rank killed mid-run, or stopped (a hang: the watchdog of src/dist/),
 *   ends the whole job within seconds with a non-zero exit status, every
 *   checkpoint left whole, and the run resumes from them.
 * Skipped when the build has no MPI or mpirun is absent. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "train/checkpoint.h"

enum { N = 12, HALF = 6 };
static char root[64];
static const char *bin, *mpirun;

static void path_of(char *buf, size_t n, const char *a, const char *b) { snprintf(buf, n, "%s/%s", a, b); }

/* The world (xvlm synth) and the run's YAML: batch 4 per rank. */
static bool make_data(char *yaml, size_t n) {
    char cmd[2048], data[256];
    path_of(data, sizeof data, root, "world");
    snprintf(cmd, sizeof cmd, "'%s' synth --out '%s' --seed 3 --images 48 --test-images 1 --size 48 --objects 2:2 "
                              "--threads 1 --no-left-right > /dev/null", bin, data);
    if (xv_test_run(cmd) != 0) return false;
    char p[512];
    path_of(p, sizeof p, data, "vocab.txt");
    const int vocab = xv_test_count_lines(p);
    path_of(yaml, n, root, "tiny.yaml");
    FILE *f = fopen(yaml, "w");
    if (!f) return false;
    fprintf(f,
            "train_file: ['%s/pretrain_captions.jsonl']\n"
            "train_file_regions: ['%s/pretrain_regions.jsonl']\n"
            "train_dataset_size: 48\n"
            "image_root: '%s'\n"
            "vocab: '%s/vocab.txt'\n"
            "images: {image_key: image, is_image_rpath: True, caption_key: caption, batch_size: 4, num_workers: 1}\n"
            "regions: {image_key: image, is_image_rpath: True, caption_key: caption, iter_perc: 0.5,\n"
            "          batch_size: 4, max_images: 2, max_regions: 3, min_perc_in_image: 0.5, num_workers: 1}\n",
            data, data, data, data);
    xv_test_tiny_pretrain_model_yaml(f, vocab);
    fputs("ckpt_frequent_step: 3\nckpt_frequent: 1\n"
          "optimizer: {opt: adamW, lr: 2e-3, weight_decay: 0.01, lr_mult: 2}\n"
          "schedular: {sched: linear, lr: 2e-3, epochs: 20, num_warmup_steps: 2}\n", f);
    fclose(f);
    return true;
}

static char *pretrain_cmd(char *cmd, size_t n, const char *yaml, const char *out, int steps, const char *extra) {
    snprintf(cmd, n, "%s'%s' pretrain --config '%s' --output-dir '%s' --max-steps %d --threads 1 --seed 7 --quiet %s",
             mpirun, bin, yaml, out, steps, extra);
    return cmd;
}

static bool same_files(const char *a, const char *b, const char *name) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cmp '%s/%s' '%s/%s'", a, name, b, name);
    return xv_test_run(cmd) == 0;
}

/* A rank sent `sig` after the first checkpoint: SIGKILL (it dies; mpirun
 * ends the others) or SIGSTOP (it hangs; the others' watchdog, set to 3 s
 * here, ends the job). Either way the job must end within seconds, with a
 * non-zero status, and leave only whole checkpoints, from which it resumes. */
static void stop_a_rank(const char *yaml, int sig, const char *name) {
    char out[256], err[300], cmd[4096], log[512], full[4500];
    path_of(out, sizeof out, root, name);
    snprintf(err, sizeof err, "%s.stderr", out);
    path_of(log, sizeof log, out, "log.jsonl");
    pretrain_cmd(cmd, sizeof cmd, yaml, out, 100000, "");
    snprintf(full, sizeof full, "XV_DIST_TIMEOUT=3 exec %s 2> '%s'", cmd, err);
    pid_t job = fork();
    if (job == 0) {
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    /* wait for the first checkpoint (step 3) and a few more updates (up to
     * 60 s on a busy machine) */
    char first[512];
    path_of(first, sizeof first, out, "checkpoints/checkpoint_000000003.safetensors");
    for (int i = 0; i < 600 && (access(first, R_OK) != 0 || xv_test_count_lines(log) < 8); i++) usleep(100000);
    CHECK(access(first, R_OK) == 0, "the run wrote no checkpoint");
    char pgrep[128], line[64] = "";
    snprintf(pgrep, sizeof pgrep, "pgrep -P %d | tail -1", (int)job); /* a rank, started by mpirun */
    FILE *p = popen(pgrep, "r");
    if (p && fgets(line, sizeof line, p)) {
        pid_t rank = (pid_t)atoi(line);
        CHECK(rank > 0 && kill(rank, sig) == 0, "cannot signal rank process %s", line);
    } else {
        CHECK(0, "no rank process under mpirun %d", (int)job);
    }
    if (p) pclose(p);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 300 && (done = waitpid(job, &status, WNOHANG)) == 0; i++) usleep(100000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (done == 0) {
        kill(job, SIGKILL);
        waitpid(job, &status, 0);
    }
    CHECK(done == job, "the job still ran %.0f s after a rank got signal %d", secs, sig);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0, "the job's exit status after signal %d: %d", sig, status);
    printf("job ended %.1f s after a rank got signal %d (exit status %d)\n", secs, sig, WEXITSTATUS(status));
    CHECK(secs < 20, "the job took %.1f s to end", secs);
    snprintf(cmd, sizeof cmd, "cat '%s'", err);
    xv_test_run(cmd);
    /* every checkpoint left is whole, and the run resumes from the newest */
    char dir[512];
    path_of(dir, sizeof dir, out, "checkpoints");
    DIR *d = opendir(dir);
    int whole = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, "checkpoint_", 11) || !strstr(e->d_name, ".safetensors")) continue;
        char f[1024];
        path_of(f, sizeof f, dir, e->d_name);
        CHECK(xv_ckpt_verify(f) == XV_OK, "%s: %s", f, xv_error_message());
        whole++;
    }
    if (d) closedir(d);
    CHECK(whole > 0, "no checkpoint was left in %s", dir);
    pretrain_cmd(cmd, sizeof cmd, yaml, out, N, "--resume");
    CHECK(xv_test_run(cmd) == 0, "resuming the killed run failed");
}

int main(void) {
    bin = getenv("XV_BIN");
    mpirun = xv_test_mpirun(2);
    if (!bin) return xv_test_skip("XV_BIN not set");
    if (!mpirun) return xv_test_skip("no MPI in this build, or mpirun absent");
    if (!xv_test_scratch_dir("xv_test_pretrain_mpi", root, sizeof root)) return 1;
    char yaml[512], straight[256], halves[256], cmd[4096], log[512];
    CHECK(make_data(yaml, sizeof yaml), "making the world failed");
    path_of(straight, sizeof straight, root, "straight");
    path_of(halves, sizeof halves, root, "halves");

    CHECK(xv_test_run(pretrain_cmd(cmd, sizeof cmd, yaml, straight, N, "")) == 0, "the 2-rank run failed");
    path_of(log, sizeof log, straight, "log.jsonl");
    double first[XV_N_LOSSES], last[XV_N_LOSSES];
    xv_test_loss_window_means(log, 0, 3, first);
    xv_test_loss_window_means(log, N - 3, N, last);
    printf("MLM %.4f -> %.4f, ITC %.4f -> %.4f\n", first[XV_LOSS_MLM], last[XV_LOSS_MLM], first[XV_LOSS_ITC],
           last[XV_LOSS_ITC]);
    CHECK(last[XV_LOSS_MLM] < first[XV_LOSS_MLM], "MLM did not fall");
    CHECK(last[XV_LOSS_ITC] < first[XV_LOSS_ITC], "ITC did not fall");

    CHECK(xv_test_run(pretrain_cmd(cmd, sizeof cmd, yaml, halves, HALF, "")) == 0, "the first half failed");
    CHECK(xv_test_run(pretrain_cmd(cmd, sizeof cmd, yaml, halves, N, "--resume")) == 0, "the resumed half failed");
    char ckpt[64];
    snprintf(ckpt, sizeof ckpt, "checkpoints/checkpoint_%09d.safetensors", N);
    CHECK(same_files(straight, halves, ckpt), "straight and resumed final checkpoints differ");
    CHECK(same_files(straight, halves, "model/weights.safetensors"), "straight and resumed final weights differ");

    stop_a_rank(yaml, SIGKILL, "killed");
    stop_a_rank(yaml, SIGSTOP, "stopped");
    if (xv_test_failures == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        xv_test_run(cmd);
    }
    return xv_test_finish("test_pretrain_mpi");
}
