/* braid C API.
 *
 * One default engine per process. Every call is thread-safe: several threads may
 * enqueue collectives at once. Functions return BRAID_OK (0) or a positive
 * BRAID_ERR_* code; braid_last_error() gives the message of the calling thread's
 * last call ("" when it succeeded). A call that fails leaves its output arguments
 * (such as *handle) untouched.
 *
 * A collective is asynchronous: it returns a handle at once, and the operation
 * completes when every rank has submitted a request with the same name. Wait on
 * the handle (braid_wait), then free it (braid_handle_free).
 */
#ifndef BRAID_BRAID_H_
#define BRAID_BRAID_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types (values match braid::DataType; new ones are appended).
 * BRAID_INT16 and BRAID_BOOL live in host memory only (NCCL has neither). A bool
 * is one byte, 0 or 1; its allreduce is logical: BRAID_SUM and BRAID_MAX are OR,
 * BRAID_PRODUCT and BRAID_MIN are AND; BRAID_AVERAGE and scale factors other than
 * 1 are refused. */
enum {
  BRAID_UINT8 = 0,
  BRAID_INT8 = 1,
  BRAID_INT32 = 2,
  BRAID_INT64 = 3,
  BRAID_FLOAT16 = 4,
  BRAID_BFLOAT16 = 5,
  BRAID_FLOAT32 = 6,
  BRAID_FLOAT64 = 7,
  BRAID_INT16 = 8,
  BRAID_BOOL = 9
};

/* Reduction operators (values match braid::ReduceOp). */
enum { BRAID_SUM = 0, BRAID_AVERAGE = 1, BRAID_MIN = 2, BRAID_MAX = 3, BRAID_PRODUCT = 4 };

/* Status codes (values match braid::StatusCode). */
enum {
  BRAID_OK = 0,
  BRAID_ERR_INVALID_ARGUMENT = 1,
  BRAID_ERR_NOT_INITIALIZED = 2,
  BRAID_ERR_MISMATCH = 3,
  BRAID_ERR_TIMEOUT = 4,
  BRAID_ERR_ABORTED = 5,
  BRAID_ERR_BACKEND = 6,
  BRAID_ERR_INTERNAL = 7,
  BRAID_ERR_DUPLICATE_NAME = 8,
  BRAID_ERR_OUT_OF_MEMORY = 9
};

/* Device ordinal of host memory; 0, 1, ... are CUDA devices. */
#define BRAID_DEVICE_CPU (-1)

/* A tensor: a dense, contiguous array. */
typedef struct braid_tensor {
  void* data;
  int dtype;            /* BRAID_UINT8 ... BRAID_BOOL */
  int ndim;             /* 0 for a scalar */
  const int64_t* shape; /* ndim extents */
  int device;           /* BRAID_DEVICE_CPU or a CUDA ordinal */
  void* stream;         /* cudaStream_t the data was produced on; NULL on the host */
} braid_tensor_t;

typedef struct braid_handle_s* braid_handle_t;

/* Initialises the default engine on MPI_COMM_WORLD (initialising MPI if needed).
 * Reads the BRAID_* environment variables; a bad value fails with
 * BRAID_ERR_INVALID_ARGUMENT and a message naming the variable. */
int braid_init(void);
/* Same, on the communicator `mpi_comm` points at (an MPI_Comm*). */
int braid_init_comm(const void* mpi_comm);
/* Stops the engine; pending operations fail with BRAID_ERR_ABORTED. braid_init may
 * be called again afterwards. */
int braid_shutdown(void);
/* 1 while this rank's engine runs. Shutdown is collective: once any rank calls
 * braid_shutdown, every rank's engine stops at its next negotiation round and this
 * returns 0 there too (pending operations fail with BRAID_ERR_ABORTED). */
int braid_is_initialized(void);

/* Position of this process; each returns -1 before init and after shutdown. */
int braid_rank(void);
int braid_size(void);
int braid_local_rank(void);
int braid_local_size(void);
int braid_cross_rank(void);
int braid_cross_size(void);

