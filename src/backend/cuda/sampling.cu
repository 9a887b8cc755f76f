// Sampling kernels: argmax, and the full processing + exponential race of sampling_batch.h.
// One CTA of kThreads per row; every phase is a pass over the row with block-wide reductions.
#include <algorithm>
#include <cfloat>
#include <climits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/sampling.h"
#include "sampling/philox.h"

namespace kite::cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

// (value, id) with "greater value, then lower id" winning; id == INT_MAX is "none".
struct Best {
  float v;
  int32_t id;
};

__device__ __forceinline__ bool better(const Best& a, const Best& b) {
  if (a.id == INT_MAX) return false;
  if (b.id == INT_MAX) return true;
  return a.v > b.v || (a.v == b.v && a.id < b.id);
}

__device__ __forceinline__ Best warp_best(Best b) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(kFull, b.v, o), __shfl_xor_sync(kFull, b.id, o)};
    if (better(other, b)) b = other;
  }
  return b;
}

struct Shared {
  Best best[kWarps];
  double dsum[kWarps];
  int isum[kWarps];
  unsigned cnt[256];
  double mass[256];
  // Phase results broadcast to the block.
  int digit;
  int remaining;
  double cum;
  int32_t token;
  int32_t tie_id;
  int scan[kWarps];
};

__device__ Best block_best(Best b, Shared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  b = warp_best(b);
  __syncthreads();
  if (lane == 0) sh.best[warp] = b;
  __syncthreads();
  b = lane < kWarps ? sh.best[lane] : Best{-INFINITY, INT_MAX};
  return warp_best(b);
}

