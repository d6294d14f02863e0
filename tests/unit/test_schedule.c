/* The official linear warmup/decay LambdaLR (scheduler.py). */
#include "testutil.h"
#include "train/schedule.h"

static void test_total_steps(void) {
    int64_t n = 0;
    /* 4M: 5,114,489 samples, 128 x 8 per step, 41 epochs; 16M: 128 x 24, 38 epochs. */
    CHECK_OK(xv_schedule_total_steps(41, 5114489, 128, 8, &n));
    CHECK(n == 4995 * 41, "4M: %lld", (long long)n);
    CHECK_OK(xv_schedule_total_steps(38, 16219845, 128, 24, &n));
    CHECK(n == 5280 * 38, "16M: %lld", (long long)n);
    CHECK(xv_schedule_total_steps(1, 10, 0, 1, &n) == XV_ERR_INVALID_ARG, "batch 0 refused");
}

static void test_pretrain_values(void) {
    xv_lr_schedule s;
    CHECK_OK(xv_schedule_init(&s, 204795, 2500, false));
    CHECK(xv_schedule_factor(&s) == 0.0, "t=0: the first update has lr 0");
    CHECK(xv_schedule_lambda(&s, 1) == 1.0 / 2500, "t=1");
    CHECK(xv_schedule_lambda(&s, 1250) == 0.5, "warmup middle");
    CHECK(xv_schedule_lambda(&s, 2499) == 2499.0 / 2500, "last warmup step");
    CHECK(xv_schedule_lambda(&s, 2500) == 1.0, "warmup end: peak");
    CHECK(xv_schedule_lambda(&s, 103647) == 101148.0 / 202295, "middle of the decay");
    CHECK(xv_schedule_lambda(&s, 204794) == 1.0 / 202295, "last scheduled update");
    CHECK(xv_schedule_lambda(&s, 204795) == 0.0, "end");
    CHECK(xv_schedule_lambda(&s, 300000) == 0.0, "past the end: clamped at 0");
}

static void test_stepping(void) {
    xv_lr_schedule s;
    CHECK_OK(xv_schedule_init(&s, 10, 2, false));
    const double expect[12] = {0, 0.5, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0, 0};
    for (int t = 0; t < 12; t++) {
        CHECK(s.pos == t && xv_schedule_factor(&s) == expect[t], "t=%d: %g vs %g", t, xv_schedule_factor(&s),
              expect[t]);
        xv_schedule_step(&s);
    }
    /* No warmup: max(1, W) keeps 0/0 away; the decay starts at 1. */
    CHECK_OK(xv_schedule_init(&s, 4, 0, false));
    CHECK(xv_schedule_factor(&s) == 1.0 && xv_schedule_lambda(&s, 1) == 0.75, "W=0");
    /* W >= N: warmup never ends before N; the decay span is max(1, N-W). */
    CHECK_OK(xv_schedule_init(&s, 4, 6, false));
    CHECK(xv_schedule_lambda(&s, 5) == 5.0 / 6 && xv_schedule_lambda(&s, 6) == 0.0, "W > N");
}

static void test_fractional_warmup(void) {
    xv_lr_schedule s;
    CHECK_OK(xv_schedule_init(&s, 1000, 0.1, true));
    CHECK(s.warmup_steps == 100, "0.1 of 1000: %lld", (long long)s.warmup_steps);
    CHECK_OK(xv_schedule_init(&s, 999, 0.1, true));
    CHECK(s.warmup_steps == 99, "int(99.9) truncates: %lld", (long long)s.warmup_steps);
    CHECK(xv_schedule_lambda(&s, 50) == 50.0 / 99, "fraction warmup value");
    CHECK(xv_schedule_init(&s, 1000, 1.0, true) == XV_ERR_INVALID_ARG, "fraction 1.0 refused (official assert)");
    CHECK(xv_schedule_init(&s, 1000, -0.1, true) == XV_ERR_INVALID_ARG, "negative fraction refused");
    CHECK(xv_schedule_init(&s, 1000, 2.5, false) == XV_ERR_INVALID_ARG, "non-integer step count refused");
}

int main(void) {
    test_total_steps();
    test_pretrain_values();
    test_stepping();
    test_fractional_warmup();
    return xv_test_finish("schedule");
}