/* Reduces `input` across ranks into `output` (output may equal input.data: in
 * place). Elements are multiplied by `prescale` before and `postscale` after the
 * reduction. */
int braid_allreduce_async(const char* name, const braid_tensor_t* input, void* output, int op,
                          double prescale, double postscale, braid_handle_t* handle);

/* Concatenates every rank's `input` along the first dimension (which may differ
 * between ranks; the other dimensions must agree). The output is allocated by
 * braid: read it with braid_handle_output after the wait. */
int braid_allgather_async(const char* name, const braid_tensor_t* input, braid_handle_t* handle);

/* Copies `buffer` on `root` into `buffer` on every rank. */
int braid_broadcast_async(const char* name, const braid_tensor_t* buffer, int root,
                          braid_handle_t* handle);

/* ---- Sparse collectives (docs/sparse.md) ----
 * Each rank gives k (index, value) pairs, its own k (0 allowed): `indices` is a 1-D
 * BRAID_INT32 or BRAID_INT64 tensor of k indices into the first dimension of a
 * dense tensor of shape [length, d1, ..., dn]; `values` has shape [k, d1, ..., dn]
 * (for a flat dense tensor: [k]) and dtype float16, bfloat16, float32 or float64.
 * Indices may repeat (within a rank and across ranks): their values add up. An
 * index outside [0, length) fails the operation with BRAID_ERR_INVALID_ARGUMENT on
 * every rank, naming the rank that gave it; nothing is written out of bounds.
 * The dense shape, dtypes, index type, device and op must agree across ranks. */

/* flags for braid_sparse_allreduce_async. */
#define BRAID_SPARSE_DENSE_FALLBACK 1 /* run as a dense allreduce when that moves fewer bytes */

/* dense = the sum (op BRAID_SUM) or average (BRAID_AVERAGE) over ranks of every
 * rank's pairs scattered into zeros. `dense->data` is overwritten. */
int braid_sparse_allreduce_async(const char* name, const braid_tensor_t* indices,
                                 const braid_tensor_t* values, const braid_tensor_t* dense, int op,
                                 int flags, braid_handle_t* handle);

/* Every rank's pairs, in rank order, into memory braid owns (read them with
 * braid_handle_sparse_output). `dense_shape` (dense_ndim extents) is the shape the
 * indices address. */
int braid_sparse_allgather_async(const char* name, const braid_tensor_t* indices,
                                 const braid_tensor_t* values, int dense_ndim,
                                 const int64_t* dense_shape, braid_handle_t* handle);

/* The output of a finished sparse allgather: every rank's indices and values,
 * *total_pairs of them, and *rank_pairs (world size entries) with each rank's
 * count. Valid until the handle is freed; in GPU memory for GPU tensors. */
int braid_handle_sparse_output(braid_handle_t handle, const void** indices, const void** values,
                               int64_t* total_pairs, const int64_t** rank_pairs);

/* ---- Neighbour collectives (docs/gossip.md) ----
 * Each rank names the ranks it sends its tensor to (send_to, num_send entries) and
 * the ranks it receives tensors from (recv_from, num_recv entries): ascending,
 * distinct, never itself; either may be empty. Across ranks they must form one
 * graph: rank i lists j in send_to exactly when rank j lists i in recv_from;
 * otherwise the operation fails with BRAID_ERR_MISMATCH on every rank, naming the
 * edges that do not match. Shape, dtype and host/GPU memory must agree across
 * ranks. The graph may change from call to call (a time-varying graph). Not
 * supported while ranks are joined. */

/* output = self_weight * input + sum over k of recv_weights[k] * (the input of rank
 * recv_from[k]): one gossip (mixing) step. dtype float16, bfloat16, float32 or
 * float64; output may equal input->data (in place). The weights are this rank's
 * own (a row of the mixing matrix) and are not checked against the other ranks'. */
