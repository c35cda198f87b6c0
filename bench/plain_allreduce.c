/* braid-bench-plain: what a user's plain MPI program gets from
 * MPI_Allreduce(MPI_IN_PLACE) on host memory, with no braid code, as the
 * reference for braid-bench's raw column (docs/benchmarks.md, "How the raw column
 * was checked").
 *
 *   mpirun -np 2 braid-bench-plain [-b 4] [-e 256M] [-f 4] [-t multiple|single]
 *       [-s SECONDS] [-r ROUNDS] [-w WARMUP] [-g GAP_SECONDS] [-a ALIGN] [--no-touch]
 *
 * One float32 buffer of the largest size is malloc'd (posix_memalign'd with -a) and
 * written once (unless --no-touch), then for each size: WARMUP calls, then ROUNDS
 * rounds of N calls after an MPI_Barrier (and a sleep of GAP_SECONDS with -g),
 * N chosen so that a round takes about SECONDS / ROUNDS (at least 5 calls); a
 * round's value is the largest over ranks of the mean time per call; the size's
 * value is the median round. busbw = 2(n-1)/n * bytes / time; faults/call: rank
 * 0's minor page faults per timed call (getrusage).
 * -t picks the thread level asked of MPI_Init_thread (braid asks for
 * MPI_THREAD_MULTIPLE). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct Config {
  long long min_bytes, max_bytes, factor;
  int thread_level, rounds, warmup, touch, align;
  double seconds, gap;
};

static long long ParseSize(const char* text) {
  char* end = NULL;
  long long v = strtoll(text, &end, 10);
  if (*end == 'K' || *end == 'k') v <<= 10;
  if (*end == 'M' || *end == 'm') v <<= 20;
  if (*end == 'G' || *end == 'g') v <<= 30;
  return v;
}

static int ParseArgs(int argc, char** argv, struct Config* c) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--no-touch") == 0) {
      c->touch = 0;
      continue;
    }
    if (v == NULL) return 0;
    ++i;
    if (strcmp(a, "-b") == 0)
      c->min_bytes = ParseSize(v);
    else if (strcmp(a, "-e") == 0)
      c->max_bytes = ParseSize(v);
    else if (strcmp(a, "-f") == 0)
      c->factor = ParseSize(v);
    else if (strcmp(a, "-s") == 0)
      c->seconds = atof(v);
    else if (strcmp(a, "-r") == 0)
      c->rounds = atoi(v);
    else if (strcmp(a, "-w") == 0)
      c->warmup = atoi(v);
    else if (strcmp(a, "-g") == 0)
      c->gap = atof(v);
    else if (strcmp(a, "-a") == 0)
      c->align = atoi(v);
    else if (strcmp(a, "-t") == 0 && strcmp(v, "single") == 0)
      c->thread_level = MPI_THREAD_SINGLE;
    else if (strcmp(a, "-t") == 0 && strcmp(v, "multiple") == 0)
      c->thread_level = MPI_THREAD_MULTIPLE;
    else
      return 0;
  }
  return c->min_bytes >= 4 && c->max_bytes >= c->min_bytes && c->factor >= 2 && c->rounds >= 1 &&
         c->seconds > 0 && c->warmup >= 0;
}

/* Mean seconds per call of `iters` calls, the largest over ranks. */
static double TimeCalls(float* data, int count, int iters) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  for (int i = 0; i < iters; ++i) {
    MPI_Allreduce(MPI_IN_PLACE, data, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  double local = (MPI_Wtime() - start) / iters, global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return global;
}

static int CompareDoubles(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static long MinorFaults(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

/* Returns the median round's seconds per call, the calls per round and this
 * rank's minor page faults per timed call. */
static double MeasureSize(const struct Config* c, float* data, int count, int* iters,
                          double* faults) {
  for (int i = 0; i < c->warmup; ++i) {
    MPI_Allreduce(MPI_IN_PLACE, data, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  const double estimate = TimeCalls(data, count, 1);
  const double wanted = c->seconds / c->rounds / (estimate > 1e-9 ? estimate : 1e-9);
  *iters = wanted < 5 ? 5 : wanted > 100000 ? 100000 : (int)wanted;
  double rounds[99];
  const int n = c->rounds < 99 ? c->rounds : 99;
  const long faults_before = MinorFaults();
  for (int r = 0; r < n; ++r) {
    if (c->gap > 0) usleep((useconds_t)(c->gap * 1e6));
    rounds[r] = TimeCalls(data, count, *iters);
  }
  *faults = (double)(MinorFaults() - faults_before) / ((double)n * *iters);
  qsort(rounds, n, sizeof(double), CompareDoubles);
  return n % 2 == 1 ? rounds[n / 2] : 0.5 * (rounds[n / 2 - 1] + rounds[n / 2]);
}

int main(int argc, char** argv) {
  struct Config c = {4, 256LL << 20, 2, MPI_THREAD_MULTIPLE, 3, 5, 1, 0, 1.0, 0.0};
  int provided = 0, rank = 0, ranks = 1;
  const int ok = ParseArgs(argc, argv, &c);
  MPI_Init_thread(&argc, &argv, c.thread_level, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (!ok) {
    if (rank == 0) fprintf(stderr, "braid-bench-plain: bad option (see the file comment)\n");
    MPI_Finalize();
    return 2;
  }
  void* p = NULL;
  if (c.align > 0 ? posix_memalign(&p, (size_t)c.align, (size_t)c.max_bytes) != 0
                  : (p = malloc((size_t)c.max_bytes)) == NULL) {
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  float* data = p;
  if (c.touch) memset(data, 0, (size_t)c.max_bytes);
  const double factor = ranks > 1 ? 2.0 * (ranks - 1) / ranks : 1.0;
  if (rank == 0) {
    printf(
        "# braid-bench-plain: MPI_Allreduce(MPI_IN_PLACE) float32 sum, %d ranks, thread "
        "level asked %d got %d, buffer %s at %p%s\n",
        ranks, c.thread_level, provided, c.align > 0 ? "posix_memalign'd" : "malloc'd", (void*)data,
        c.touch ? ", memset" : " (untouched)");
    printf("#   warmup %d; about %.2g s per size in %d rounds (>= 5 calls each), median\n",
           c.warmup, c.seconds, c.rounds);
    printf("# %12s %12s %10s %10s %8s %12s\n", "size", "count", "time(us)", "busbw", "calls",
           "faults/call");
  }
  for (long long bytes = c.min_bytes; bytes <= c.max_bytes; bytes *= c.factor) {
    const int count = (int)(bytes / 4);
    int iters = 0;
    double faults = 0;
    const double seconds = MeasureSize(&c, data, count, &iters, &faults);
    if (rank == 0) {
      printf("  %12lld %12d %10.2f %10.2f %8d %12.1f\n", bytes, count, seconds * 1e6,
             factor * (double)bytes / seconds / 1e9, iters, faults);
      fflush(stdout);
    }
  }
  free(data);
  MPI_Finalize();
  return 0;
}
