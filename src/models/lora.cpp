#include "models/lora.h"

#include <algorithm>
#include <map>

#include "models/weights.h"

namespace hearth::models {

namespace {

namespace lf = lora_format;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Result<std::vector<std::string>> lora_target_names(const Model& model, ThreadPool& pool,
                                                   const std::vector<std::string>& targets) {
  std::vector<std::string> suffixes, whole;  // ".attn_q.weight" in every layer; "output.weight"
  bool embd = false;
  for (const std::string& t : targets) {
    const char* tensor = lora_target_tensor(t);
    if (!tensor)
      return invalid_argument("[lora] unknown target '" + t +
                              "' (q, k, v, o, gate, up, down, output, token_embd)");
    if (std::string_view(tensor) == lf::kTokenEmbd)
      embd = true;
    else if (t == "output")
      whole.emplace_back(tensor);
    else
      suffixes.push_back("." + std::string(tensor));
  }
  std::vector<std::string> names;
  for (const ops::WeightMatrix* W : model.matrices(pool)) {
    const std::string_view n = W->name();
    bool hit = std::find(whole.begin(), whole.end(), n) != whole.end();
    for (const std::string& sfx : suffixes) hit |= n.starts_with("blk.") && ends_with(n, sfx);
    if (hit) names.emplace_back(n);
  }
  if (embd) names.emplace_back(lf::kTokenEmbd);
  if (names.empty()) return invalid_argument("[lora] the model has none of the target matrices");
  return names;
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::load(const std::string& path,
                                                             const Model& model, ThreadPool& pool) {
  // Raw layout: an adapter is never in Ollama's library layout, and its names must stay as written.
  HEARTH_ASSIGN_OR_RETURN(auto f, gguf::GgufFile::open(path, gguf::Layout::kRaw));
  return bind(std::move(f), model, pool);
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::bind(std::shared_ptr<gguf::GgufFile> f,
                                                             const Model& model, ThreadPool& pool) {
  HEARTH_ASSIGN_OR_RETURN(std::vector<LoraPairInfo> infos, check_lora_file(*f, model.file()));
  const std::string where = "[lora] adapter " + f->name() + ": ";
  auto ad = std::shared_ptr<LoraAdapter>(new LoraAdapter());
  ad->file_ = f;
  ad->path_ = f->name();
  ad->alpha_ = float(*f->get_float_or(lf::kKeyAlpha, 0.0));
  auto nm = f->get_string(lf::kKeyName);
  ad->name_ = nm ? *nm : f->name();

  std::unordered_map<std::string_view, const ops::WeightMatrix*> by_name;
  for (const ops::WeightMatrix* W : model.matrices(pool))
    if (!W->name().empty()) by_name.emplace(W->name(), W);

  ad->pairs_.reserve(infos.size());
  std::vector<const ops::WeightMatrix*> targets;
  for (const LoraPairInfo& in : infos) {
    if (in.base == lf::kTokenEmbd) {
      EmbdPair& e = ad->embd_;
      e.a = in.a;
      e.b = in.b;
      e.rank = in.rank;
      e.factor = lora_scale(1.0f, ad->alpha_, in.rank);
      continue;
    }
    auto wit = by_name.find(in.base);
    if (wit == by_name.end())
      return unsupported(where + "tensor '" + in.base +
                         "' is not a matrix hearth can adapt (adapters apply to the attention, "
                         "feed-forward and output matrices and to token_embd)");
    const ops::WeightMatrix* W = wit->second;
    const std::string an = in.base + lf::kSuffixA, bn = in.base + lf::kSuffixB;
    Pair p;
    p.base = in.base;
    p.rank = in.rank;
    p.factor = lora_scale(1.0f, ad->alpha_, in.rank);
    HEARTH_ASSIGN_OR_RETURN(p.a, ops::WeightMatrix::make(an.c_str(), in.a->type, in.rank, W->n_in(),
                                                         in.a->data, in.a->nbytes));
    HEARTH_ASSIGN_OR_RETURN(p.b, ops::WeightMatrix::make(bn.c_str(), in.b->type, W->n_out(),
                                                         in.rank, in.b->data, in.b->nbytes));
    ad->max_n_in_ = std::max(ad->max_n_in_, W->n_in());
    ad->max_n_out_ = std::max(ad->max_n_out_, W->n_out());
    ad->max_rank_ = std::max(ad->max_rank_, in.rank);
    ad->pairs_.push_back(std::move(p));
    targets.push_back(W);
  }
  for (size_t i = 0; i < targets.size(); ++i) ad->by_weight_.emplace(targets[i], i);
  if (ad->embd_.a) {
    // Small (n_vocab x rank): kept as F32 so a token's update needs no scratch.
    const EmbdPair& e = ad->embd_;
    ad->embd_a_.resize(size_t(e.a->n_elements));
    ad->embd_b_.resize(size_t(e.b->n_elements));
    for (int64_t r = 0; r < e.a->shape[0]; ++r)
      dequantize_row_of(*e.a, r, ad->embd_a_.data() + r * e.rank);
    for (int64_t r = 0; r < e.b->shape[0]; ++r)
      dequantize_row_of(*e.b, r, ad->embd_b_.data() + r * e.rank);
  }
  return std::shared_ptr<const LoraAdapter>(std::move(ad));
}

void lora_reference(const LoraAdapter::Pair& p, float scale, const float* x, int64_t M, float* y,
                    size_t ldy) {
  const int64_t n_in = p.a.n_in(), n_out = p.b.n_out(), R = p.rank;
  std::vector<float> a(size_t(R * n_in)), b(size_t(n_out * R));
  const TypeTraits& ta = type_traits(p.a.type());
  const TypeTraits& tb = type_traits(p.b.type());
  for (int64_t r = 0; r < R; ++r) ta.dequantize_row(p.a.row(r), a.data() + r * n_in, n_in);
  for (int64_t o = 0; o < n_out; ++o) tb.dequantize_row(p.b.row(o), b.data() + o * R, R);
  const float s = scale * p.factor;
  std::vector<double> t(static_cast<size_t>(R));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t r = 0; r < R; ++r) {
      double acc = 0;
      for (int64_t i = 0; i < n_in; ++i) acc += double(a[size_t(r * n_in + i)]) * x[m * n_in + i];
      t[size_t(r)] = acc;
    }
    for (int64_t o = 0; o < n_out; ++o) {
      double acc = 0;
      for (int64_t r = 0; r < R; ++r) acc += double(b[size_t(o * R + r)]) * t[size_t(r)];
      y[size_t(m) * ldy + size_t(o)] += float(s * acc);
    }
  }
}

Result<bool> LoraRunner::begin(const LoraBatch& lb, std::span<const BatchToken> batch,
                               const std::vector<int64_t>& out_rows, int n_seq, int n_batch) {
  n_active_ = 0;
  batch_ = batch;
  lb_ = lb;
  T_ = int64_t(batch.size());
  n_head_ = int64_t(out_rows.size());
  const size_t n = lb.adapters.size();
  if (n == 0) return false;
  if (lb.scales.size() < size_t(n_seq) * n)
    return invalid_argument("[lora] " + std::to_string(lb.scales.size()) + " adapter scales for " +
                            std::to_string(n_seq) + " sequences and " + std::to_string(n) +
                            " adapters");
  if (active_.size() < n) {
    active_.resize(n);  // grows once per larger adapter count
    for (Active& a : active_) {
      a.rows.reserve(size_t(n_batch));
      a.head_rows.reserve(size_t(n_batch));
      a.scales.reserve(size_t(n_batch));
      a.head_scales.reserve(size_t(n_batch));
    }
  }
  int64_t n_in = 0, n_out = 0, rank = 0;
  size_t act = 0;
  for (size_t i = 0; i < n; ++i) {
    const LoraAdapter* ad = lb.adapters[i];
    if (!ad) continue;
    Active& a = active_[n_active_];
    a.rows.clear();
    a.scales.clear();
    a.head_rows.clear();
    a.head_scales.clear();
    for (int64_t t = 0; t < T_; ++t) {
      const float s = lb.scales[size_t(batch[size_t(t)].seq) * n + i];
      if (s == 0) continue;
      a.rows.push_back(t);
      a.scales.push_back(s);
    }
    if (a.rows.empty()) continue;
    for (int64_t j = 0; j < n_head_; ++j) {
      const float s = lb.scales[size_t(batch[size_t(out_rows[size_t(j)])].seq) * n + i];
      if (s == 0) continue;
      a.head_rows.push_back(j);
      a.head_scales.push_back(s);
    }
    a.all_rows = int64_t(a.rows.size()) == T_;
    a.all_head = int64_t(a.head_rows.size()) == n_head_;
    a.ad = ad;
    a.index = i;
    ++n_active_;
    n_in = std::max(n_in, ad->max_n_in());
    n_out = std::max(n_out, ad->max_n_out());
    rank = std::max(rank, ad->max_rank());
    for (const auto& p : ad->pairs()) {
      act = std::max(act, ops::activation_bytes(p.a.type(), p.a.n_in(), n_batch));
      act = std::max(act, ops::activation_bytes(p.b.type(), p.b.n_in(), n_batch));
    }
  }
  if (n_active_ == 0) return false;
  // The update rows go through d_ in chunks: a batch's worth of the usual widths, at least one
  // row of the widest (the vocabulary, for an adapted output head).
  const int64_t B = n_batch;
  xg_.need(size_t(B * n_in));
  t_.need(size_t(B * rank));
  d_.need(size_t(std::max(std::min(n_out, int64_t(16384)) * B, n_out)));
  ms_.reserve(act);
  return true;
}

void LoraRunner::after(ThreadPool& pool, int ith, int nth, const ops::WeightMatrix& W,
                       const float* X, int64_t M, float* Y, size_t ldy) {
  // Adapted matrices see either every row of the batch or the output head's rows; nothing else
  // (a classifier's pooled rows, single experts) is ever adapted.
  const bool head = M != T_;
  if (head && M != n_head_) return;
  for (size_t k = 0; k < n_active_; ++k) {
    Active& a = active_[k];
    const LoraAdapter::Pair* p = a.ad->find(&W);
    if (!p) continue;
    if (head)
      apply(pool, ith, nth, *p, X, Y, ldy, a.head_rows, a.head_scales, a.all_head);
    else
      apply(pool, ith, nth, *p, X, Y, ldy, a.rows, a.scales, a.all_rows);
  }
}

namespace {

// Decode: at most this many rows take the direct path (two barriers instead of the kernels' five).
constexpr int64_t kDirectRows = 4;
constexpr int64_t kDirectPiece = 256;  // A rows are dequantized this many elements at a time
constexpr int64_t kDirectRank = 1024;  // B rows (rank floats) are dequantized whole

// Eight running sums (vectorizable without reassociating a single sum).
float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int l = 0; l < 8; ++l) s += acc[l];
  return s;
}

bool direct_ok(const LoraAdapter::Pair& p) {
  const TypeTraits& ta = type_traits(p.a.type());
  return p.rank <= kDirectRank && kDirectPiece % ta.block_elems == 0;
}

}  // namespace

