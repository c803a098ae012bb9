// The native side of shm-cache alone, without any JavaScript: what a hit, a
// miss and an overwrite cost inside libshm_cache.so. bench/native_hit.ts
// builds this with the repository's Zig (`zig cc`) and runs it twice:
//
//   native_hit time DIR       wall-clock ns per call (median of 7 rounds)
//   valgrind --tool=callgrind --toggle-collect='run_*' native_hit count DIR
//                             instructions per call, repeatable to the unit
//
// Keys are the benchmark's shape ("s" tag + "user:" + an 11-35 character
// id, 10,000 of them), values a 65-byte encoded string (tag + 64 bytes),
// requested in Zipf (s = 0.99) order, as in bench/peers_bench.ts.

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *shmc_open(const uint8_t *dir, uint32_t dir_len, const uint8_t *name, uint32_t name_len,
                double config[6] /* in and out */, uint8_t *err, uint32_t err_cap, int32_t status_out[2]);
void shmc_close(void *h);
int32_t shmc_lookup(void *h, const uint8_t *key, uint32_t key_len, uint8_t *out, uint32_t out_cap);
int32_t shmc_insert(void *h, const uint8_t *key, uint32_t key_len, const uint8_t *value, uint32_t value_len,
                    double ttl_ms, uint32_t mode);

enum { KEYS = 10000, STREAM = 1 << 16, KEY_MAX = 65, VALUE_MAX = 1025 };

static uint8_t keys[KEYS][KEY_MAX];
static uint32_t key_lens[KEYS];
static uint8_t misses[KEYS][KEY_MAX];
static uint32_t stream[STREAM];
static uint8_t value[VALUE_MAX];
static uint8_t out[VALUE_MAX];
static volatile int64_t sink;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void) {
  // splitmix64
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void make_keys(void) {
  static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (int i = 0; i < KEYS; i++) {
    uint32_t id_len = 11 + (uint32_t)(next_random() % 25);
    memcpy(keys[i], "suser:", 6);
    for (uint32_t j = 0; j < id_len; j++) keys[i][6 + j] = (uint8_t)chars[next_random() % 36];
    // A counter in the id keeps every key distinct.
    keys[i][6] = (uint8_t)('a' + i % 26), keys[i][7] = (uint8_t)('a' + (i / 26) % 26);
    keys[i][8] = (uint8_t)('a' + (i / 676) % 26);
    key_lens[i] = 6 + id_len;
    memcpy(misses[i], keys[i], key_lens[i]);
    memcpy(misses[i] + 1, "miss:", 5);
  }
  static double cdf[KEYS];
  double sum = 0;
  for (int r = 0; r < KEYS; r++) cdf[r] = sum += 1.0 / pow(r + 1, 0.99);
  for (int r = 0; r < KEYS; r++) cdf[r] /= sum;
  for (int i = 0; i < STREAM; i++) {
    double u = (double)(next_random() >> 11) / 9007199254740992.0;
    int lo = 0, hi = KEYS - 1;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (cdf[mid] < u) lo = mid + 1; else hi = mid;
    }
    stream[i] = (uint32_t)lo;
  }
  value[0] = 6; // the codec's string tag
  for (int i = 1; i < 65; i++) value[i] = (uint8_t)('a' + i % 26);
}

__attribute__((noinline)) void run_lookups(void *h, int n) {
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    uint32_t k = stream[i & (STREAM - 1)];
    total += shmc_lookup(h, keys[k], key_lens[k], out, VALUE_MAX);
  }
  sink = total;
}

__attribute__((noinline)) void run_misses(void *h, int n) {
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    uint32_t k = stream[i & (STREAM - 1)];
    total += shmc_lookup(h, misses[k], key_lens[k], out, VALUE_MAX);
  }
  sink = total;
}

__attribute__((noinline)) void run_overwrites(void *h, int n) {
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    uint32_t k = stream[i & (STREAM - 1)];
    total += shmc_insert(h, keys[k], key_lens[k], value, 65, -1, 0);
  }
  sink = total;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double timed(void (*run)(void *, int), void *h, int n) {
  double rounds[7];
  run(h, n / 4); // warm-up
  for (int r = 0; r < 7; r++) {
    double t0 = now_ns();
    run(h, n);
    rounds[r] = (now_ns() - t0) / n;
  }
  qsort(rounds, 7, sizeof rounds[0], cmp);
  return rounds[3];
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "time") != 0 && strcmp(argv[1], "count") != 0)) {
    fprintf(stderr, "usage: native_hit time|count DIR\n");
    return 2;
  }
  const char *dir = argv[2];
  double config[6] = {40000, KEY_MAX, VALUE_MAX, 0, 500, -1};
  uint8_t err[512];
  int32_t status[2];
  void *h = shmc_open((const uint8_t *)dir, (uint32_t)strlen(dir), (const uint8_t *)"native", 6, config, err, 512, status);
  if (h == NULL) {
    fprintf(stderr, "shmc_open failed: status %d: %.*s\n", status[0], status[1], (const char *)err);
    return 1;
  }
  make_keys();
  for (int i = 0; i < KEYS; i++) {
    if (shmc_insert(h, keys[i], key_lens[i], value, 65, -1, 0) != 0) {
      fprintf(stderr, "insert %d failed\n", i);
      return 1;
    }
  }
  if (shmc_lookup(h, keys[0], key_lens[0], out, VALUE_MAX) != 65) {
    fprintf(stderr, "lookup of a stored key failed\n");
    return 1;
  }
  if (strcmp(argv[1], "count") == 0) {
    // Fixed counts; callgrind collects only inside run_*.
    run_lookups(h, 100000);
    run_misses(h, 100000);
    run_overwrites(h, 100000);
    printf("{\"calls\": 100000}\n");
  } else {
    int n = 1000000;
    double hit = timed(run_lookups, h, n);
    double miss = timed(run_misses, h, n);
    double overwrite = timed(run_overwrites, h, n / 4);
    printf("{\"lookupHitNs\": %.2f, \"lookupMissNs\": %.2f, \"overwriteNs\": %.2f}\n", hit, miss, overwrite);
  }
  shmc_close(h);
  return 0;
}