int braid_neighbor_allreduce_async(const char* name, const braid_tensor_t* input, void* output,
                                   const int* send_to, int num_send, const int* recv_from,
                                   int num_recv, double self_weight, const double* recv_weights,
                                   braid_handle_t* handle);

/* The inputs of the recv_from ranks as they are, into memory braid owns (read it
 * with braid_handle_output): shape [num_recv, input shape...], block k from rank
 * recv_from[k]. Any dtype. */
int braid_neighbor_exchange_async(const char* name, const braid_tensor_t* input,
                                  const int* send_to, int num_send, const int* recv_from,
                                  int num_recv, braid_handle_t* handle);

/* 1 when the operation has finished (successfully or not), 0 while pending. */
int braid_poll(braid_handle_t handle);
/* Blocks until the operation finishes; returns its status. */
int braid_wait(braid_handle_t handle);
/* The failure message of a finished handle ("" when it succeeded). Valid until the
 * handle is freed. */
const char* braid_handle_error(braid_handle_t handle);
/* The braid-owned output of a finished allgather: data, ndim and shape stay valid
 * until the handle is freed. For a GPU tensor, `data` is in that GPU's memory. */
int braid_handle_output(braid_handle_t handle, const void** data, int* ndim, const int64_t** shape);
void braid_handle_free(braid_handle_t handle);

/* Blocks until every rank has called it. Calls from several threads of one rank
 * run one after another. */
int braid_barrier(void);

/* Declares that this rank has no more data to contribute, and blocks until every
 * rank has called it. Until then this rank takes part in the collectives the other
 * ranks submit: in an allreduce it contributes zeros (average still divides by the
 * full size, so it is the sum over the ranks that have not joined divided by the
 * size), in an allgather it contributes no rows, and a barrier counts it as
 * arrived. A broadcast fails, on every rank that submitted it, with
 * BRAID_ERR_INVALID_ARGUMENT while some rank that did not submit it has joined.
 * When it returns BRAID_OK, *last_joined_rank (if not NULL) holds the same value
 * on every rank: the rank that joined last (the highest-numbered one when several
 * joined in the same negotiation round). One join per rank may be in flight: a
 * second call from another thread meanwhile fails with BRAID_ERR_DUPLICATE_NAME.
 * Fails with BRAID_ERR_ABORTED when the engine is shut down first. Collective. */
int braid_join(int* last_joined_rank);

/* ---- Communication counters (docs/stats.md) ----
 * Per process (one rank): the collectives executed since start-up or the last
 * braid_reset_stats, and this rank's payload bytes in them. A fused group counts as
 * one collective; negotiation traffic is not counted. */

/* Collective kinds (values match braid::Collective). */
enum {
  BRAID_ALLREDUCE = 0,
  BRAID_ALLGATHER = 1,
  BRAID_BROADCAST = 2,
  BRAID_BARRIER = 3,
  BRAID_SPARSE_ALLREDUCE = 5,
  BRAID_SPARSE_ALLGATHER = 6,
  BRAID_NEIGHBOR_ALLREDUCE = 7,
  BRAID_NEIGHBOR_EXCHANGE = 8
};

/* *count and *bytes (either may be NULL) for `collective` (BRAID_ALLREDUCE ...). Works
 * before init as well. */
int braid_stats(int collective, int64_t* count, int64_t* bytes);
/* The index bytes of the sparse collectives (BRAID_SPARSE_ALLREDUCE,
 * BRAID_SPARSE_ALLGATHER), which braid_stats leaves out: there *bytes counts the
 * values this rank contributed, here *index_bytes its indices. */
int braid_sparse_stats(int collective, int64_t* index_bytes);
/* The bytes the neighbour collectives sent from this rank to each peer: bytes[p] for
 * p < num (the world size); peers never sent to read 0. */
int braid_neighbor_stats(int64_t* bytes, int num);
/* Sets every counter to zero (the stage times below too). */
int braid_reset_stats(void);

/* Where the engine's time per operation goes (docs/engine.md, "Fixed cost"): for
 * each stage, how many requests passed it and their total time in microseconds,
 * summed over this process since start-up or braid_reset_stats. */