// A few rows (decode): t = A·x split by rank rows, then y += s·B·t split by outputs, each thread
// dequantizing the rows it reads into stack buffers; two barriers in all.
void LoraRunner::apply_direct(ThreadPool& pool, int ith, int nth, const LoraAdapter::Pair& p,
                              const float* X, float* Y, size_t ldy, std::span<const int64_t> rows,
                              std::span<const float> scales) {
  const int64_t n = int64_t(rows.size());
  const int64_t n_in = p.a.n_in(), n_out = p.b.n_out(), R = p.rank;
  const TypeTraits& ta = type_traits(p.a.type());
  const TypeTraits& tb = type_traits(p.b.type());
  float* t = t_.at(size_t(n * R));
  // F32 halves are read in place (no copy per token).
  const bool a_f32 = p.a.type() == DType::F32, b_f32 = p.b.type() == DType::F32;
  float piece[kDirectPiece];
  int64_t rb, re;
  ThreadPool::split(R, ith, nth, rb, re);
  for (int64_t r = rb; r < re; ++r) {
    float acc[kDirectRows] = {0, 0, 0, 0};
    const uint8_t* arow = p.a.row(r);
    for (int64_t e0 = 0; e0 < n_in; e0 += kDirectPiece) {
      const int64_t k = std::min(kDirectPiece, n_in - e0);
      const float* a = a_f32 ? reinterpret_cast<const float*>(arow) + e0 : piece;
      if (!a_f32)
        ta.dequantize_row(arow + size_t(e0 / ta.block_elems) * size_t(ta.block_bytes), piece, k);
      for (int64_t i = 0; i < n; ++i) acc[i] += dot(a, X + rows[size_t(i)] * n_in + e0, k);
    }
    for (int64_t i = 0; i < n; ++i) t[i * R + r] = acc[i];
  }
  pool.barrier();
  float brow[kDirectRank];
  int64_t ob, oe;
  ThreadPool::split(n_out, ith, nth, ob, oe);
  for (int64_t o = ob; o < oe; ++o) {
    const float* b = b_f32 ? reinterpret_cast<const float*>(p.b.row(o)) : brow;
    if (!b_f32) tb.dequantize_row(p.b.row(o), brow, R);
    for (int64_t i = 0; i < n; ++i)
      Y[size_t(rows[size_t(i)]) * ldy + size_t(o)] +=
          scales[size_t(i)] * p.factor * dot(b, t + i * R, R);
  }
  pool.barrier();
}