__device__ double block_dsum(double v, Shared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  __syncthreads();
  if (lane == 0) sh.dsum[warp] = v;
  __syncthreads();
  v = lane < kWarps ? sh.dsum[lane] : 0.0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

__device__ int block_isum(int v, Shared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  __syncthreads();
  if (lane == 0) sh.isum[warp] = v;
  __syncthreads();
  v = lane < kWarps ? sh.isum[lane] : 0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// Order-preserving map of floats to unsigned keys (larger float, larger key).
__device__ __forceinline__ unsigned fkey(float x) {
  const unsigned u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float from_key(unsigned k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// Adds `mass` (and a count of 1) of each active lane to bin `digit`, one shared atomic per
// distinct digit of the warp. Every lane of the warp must call it.
__device__ __forceinline__ void hist_add(bool active, unsigned digit, double mass, Shared& sh,
                                         bool with_mass) {
  const int lane = threadIdx.x & 31;
  unsigned act = __ballot_sync(kFull, active);
  while (act != 0) {
    const int leader = __ffs(act) - 1;
    const unsigned d = __shfl_sync(kFull, digit, leader);
    const bool mine = active && digit == d;
    const unsigned peers = __ballot_sync(kFull, mine);
    double m = 0.0;
    if (with_mass) {
      m = mine ? mass : 0.0;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) m += __shfl_xor_sync(kFull, m, o);
    }
    if (lane == leader) {
      atomicAdd(&sh.cnt[d], static_cast<unsigned>(__popc(peers)));
      if (with_mass) atomicAdd(&sh.mass[d], m);
    }
    act &= ~peers;
  }
}

// Loop bound rounded up to whole CTA passes, so that warp-collective helpers see every lane.
__device__ __forceinline__ int64_t padded(int64_t n) {
  return (n + kThreads - 1) / kThreads * kThreads;
}

__device__ __forceinline__ Best argmax_row(const float* x, int64_t vocab, Shared& sh) {
  Best b{-INFINITY, INT_MAX};
  for (int64_t t = threadIdx.x; t < vocab; t += kThreads) {
    const float v = x[t];
    if (!isnan(v)) {
      const Best c{v, static_cast<int32_t>(t)};
      if (better(c, b)) b = c;
    }
  }
  b = block_best(b, sh);
  if (b.id == INT_MAX) b.id = 0;
  return b;
}

__device__ __forceinline__ float race_key_dev(float u) {
  // -log(-log(u)) with correctly rounded logs (closest to glibc's logf).
  const float e = static_cast<float>(-log(static_cast<double>(u)));
  return static_cast<float>(-log(static_cast<double>(e)));
}

// k-th largest value of x (counting duplicates), by 4 passes of 8-bit radix selection.
__device__ float kth_largest(const float* x, int64_t vocab, int k, Shared& sh) {
  unsigned prefix = 0, mask = 0;
  int remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += kThreads) sh.cnt[i] = 0;
    __syncthreads();
    for (int64_t t = threadIdx.x; t < padded(vocab); t += kThreads) {
      const bool in = t < vocab;
      const unsigned key = in ? fkey(x[t]) : 0u;
      hist_add(in && (key & mask) == prefix, (key >> shift) & 255u, 0.0, sh, false);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int d = 255;
      for (; d > 0; --d) {
        if (static_cast<int>(sh.cnt[d]) >= remaining) break;
        remaining -= static_cast<int>(sh.cnt[d]);
      }
      sh.digit = d;
      sh.remaining = remaining;
    }
    __syncthreads();
    prefix |= static_cast<unsigned>(sh.digit) << shift;
    mask |= 255u << shift;
    remaining = sh.remaining;
    __syncthreads();
  }
  return from_key(prefix);
}

// Argmax over several CTAs per row (one CTA cannot stream a 128K-vocabulary row at the
// memory's rate): each CTA reduces its slice, the last to finish reduces the slices.
constexpr int kArgmaxThreads = 256;
__global__ void __launch_bounds__(kArgmaxThreads)
    argmax_kernel(const float* logits, int64_t vocab, int32_t* out, Best* partial,
                  int32_t* counters) {
  __shared__ Best warp_best_s[kArgmaxThreads / 32];
  pdl_launch_dependents();
  pdl_wait();
  const int row = blockIdx.y, chunk = blockIdx.x, chunks = gridDim.x;
  const int64_t per = (vocab + chunks - 1) / chunks;
  const int64_t t0 = chunk * per, t1 = min(vocab, t0 + per);
  const float* x = logits + row * vocab;
  Best b{-INFINITY, INT_MAX};
  for (int64_t t = t0 + threadIdx.x; t < t1; t += kArgmaxThreads) {
    const float v = x[t];
    if (!isnan(v)) {
      const Best c{v, static_cast<int32_t>(t)};
      if (better(c, b)) b = c;
    }
  }
  b = warp_best(b);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_best_s[warp] = b;
  __syncthreads();
  if (threadIdx.x != 0) return;
  Best r = warp_best_s[0];
  for (int i = 1; i < kArgmaxThreads / 32; ++i) {
    if (better(warp_best_s[i], r)) r = warp_best_s[i];
  }
  partial[row * chunks + chunk] = r;
  __threadfence();
  if (atomicAdd(counters + row, 1) != chunks - 1) return;
  counters[row] = 0;  // ready for the next call
  __threadfence();
  Best f{-INFINITY, INT_MAX};
  for (int i = 0; i < chunks; ++i) {
    const Best c{__ldcg(&partial[row * chunks + i].v), __ldcg(&partial[row * chunks + i].id)};
    if (better(c, f)) f = c;
  }
  out[row] = f.id == INT_MAX ? 0 : f.id;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleParams p) {
  __shared__ Shared sh;
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.x;
  const SampleRow rp = p.rows[r];
  const int64_t vocab = p.vocab;
  const float* x = p.logits + r * vocab;

  // ---- 1-5: processing ------------------------------------------------------------------------
  if (rp.flags & kSampleProcess) {
    float* w = p.scratch + r * vocab;
    for (int64_t t = threadIdx.x; t < vocab; t += kThreads) w[t] = x[t];
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int i = rp.bias_begin; i < rp.bias_end; ++i) {
        w[p.list_ids[i]] = __fadd_rn(w[p.list_ids[i]], p.list_vals[i]);
      }
      for (int i = rp.ban_begin; i < rp.ban_end; ++i) w[p.list_ids[i]] = -INFINITY;
    }
    __syncthreads();
    const float rep = rp.repetition_penalty;
    for (int i = rp.rep_begin + threadIdx.x; i < rp.rep_end; i += kThreads) {
      const int t = p.list_ids[i];
      w[t] = w[t] > 0.f ? __fdiv_rn(w[t], rep) : __fmul_rn(w[t], rep);
    }
    __syncthreads();
    for (int i = rp.freq_begin + threadIdx.x; i < rp.freq_end; i += kThreads) {
      const int t = p.list_ids[i];
      const float pen =
          __fadd_rn(__fmul_rn(rp.frequency_penalty, p.list_vals[i]), rp.presence_penalty);
      w[t] = __fsub_rn(w[t], pen);
    }
    __syncthreads();
    if (!(rp.flags & kSampleGreedy) && rp.temperature != 1.f) {
      for (int64_t t = threadIdx.x; t < vocab; t += kThreads)
        w[t] = __fdiv_rn(w[t], rp.temperature);
    }
    __syncthreads();
    x = w;
  }

  // ---- 6-9: selection -----------------------------------------------------------------------
  int32_t token = -1;
  if (rp.flags & kSampleGreedy) {
    token = argmax_row(x, vocab, sh).id;
  } else {
    float thr = -INFINITY;
    if (rp.top_k > 0 && rp.top_k < vocab) thr = kth_largest(x, vocab, rp.top_k, sh);
    const bool use_top_p = rp.top_p < 1.f;
    const bool use_min_p = rp.min_p > 0.f;
    float max_v = -INFINITY;
    unsigned vstar = 0;  // top_p: keep keys > vstar, and ties with id <= tie_id
    int32_t tie_id = INT_MAX;
    if (use_top_p || use_min_p) {
      float mv = -INFINITY;
      for (int64_t t = threadIdx.x; t < vocab; t += kThreads) {
        const float v = x[t];
        if (v >= thr && v != -INFINITY) mv = fmaxf(mv, v);
      }
      max_v = block_best(Best{mv, mv == -INFINITY ? INT_MAX : 0}, sh).v;
    }
    if (use_top_p && max_v != -INFINITY) {
      double part = 0.0;
      for (int64_t t = threadIdx.x; t < vocab; t += kThreads) {
        const float v = x[t];
        if (v >= thr && v != -INFINITY) part += exp(static_cast<double>(v) - max_v);
      }
      const double total = block_dsum(part, sh);
      const double target = static_cast<double>(rp.top_p) * total;
      unsigned prefix = 0, mask = 0;
      double cum = 0.0;
      bool keep_all_ties = false;
      for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += kThreads) {
          sh.cnt[i] = 0;
          sh.mass[i] = 0.0;
        }
        __syncthreads();
        for (int64_t t = threadIdx.x; t < padded(vocab); t += kThreads) {
          const float v = t < vocab ? x[t] : -INFINITY;
          const bool surv = v >= thr && v != -INFINITY;
          const unsigned key = fkey(v);
          const bool in = surv && (key & mask) == prefix;
          hist_add(in, (key >> shift) & 255u, in ? exp(static_cast<double>(v) - max_v) : 0.0, sh,
                   true);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
          int chosen = -1, lowest = -1;
          double c = cum;
          for (int d = 255; d >= 0; --d) {
            if (sh.cnt[d] == 0) continue;
            lowest = d;
            if (c + sh.mass[d] >= target) {
              chosen = d;
              break;
            }
            c += sh.mass[d];
          }
          if (chosen < 0) {  // the sum never reaches the target (rounding): keep this whole bin
            chosen = lowest;
            sh.remaining = 1;
          } else {
            sh.remaining = 0;
          }
          sh.digit = chosen;
          sh.cum = c;
        }
        __syncthreads();
        if (sh.remaining) keep_all_ties = true;
        if (keep_all_ties) {
          // Everything from this bin down is kept: the threshold is the bin's smallest key.
          prefix |= static_cast<unsigned>(sh.digit) << shift;
          __syncthreads();
          break;
        }
        prefix |= static_cast<unsigned>(sh.digit) << shift;
        mask |= 255u << shift;
        cum = sh.cum;
        __syncthreads();
      }
      if (keep_all_ties) {
        // prefix is the smallest key of the kept bin: keep every key >= prefix.
        vstar = prefix;
        tie_id = INT_MAX;
      } else {
        vstar = prefix;
        // Ties at vstar: how many (by ascending id) the sequential sum needs.
        const int n_tie = static_cast<int>(sh.cnt[prefix & 255u]);
        if (threadIdx.x == 0) {
          const double e = exp(static_cast<double>(from_key(vstar)) - max_v);
          double c = cum;
          int need = n_tie;
          for (int i = 1; i <= n_tie; ++i) {
            c += e;
            if (c >= target) {
              need = i;
              break;
            }
          }
          sh.remaining = need;
        }
        __syncthreads();
        const int need = sh.remaining;
        // The id of the need-th tie: count ties per contiguous id range, scan, find it.
        const int64_t per = (vocab + kThreads - 1) / kThreads;
        const int64_t t0 = threadIdx.x * per;
        const int64_t t1 = min(vocab, t0 + per);
        int mine = 0;
        for (int64_t t = t0; t < t1; ++t) {
          const float v = x[t];
          mine += (v >= thr && v != -INFINITY && fkey(v) == vstar) ? 1 : 0;
        }
        // Exclusive scan over threads (warp scan + warp totals).
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        int incl = mine;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
          const int y = __shfl_up_sync(kFull, incl, o);
          if (lane >= o) incl += y;
        }
        if (lane == 31) sh.scan[warp] = incl;
        __syncthreads();
        if (threadIdx.x == 0) {
          int acc = 0;
          for (int i = 0; i < kWarps; ++i) {
            const int s = sh.scan[i];
            sh.scan[i] = acc;
            acc += s;
          }
          sh.tie_id = INT_MAX;
        }
        __syncthreads();
        const int before = sh.scan[warp] + incl - mine;
        if (mine > 0 && before < need && before + mine >= need) {
          int seen = before;
          for (int64_t t = t0; t < t1; ++t) {
            const float v = x[t];
            if (v >= thr && v != -INFINITY && fkey(v) == vstar && ++seen == need) {
              sh.tie_id = static_cast<int32_t>(t);
              break;
            }
          }
        }
        __syncthreads();
        tie_id = sh.tie_id;
      }
    }
    // Exponential race over the kept tokens.
    Best b{-INFINITY, INT_MAX};
    for (int64_t base = static_cast<int64_t>(threadIdx.x) * 4; base < vocab;
         base += static_cast<int64_t>(kThreads) * 4) {
      const Philox4x32Counter bits =
          sampling_block_bits(rp.seed, rp.step, static_cast<uint32_t>(base >> 2));
#pragma unroll
      for (int lane4 = 0; lane4 < 4; ++lane4) {
        const int64_t t = base + lane4;
        if (t >= vocab) break;
        const float v = x[t];
        if (!(v >= thr) || v == -INFINITY) continue;
        if (use_top_p) {
          const unsigned key = fkey(v);
          if (key < vstar || (key == vstar && t > tie_id)) continue;
        }
        if (use_min_p) {
          const float pr = static_cast<float>(exp(static_cast<double>(__fsub_rn(v, max_v))));
          if (pr < rp.min_p) continue;
        }
        const float score = __fadd_rn(v, race_key_dev(uniform_open01(bits.v[lane4])));
        const Best c{score, static_cast<int32_t>(t)};
        if (better(c, b)) b = c;
      }
    }
    b = block_best(b, sh);
    token = b.id == INT_MAX ? argmax_row(x, vocab, sh).id : b.id;
  }
  if (threadIdx.x == 0) p.out_tokens[r] = token;

  // ---- logprobs -------------------------------------------------------------------------------
  if (!p.want_logprobs) return;
  float* top_lp = p.out_top_logprobs + static_cast<int64_t>(r) * p.max_top;
  int32_t* top_id = p.out_top_ids + static_cast<int64_t>(r) * p.max_top;
  if (rp.num_logprobs < 0) {
    if (threadIdx.x == 0) {
      p.out_logprobs[r] = 0.f;
      p.out_ranks[r] = 0;
    }
    for (int i = threadIdx.x; i < p.max_top; i += kThreads) {
      top_id[i] = -1;
      top_lp[i] = -INFINITY;
    }
    return;
  }
  float mv = -INFINITY;
  for (int64_t t = threadIdx.x; t < vocab; t += kThreads) mv = fmaxf(mv, x[t]);
  const float max_all = block_best(Best{mv, 0}, sh).v;
  double lse = -INFINITY;
  {
    double part = 0.0;
    if (max_all != -INFINITY) {
      for (int64_t t = threadIdx.x; t < vocab; t += kThreads) {
        part += exp(static_cast<double>(x[t]) - max_all);
      }
    }
    const double sum = block_dsum(part, sh);
    if (max_all != -INFINITY) lse = max_all + log(sum);
  }
  const float chosen = x[token];
  int greater = 0;
  for (int64_t t = threadIdx.x; t < vocab; t += kThreads) greater += x[t] > chosen ? 1 : 0;
  greater = block_isum(greater, sh);
  if (threadIdx.x == 0) {
    p.out_logprobs[r] = static_cast<float>(static_cast<double>(chosen) - lse);
    p.out_ranks[r] = greater + 1;
  }
  // Top entries by (value desc, id asc): repeated selection after the previous pick.
  Best prev{INFINITY, -1};
  for (int i = 0; i < p.max_top; ++i) {
    Best b{-INFINITY, INT_MAX};
    if (i < rp.num_logprobs) {
      for (int64_t t = threadIdx.x; t < vocab; t += kThreads) {
        const float v = x[t];
        if (isnan(v)) continue;
        const bool after = v < prev.v || (v == prev.v && t > prev.id);
        if (!after) continue;
        const Best c{v, static_cast<int32_t>(t)};
        if (better(c, b)) b = c;
      }
    }
    b = block_best(b, sh);
    if (threadIdx.x == 0) {
      top_id[i] = b.id == INT_MAX ? -1 : b.id;
      top_lp[i] = b.id == INT_MAX ? -INFINITY : static_cast<float>(static_cast<double>(b.v) - lse);
    }
    if (b.id != INT_MAX) prev = b;
  }
}

}  // namespace

void sample_rows(const SampleParams& p, const DeviceContext& dev, cudaStream_t stream) {
  if (p.num_rows == 0) return;
  launch(sample_kernel, dim3(p.num_rows), dim3(kThreads), 0, dev, stream, p);
}

size_t argmax_workspace_bytes(int max_rows) {
  return static_cast<size_t>(max_rows) * (kArgmaxChunks * sizeof(Best) + sizeof(int32_t));
}

void argmax_rows(const float* logits, int64_t vocab, int num_rows, int32_t* out, void* workspace,
                 int max_rows, const DeviceContext& dev, cudaStream_t stream) {
  if (num_rows == 0) return;
  const int chunks = static_cast<int>(std::min<int64_t>(kArgmaxChunks, (vocab + 1023) / 1024));
  Best* partial = static_cast<Best*>(workspace);
  int32_t* counters =
      reinterpret_cast<int32_t*>(partial + static_cast<size_t>(max_rows) * kArgmaxChunks);
  launch(argmax_kernel, dim3(chunks, num_rows), dim3(kArgmaxThreads), 0, dev, stream, logits, vocab,
         out, partial, counters);
}

}  // namespace kite::cuda