enum braid_stage {
  BRAID_STAGE_SUBMIT = 0,    /* braid_*_async: checks, handle, pending table */
  BRAID_STAGE_HANDOFF = 1,   /* queued until the coordinator took it */
  BRAID_STAGE_NEGOTIATE = 2, /* taken until its collective started (the ranks' round) */
  BRAID_STAGE_EXECUTE = 3,   /* the collective: pack, data plane, unpack */
  BRAID_STAGE_WAKE = 4       /* done until a blocked braid_wait returned */
};
int braid_stage_times(int stage, int64_t* count, double* total_us);

/* ---- Restart ops: local SGD, PR-SGD-Momentum, SlowMo / BMUF ----
 * (docs/local_sgd.md, docs/pr_sgd_momentum.md, docs/slowmo.md)
 * An op counts local steps; every `period` steps after `warmup_steps` it restarts:
 * the registered buffers are averaged over the ranks in ONE allreduce (packed into
 * one buffer, with slots that check that every rank is at the same step: a rank at
 * another step makes the restart fail with BRAID_ERR_MISMATCH on every rank). An op
 * takes contiguous float32 or float64 buffers, all of one dtype on one device; GPU
 * buffers need the restart GPU kernels in the build. `name` names the op's allreduce:
 * the same on every rank, unique among the ops and tensors in flight. Ops run on the
 * default engine (braid_init first). One thread at a time per op. */
typedef struct braid_restart_s* braid_restart_t;

/* Periodic averaging (local SGD; PR-SGD-Momentum when the momentum buffers are
 * registered as `averaged`). */
int braid_local_sgd_create(const char* name, int64_t period, int64_t warmup_steps,
                           braid_restart_t* op);
/* SlowMo: every `period` steps xbar = avg(x), d = (x_old - xbar) / lr,
 * s = slow_momentum * s + d, x_old -= slow_lr * lr * s (nesterov != 0: x_old -= slow_lr *
 * lr * (slow_momentum * s + d)), x = x_old: x_old is where the block started. BMUF:
 * block momentum = slow_momentum, block learning rate = slow_lr; nesterov != 0 gives
 * BMUF's Nesterov block momentum. */
int braid_slowmo_create(const char* name, int64_t period, double slow_lr, double slow_momentum,
                        int nesterov, braid_restart_t* op);
/* Registers the buffers a restart averages: `params` (SlowMo: the parameters its
 * outer step moves) and `averaged` (state averaged along, e.g. momentum buffers).
 * Their element counts, in order, must agree across ranks. They must stay valid until
 * replaced by the next call or the op is freed. */
int braid_restart_set_buffers(braid_restart_t op, const braid_tensor_t* params, int num_params,
                              const braid_tensor_t* averaged, int num_averaged);
/* SlowMo only: the slow parameters x_old and the slow momentum s, flat buffers with as
 * many elements as the registered params together (their dtype and device). The
 * caller zeroes s; braid_restart_init_slow_params sets x_old to the params. */
int braid_restart_set_slow_buffers(braid_restart_t op, const braid_tensor_t* slow_params,
                                   const braid_tensor_t* slow_momentum);
int braid_restart_init_slow_params(braid_restart_t op);
/* Counts one local step (call it after the base optimizer's step) and restarts when
 * due; *restarted (may be NULL) is 1 then. `lr`: the base optimizer's current learning
 * rate (SlowMo; ignored by local SGD). Collective at restart steps. */
int braid_restart_step(braid_restart_t op, double lr, int* restarted);
/* Restarts now without counting a step. Collective. */
int braid_restart_now(braid_restart_t op, double lr);
/* 1 when the next braid_restart_step restarts, 0 when not, -1 for a NULL op. */
int braid_restart_due(braid_restart_t op);
/* The local step counter (e.g. to save and restore it with a checkpoint). */
int braid_restart_get_step(braid_restart_t op, int64_t* step);
int braid_restart_set_step(braid_restart_t op, int64_t step);
void braid_restart_free(braid_restart_t op);