void LoraRunner::apply(ThreadPool& pool, int ith, int nth, const LoraAdapter::Pair& p,
                       const float* X, float* Y, size_t ldy, std::span<const int64_t> rows,
                       std::span<const float> scales, bool all) {
  const int64_t n = int64_t(rows.size());
  if (n == 0) return;
  if (n <= kDirectRows && direct_ok(p))
    return apply_direct(pool, ith, nth, p, X, Y, ldy, rows, scales);
  const int64_t n_in = p.a.n_in(), n_out = p.b.n_out(), R = p.rank;
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(n, int64_t(d_.size()) / n_out));
  int64_t ib, ie, ob, oe;
  ThreadPool::split(n_in, ith, nth, ib, ie);
  ThreadPool::split(n_out, ith, nth, ob, oe);
  for (int64_t c0 = 0; c0 < n; c0 += chunk) {
    const int64_t c = std::min(chunk, n - c0);
    const float* xc = X + c0 * n_in;
    if (!all) {  // gather the rows that use this adapter (each thread a column range)
      float* xg = xg_.at(size_t(c * n_in));
      for (int64_t i = 0; i < c; ++i)
        std::copy(X + rows[size_t(c0 + i)] * n_in + ib, X + rows[size_t(c0 + i)] * n_in + ie,
                  xg + i * n_in + ib);
      pool.barrier();
      xc = xg;
    }
    float* t = t_.at(size_t(c * R));
    float* d = d_.at(size_t(c * n_out));
    ops::matmul_in_run(pool, ith, nth, p.a, xc, c, t, size_t(R), ms_);
    ops::matmul_in_run(pool, ith, nth, p.b, t, c, d, size_t(n_out), ms_);
    // y += (scale · d), as llama.cpp: ggml_scale then ggml_add.
    for (int64_t i = 0; i < c; ++i) {
      float* y = Y + size_t(rows[size_t(c0 + i)]) * ldy;
      const float s = scales[size_t(c0 + i)] * p.factor;
      const float* di = d + i * n_out;
      for (int64_t o = ob; o < oe; ++o) y[o] += s * di[o];
    }
    pool.barrier();
  }
}

void LoraRunner::embed(const Step& s, float* x, int64_t n_embd, float mul) const {
  const size_t n = lb_.adapters.size();
  for (size_t k = 0; k < n_active_; ++k) {
    const Active& a = active_[k];
    const LoraAdapter::EmbdPair* e = a.ad->embd();
    if (!e) continue;
    const int64_t R = e->rank;
    const float* A = a.ad->embd_a();
    const float* B = a.ad->embd_b();
    for (int64_t t = s.tb; t < s.te; ++t) {
      const BatchToken& bt = batch_[size_t(t)];
      const float us = lb_.scales[size_t(bt.seq) * n + a.index];
      if (us == 0) continue;
      const float sc = us * e->factor * mul;
      const float* ar = A + int64_t(bt.token) * R;
      float* row = x + t * n_embd;
      for (int64_t o = 0; o < n_embd; ++o) {
        float acc = 0;
        for (int64_t r = 0; r < R; ++r) acc += B[o * R + r] * ar[r];
        row[o] += sc * acc;
      }
    }
  }
}

}  // namespace hearth::models