/* ---- Sparse training ops: M-DSGD, GMC, DGC ----
 * Each step a rank sends the top entries of its error memory as (index, value) pairs
 * through ONE sparse allreduce (average) named `name`, keeps the rest in the memory,
 * and moves the parameters by the averaged update (ops/compress/sparse_methods.h has
 * the equations). An op takes float32 or float64 tensors of one dtype on one device;
 * it owns its state (zeroed flat buffers over the tensors: the sparse tensors in
 * order, then the dense-flagged ones). Every rank must create the same ops in the
 * same order and step them together. One thread at a time per op. */
typedef struct braid_sparse_op_s* braid_sparse_op_t;

enum { BRAID_SELECT_TOPK = 0, BRAID_SELECT_THRESHOLD = 1, BRAID_SELECT_RANDOMK = 2 };
enum { BRAID_SCOPE_TENSOR = 0, BRAID_SCOPE_GLOBAL = 1 };

typedef struct braid_sparse_options {
  double density;         /* fraction of entries sent, in [0, 1] */
  double momentum;        /* beta (DGC: m) */
  int nesterov;           /* M-DSGD, DGC */
  double weight_decay;    /* folded into the gradient: g + weight_decay * w */
  double clip_norm;       /* DGC: clip g to clip_norm / sqrt(N); 0: off */
  int selection;          /* BRAID_SELECT_* */
  int scope;              /* BRAID_SCOPE_TENSOR (k per tensor) or _GLOBAL (one k) */
  double sample_fraction; /* threshold selection's sample */
  uint64_t seed;          /* random-k's seed, the same on every rank */
  int dense_fallback;     /* the sparse allreduce may run dense when that is smaller */
} braid_sparse_options_t;

/* The defaults: density 0.01, momentum 0.9, top-k per tensor, dense fallback on. */
void braid_sparse_options_init(braid_sparse_options_t* options);
/* options may be NULL (the defaults). */
int braid_mdsgd_create(const char* name, const braid_sparse_options_t* options,
                       braid_sparse_op_t* op);
int braid_gmc_create(const char* name, const braid_sparse_options_t* options,
                     braid_sparse_op_t* op);
int braid_dgc_create(const char* name, const braid_sparse_options_t* options,
                     braid_sparse_op_t* op);
/* The parameters and their gradients (num each, pairwise the same sizes); dense: NULL
 * or num flags (nonzero: that tensor goes whole through a dense allreduce).
 * (Re)allocates zeroed state when the total size, dtype or device changes. */
int braid_sparse_op_set_buffers(braid_sparse_op_t op, const braid_tensor_t* params,
                                const braid_tensor_t* grads, int num, const int* dense);
/* One step (collective): reads the gradients, updates the parameters in place.
 * density < 0: the op's. */
int braid_sparse_op_step(braid_sparse_op_t op, double lr, double density);
/* A state buffer by name ("memory", "momentum", "accumulation", "last_update"): its
 * data (on the parameters' device) and element count; writing into it restores. */
int braid_sparse_op_state(braid_sparse_op_t op, const char* name, void** data, int64_t* count);
int braid_sparse_op_get_step(braid_sparse_op_t op, int64_t* step);
int braid_sparse_op_set_step(braid_sparse_op_t op, int64_t step);
/* What the last step sent from this rank (any pointer may be NULL). */
int braid_sparse_op_stats(braid_sparse_op_t op, int64_t* pairs, int64_t* value_bytes,
                          int64_t* index_bytes, int64_t* dense_bytes);
void braid_sparse_op_free(braid_sparse_op_t op);

/* ---- Decentralized momentum SGD (docs/decentralized_sgd.md) ----
 * Algorithm 2 of Yu, Jin, Yang (ICML 2019). Each step, rank i takes a local
 * momentum step, u~ = momentum * u + g and x~ = x - lr * u~ (Option I, heavy ball;
 * nesterov != 0, Option II: x~ = x - lr * (momentum * u~ + g)), with g + weight_decay
 * * x for g, then mixes with its neighbours in a gossip graph (docs/gossip_graphs.md):
 * x = sum_j W_t[i][j] x~_j and, when mix_momentum != 0, u = sum_j W_t[i][j] u~_j
 * (else u = u~). W_t is the graph's mixing matrix at step t, the step counter
 * before the step (the first step uses W_0). momentum 0 is D-PSGD. Every
 * average_period-th step (average_period > 0) replaces the mixing by the exact
 * average of x and u over the ranks (one allreduce). A mixing step is ONE neighbour
 * allreduce of x and u packed together, named `name` (a time-varying graph:
 * "<name>/phase<t mod period>"). The graph has braid_size() ranks and this process
 * is braid_rank() in it (braid_init first). An op takes contiguous float32 or
 * float64 buffers, all of one dtype on one device; GPU buffers need the GPU kernels
 * in the build. Every rank must create the same ops and step them together. One
 * thread at a time per op. */
typedef struct braid_gossip_s* braid_gossip_t;

typedef struct braid_gossip_options {
  /* "ring", "torus", "exponential", "one_peer_exponential", "complete" or "base"
   * (Base-(max_degree + 1)); ignored when matrices is not NULL. */
  const char* topology;
  /* User mixing matrices: num_matrices row-major braid_size() x braid_size()
   * matrices, one after the other (W_t = matrix t mod num_matrices), each
   * nonnegative and doubly stochastic; or NULL. */
  const double* matrices;
  int num_matrices;
  int max_degree;         /* "base": peers per step, k >= 1 */
  double momentum;        /* beta in [0, 1) */
  int nesterov;           /* Option II */
  int mix_momentum;       /* mix u as well as x */
  int64_t average_period; /* K: exact average every K steps; 0: never */
  double weight_decay;    /* folded into the gradient: g + weight_decay * x */
} braid_gossip_options_t;

/* The defaults: ring, max_degree 1, momentum 0.9, heavy ball, mix_momentum 1, no
 * averaging, no weight decay. */
void braid_gossip_options_init(braid_gossip_options_t* options);
/* options may be NULL (the defaults). Fails for an unknown topology or a bad matrix. */
int braid_gossip_create(const char* name, const braid_gossip_options_t* options,
                        braid_gossip_t* op);
/* The parameters x (updated in place), their gradients g (read by a step) and the
 * momentum buffers u (updated in place), num of each, pairwise the same sizes. grads
 * may be NULL (braid_gossip_mix only), momentum NULL when the momentum is 0. They
 * must stay valid until replaced by the next call or the op is freed. */
int braid_gossip_set_buffers(braid_gossip_t op, const braid_tensor_t* params,
                             const braid_tensor_t* grads, const braid_tensor_t* momentum,
                             int num);
/* One step with learning rate lr >= 0: local step, then mixing (or the average).
 * Collective. A failed mixing leaves x~ and u~ and counts the step. */
int braid_gossip_step(braid_gossip_t op, double lr);
/* The mixing step alone (the caller took the local step): counts a step. Collective. */
int braid_gossip_mix(braid_gossip_t op);
/* x and u replaced by their exact average over the ranks now; no step counted.
 * Fails with BRAID_ERR_MISMATCH on every rank when the ranks' step counters differ.
 * Collective. */
int braid_gossip_consensus(braid_gossip_t op);
/* *distance = sqrt((1/n) sum_i ||x_i - xbar||^2), the same on every rank; x is not
 * changed. Collective. */
int braid_gossip_consensus_distance(braid_gossip_t op, double* distance);
/* The step counter (the next step mixes with W_step), e.g. for checkpoints. */
int braid_gossip_get_step(braid_gossip_t op, int64_t* step);
int braid_gossip_set_step(braid_gossip_t op, int64_t step);
void braid_gossip_free(braid_gossip_t op);

/* Message of the calling thread's last braid call ("" if it succeeded). */
const char* braid_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* BRAID_BRAID_H_ */
