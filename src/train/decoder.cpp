#include "train/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gguf/gguf.h"
#include "gguf/lora_format.h"
#include "models/config.h"
#include "models/weights.h"
#include "train/gemm.h"

namespace hearth::train {
namespace {

// rows of x (each bias.size() wide) += bias; no-op for an empty bias. A frozen bias changes no
// gradient, so the backward pass has nothing to do for it.
void add_bias_rows(float* x, const std::vector<float>& bias, int64_t rows) {
  const size_t n = bias.size();
  for (int64_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) x[size_t(r) * n + i] += bias[i];
}

}  // namespace

Status DecoderConfig::validate() const {
  if (n_vocab <= 0 || n_embd <= 0 || n_layer <= 0 || n_head <= 0 || n_head_kv <= 0 ||
      head_dim <= 0 || n_ff <= 0 || n_ctx <= 0)
    return invalid_argument("[train] every model dimension must be positive");
  if (n_head % n_head_kv != 0)
    return invalid_argument("[train] n_head must be a multiple of n_head_kv");
  if (head_dim % 2 != 0) return invalid_argument("[train] head_dim must be even (RoPE pairs)");
  return Status::ok();
}

Result<std::unique_ptr<Decoder>> Decoder::create(const DecoderConfig& cfg, uint64_t seed) {
  HEARTH_RETURN_IF_ERROR(cfg.validate());
  std::unique_ptr<Decoder> m(new Decoder());
  m->cfg_ = cfg;
  auto& st = m->store_;
  const int64_t d = cfg.n_embd, qd = cfg.n_head * cfg.head_dim, kd = cfg.n_head_kv * cfg.head_dim;
  m->tok_embd_ = st.add("token_embd.weight", {cfg.n_vocab, d}, false);
  struct Mat {
    size_t idx;
    int64_t rows, cols;
    bool residual;  // projects into the residual stream (scaled-down init)
  };
  std::vector<std::vector<Mat>> mats(size_t(cfg.n_layer));
  m->layers_.resize(size_t(cfg.n_layer));
  for (int64_t il = 0; il < cfg.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    auto& L = m->layers_[size_t(il)];
    L.attn_norm = st.add(p + "attn_norm.weight", {d}, false);
    auto& ms = mats[size_t(il)];
    ms.push_back({st.add(p + "attn_q.weight", {qd, d}, true), qd, d, false});
    ms.push_back({st.add(p + "attn_k.weight", {kd, d}, true), kd, d, false});
    ms.push_back({st.add(p + "attn_v.weight", {kd, d}, true), kd, d, false});
    ms.push_back({st.add(p + "attn_output.weight", {d, qd}, true), d, qd, true});
    L.ffn_norm = st.add(p + "ffn_norm.weight", {d}, false);
    ms.push_back({st.add(p + "ffn_gate.weight", {cfg.n_ff, d}, true), cfg.n_ff, d, false});
    ms.push_back({st.add(p + "ffn_up.weight", {cfg.n_ff, d}, true), cfg.n_ff, d, false});
    ms.push_back({st.add(p + "ffn_down.weight", {d, cfg.n_ff}, true), d, cfg.n_ff, true});
  }
  m->out_norm_ = st.add("output_norm.weight", {d}, false);
  m->output_ = cfg.tied_output ? m->tok_embd_ : st.add("output.weight", {cfg.n_vocab, d}, true);
  st.finalize();

  // GPT-2 style initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2·n_layer).
  Rng rng(seed);
  auto fill = [&](size_t idx, double sd) {
    float* p = st.value(idx);
    for (size_t i = 0; i < st.info(idx).count; ++i) p[i] = float(rng.normal() * sd);
  };
  fill(m->tok_embd_, 0.02);
  const double res_sd = 0.02 / std::sqrt(2.0 * double(cfg.n_layer));
  for (int64_t il = 0; il < cfg.n_layer; ++il) {
    auto& L = m->layers_[size_t(il)];
    std::fill_n(st.value(L.attn_norm), d, 1.0f);
    std::fill_n(st.value(L.ffn_norm), d, 1.0f);
    auto& ms = mats[size_t(il)];
    for (const Mat& x : ms) fill(x.idx, x.residual ? res_sd : 0.02);
    L.wq = std::make_unique<DenseLinear>(st, ms[0].idx, ms[0].rows, ms[0].cols);
    L.wk = std::make_unique<DenseLinear>(st, ms[1].idx, ms[1].rows, ms[1].cols);
    L.wv = std::make_unique<DenseLinear>(st, ms[2].idx, ms[2].rows, ms[2].cols);
    L.wo = std::make_unique<DenseLinear>(st, ms[3].idx, ms[3].rows, ms[3].cols);
    L.wg = std::make_unique<DenseLinear>(st, ms[4].idx, ms[4].rows, ms[4].cols);
    L.wu = std::make_unique<DenseLinear>(st, ms[5].idx, ms[5].rows, ms[5].cols);
    L.wd = std::make_unique<DenseLinear>(st, ms[6].idx, ms[6].rows, ms[6].cols);
  }
  std::fill_n(st.value(m->out_norm_), d, 1.0f);
  if (!cfg.tied_output) fill(m->output_, 0.02);
  m->head_ = std::make_unique<DenseLinear>(st, m->output_, cfg.n_vocab, d);

  ops::RopeParams rp;
  rp.mode = cfg.rope_mode;
  rp.n_rot = int(cfg.head_dim);
  rp.freq_base = cfg.rope_base;
  m->rope_.params = rp;
  return m;
}

Result<std::unique_ptr<Decoder>> Decoder::with_lora(std::shared_ptr<gguf::GgufFile> f,
                                                    ThreadPool& pool, const LoraOptions& lo) {
  HEARTH_ASSIGN_OR_RETURN(std::string arch, f->get_string("general.architecture"));
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3")
    return unsupported("[train] fine-tuning supports llama, qwen2 and qwen3 bases; this one is " +
                       arch);
  HEARTH_ASSIGN_OR_RETURN(
      models::ModelConfig mc,
      models::read_common_config(*f, arch,
                                 arch == "llama" ? ops::RopeMode::kNorm : ops::RopeMode::kNeox));
  if (lo.rank <= 0 || lo.rank > 4096) return invalid_argument("[train] LoRA rank must be 1..4096");
  for (const auto& t : lo.targets)  // the adapter format's names; embeddings stay frozen
    if (!lora::lora_target_tensor(t) || t == "token_embd")
      return invalid_argument("[train] unknown LoRA target '" + t +
                              "' (choose from q, k, v, o, gate, up, down, output)");
  std::unique_ptr<Decoder> m(new Decoder());
  m->base_ = f;
  m->arch_ = arch;
  m->lora_ = lo;
  m->norms_ = &m->frozen_;
  const gguf::TensorInfo* embd = f->find_tensor("token_embd.weight");
  if (!embd || embd->shape.size() != 2 || embd->shape[1] != mc.n_embd)
    return corrupt("[train] the base has no token_embd.weight of width n_embd");
  DecoderConfig& c = m->cfg_;
  c.n_vocab = embd->shape[0];
  c.n_embd = mc.n_embd;
  c.n_layer = mc.n_layer;
  c.n_head = mc.n_head;
  c.n_head_kv = mc.n_head_kv;
  c.head_dim = mc.head_dim;
  c.n_ff = mc.n_ff;
  c.n_ctx = mc.n_ctx_train;
  c.norm_eps = mc.norm_eps;
  c.rope_base = mc.rope.freq_base;
  c.tied_output = f->find_tensor("output.weight") == nullptr;
  if (mc.head_dim_v != mc.head_dim || !mc.n_ff_layers.empty())
    return unsupported(
        "[train] this base's shape (value heads or per-layer FFN sizes) is not "
        "supported for fine-tuning");
  m->frozen_embd_ = embd;
  models::WeightLoader w(*f, pool, false, ops::Placement::kMapped, arch);
  auto has = [&](const char* t) {
    return std::find(lo.targets.begin(), lo.targets.end(), t) != lo.targets.end();
  };
  struct Pending {
    FrozenLinear* lin;
    std::string name;
  };
  std::vector<Pending> adapted;
  auto frozen = [&](const std::string& name, int64_t rows, int64_t cols,
                    const char* target) -> Result<std::unique_ptr<Linear>> {
    HEARTH_ASSIGN_OR_RETURN(ops::WeightMatrix wm, w.matrix(name, rows, cols));
    auto l = std::make_unique<FrozenLinear>(pool, wm, lo.exact_backward);
    if (has(target)) adapted.push_back({l.get(), name});
    return std::unique_ptr<Linear>(std::move(l));
  };
  const int64_t d = c.n_embd, qd = c.n_head * c.head_dim, kd = c.n_head_kv * c.head_dim;
  std::vector<std::pair<size_t, std::vector<float>>> norm_values;
  auto norm = [&](const std::string& name, int64_t n) -> Result<size_t> {
    HEARTH_ASSIGN_OR_RETURN(std::vector<float> v, w.vector(name, n));
    const size_t idx = m->frozen_.add(name, {n}, false);
    norm_values.emplace_back(idx, std::move(v));
    return idx;
  };
  auto bias = [&](const std::string& name, int64_t n, std::vector<float>& out) -> Status {
    HEARTH_ASSIGN_OR_RETURN(auto v, w.optional_vector(name, n));
    if (v) out = std::move(*v);
    return Status::ok();
  };
  m->qk_norm_ = arch == "qwen3";
  m->layers_.resize(size_t(c.n_layer));
  for (int64_t il = 0; il < c.n_layer; ++il) {
    auto& L = m->layers_[size_t(il)];
    const int i = int(il);
    HEARTH_ASSIGN_OR_RETURN(L.attn_norm, norm(models::blk(i, "attn_norm.weight"), d));
    HEARTH_ASSIGN_OR_RETURN(L.wq, frozen(models::blk(i, "attn_q.weight"), qd, d, "q"));
    HEARTH_ASSIGN_OR_RETURN(L.wk, frozen(models::blk(i, "attn_k.weight"), kd, d, "k"));
    HEARTH_ASSIGN_OR_RETURN(L.wv, frozen(models::blk(i, "attn_v.weight"), kd, d, "v"));
    HEARTH_ASSIGN_OR_RETURN(L.wo, frozen(models::blk(i, "attn_output.weight"), d, qd, "o"));
    HEARTH_RETURN_IF_ERROR(bias(models::blk(i, "attn_q.bias"), qd, L.bq));
    HEARTH_RETURN_IF_ERROR(bias(models::blk(i, "attn_k.bias"), kd, L.bk));
    HEARTH_RETURN_IF_ERROR(bias(models::blk(i, "attn_v.bias"), kd, L.bv));
    HEARTH_RETURN_IF_ERROR(bias(models::blk(i, "attn_output.bias"), d, L.bo));
    if (arch == "qwen2" && (L.bq.empty() || L.bk.empty() || L.bv.empty()))
      return corrupt("[train] a qwen2 base needs attn_q/k/v.bias in every layer");
    if (m->qk_norm_) {
      HEARTH_ASSIGN_OR_RETURN(L.q_norm, norm(models::blk(i, "attn_q_norm.weight"), c.head_dim));
      HEARTH_ASSIGN_OR_RETURN(L.k_norm, norm(models::blk(i, "attn_k_norm.weight"), c.head_dim));
    }
    HEARTH_ASSIGN_OR_RETURN(L.ffn_norm, norm(models::blk(i, "ffn_norm.weight"), d));
    HEARTH_ASSIGN_OR_RETURN(L.wg, frozen(models::blk(i, "ffn_gate.weight"), c.n_ff, d, "gate"));
    HEARTH_ASSIGN_OR_RETURN(L.wu, frozen(models::blk(i, "ffn_up.weight"), c.n_ff, d, "up"));
    HEARTH_ASSIGN_OR_RETURN(L.wd, frozen(models::blk(i, "ffn_down.weight"), d, c.n_ff, "down"));
  }
  HEARTH_ASSIGN_OR_RETURN(m->out_norm_, norm("output_norm.weight", d));
  HEARTH_ASSIGN_OR_RETURN(m->head_, frozen(c.tied_output ? "token_embd.weight" : "output.weight",
                                           c.n_vocab, d, "output"));
  if (c.tied_output && has("output"))
    return invalid_argument(
        "[train] the base ties its output to token_embd; LoRA on 'output' "
        "would change the embeddings too");
  m->frozen_.finalize();
  for (auto& [idx, v] : norm_values) std::copy(v.begin(), v.end(), m->frozen_.value(idx));
  // The LoRA matrices: A ~ U(±1/sqrt(n_in)) (as PEFT initialises it), B = 0.
  std::vector<std::pair<size_t, size_t>> ab;
  for (auto& p : adapted) {
    const size_t a = m->store_.add(p.name + lora::kSuffixA, {lo.rank, p.lin->n_in()}, false);
    const size_t b = m->store_.add(p.name + lora::kSuffixB, {p.lin->n_out(), lo.rank}, false);
    ab.emplace_back(a, b);
    m->lora_pairs_.push_back({p.name, a, b});
  }
  m->store_.finalize();
  Rng rng(lo.seed);
  for (size_t i = 0; i < adapted.size(); ++i) {
    FrozenLinear::Lora l{&m->store_, ab[i].first, ab[i].second, lo.rank, lo.alpha / float(lo.rank)};
    const float bound = 1.0f / std::sqrt(float(adapted[i].lin->n_in()));
    float* a = m->store_.value(l.a);
    for (size_t j = 0; j < m->store_.info(l.a).count; ++j)
      a[j] = float((2 * rng.uniform() - 1) * bound);
    adapted[i].lin->set_lora(l);
  }
  ops::RopeParams rp = mc.rope;
  HEARTH_ASSIGN_OR_RETURN(auto freqs, w.optional_vector("rope_freqs.weight", rp.n_rot / 2));
  if (freqs) {
    m->rope_freqs_ = std::move(*freqs);
    rp.freq_factors = m->rope_freqs_.data();
  }
  m->rope_.params = rp;
  return m;
}

Status Decoder::export_adapter(const std::string& path) const {
  if (!base_) return invalid_argument("[train] only a fine-tuned model has an adapter to export");
  lora::LoraFileSpec spec;
  spec.arch = arch_;
  spec.alpha = lora_.alpha;
  for (const LoraPair& p : lora_pairs_) {
    const ParamInfo &a = store_.info(p.a), &b = store_.info(p.b);
    spec.pairs.push_back({p.base, DType::F32, a.shape, b.shape, store_.value(p.a),
                          store_.value(p.b), a.count * sizeof(float), b.count * sizeof(float)});
  }
  return lora::write_lora_adapter(path, spec);
}

void Decoder::params_changed(ThreadPool& pool) {
  for (auto& L : layers_)
    for (Linear* l :
         {L.wq.get(), L.wk.get(), L.wv.get(), L.wo.get(), L.wg.get(), L.wu.get(), L.wd.get()})
      l->refresh(pool);
  head_->refresh(pool);
}

void Decoder::reserve(int64_t n_seq, int64_t n_tok) {
  const int64_t N = n_seq * n_tok;
  if (n_tok != rope_.n_tok) rope_.build(rope_.params, n_tok);
  if (N <= cap_rows_ && n_tok <= cap_tok_) return;
  cap_rows_ = std::max(cap_rows_, N);
  cap_tok_ = std::max(cap_tok_, n_tok);
  const size_t R = size_t(cap_rows_), d = size_t(cfg_.n_embd), ff = size_t(cfg_.n_ff),
               qd = size_t(cfg_.n_head * cfg_.head_dim),
               kd = size_t(cfg_.n_head_kv * cfg_.head_dim), V = size_t(cfg_.n_vocab);
  xs_.resize((size_t(cfg_.n_layer) + 1) * R * d);
  fn_.resize(R * d);
  rinv_out_.resize(R);
  logits_.resize(R * V);
  for (auto* v : {&dx_, &dtmp_, &db_}) v->resize(R * d);
  for (auto* v : {&dh_, &dgt_, &dup_}) v->resize(R * ff);
  do_.resize(R * qd);
  dq_.resize(R * qd);
  dk_.resize(R * kd);
  dv_.resize(R * kd);
  const size_t nh = size_t(cfg_.n_head), nkv = size_t(cfg_.n_head_kv);
  if (qk_norm_) {
    dq_pre_.resize(R * qd);
    dk_pre_.resize(R * kd);
  }
  const size_t qk_extra = qk_norm_ ? R * (qd + kd + nh + nkv) : 0;
  const size_t per_layer = sizeof(float) * (R * (4 * d + 2 * qd + 2 * kd + 3 * ff + 2) + qk_extra +
                                            size_t(cap_rows_) * nh * size_t(cap_tok_));
  saved_.assign(per_layer * size_t(cfg_.n_layer) <= budget_ ? size_t(cfg_.n_layer) : 1, Saved());
  for (Saved& s : saved_) {
    s.a.resize(R * d);
    s.rinv1.resize(R);
    s.q.resize(R * qd);
    s.k.resize(R * kd);
    s.v.resize(R * kd);
    s.o.resize(R * qd);
    s.p.resize(size_t(cap_rows_) * size_t(cfg_.n_head) * size_t(cap_tok_));
    s.x1.resize(R * d);
    s.b.resize(R * d);
    s.rinv2.resize(R);
    s.gt.resize(R * ff);
    s.up.resize(R * ff);
    s.h.resize(R * ff);
    if (qk_norm_) {
      s.q_pre.resize(R * qd);
      s.k_pre.resize(R * kd);
      s.rinv_q.resize(R * nh);
      s.rinv_k.resize(R * nkv);
    }
  }
  size_t xt = 0, dyt = 0, tmp = 0;
  auto grow = [&](const Linear& l) {
    size_t a, b, c;
    l.scratch(cap_rows_, a, b, c);
    xt = std::max(xt, a);
    dyt = std::max(dyt, b);
    tmp = std::max(tmp, c);
  };
  for (auto& L : layers_)
    for (const Linear* l :
         {L.wq.get(), L.wk.get(), L.wv.get(), L.wo.get(), L.wg.get(), L.wu.get(), L.wd.get()})
      grow(*l);
  grow(*head_);
  ws_.reserve(xt, dyt, tmp);
}

void Decoder::layer_forward(ThreadPool& pool, size_t il, const float* x_in, float* x_out,
                            const AttentionShape& as) {
  Layer& L = layers_[il];
  Saved& s_ = saved(il);
  const int64_t N = as.n_seq * as.n_tok, d = cfg_.n_embd;
  rmsnorm_forward(pool, x_in, norms_->value(L.attn_norm), N, d, cfg_.norm_eps, s_.a.data(),
                  s_.rinv1.data());
  const int64_t hd = cfg_.head_dim;
  float* q = qk_norm_ ? s_.q_pre.data() : s_.q.data();
  float* k = qk_norm_ ? s_.k_pre.data() : s_.k.data();
  L.wq->forward(pool, s_.a.data(), N, q, ws_);
  L.wk->forward(pool, s_.a.data(), N, k, ws_);
  L.wv->forward(pool, s_.a.data(), N, s_.v.data(), ws_);
  add_bias_rows(q, L.bq, N);
  add_bias_rows(k, L.bk, N);
  add_bias_rows(s_.v.data(), L.bv, N);
  if (qk_norm_) {
    rmsnorm_forward(pool, q, norms_->value(L.q_norm), N * as.n_head, hd, cfg_.norm_eps, s_.q.data(),
                    s_.rinv_q.data());
    rmsnorm_forward(pool, k, norms_->value(L.k_norm), N * as.n_head_kv, hd, cfg_.norm_eps,
                    s_.k.data(), s_.rinv_k.data());
  }
  rope_rows(pool, rope_, false, s_.q.data(), as.n_seq, as.n_head, as.head_dim);
  rope_rows(pool, rope_, false, s_.k.data(), as.n_seq, as.n_head_kv, as.head_dim);
  attention_forward(pool, as, s_.q.data(), s_.k.data(), s_.v.data(), s_.p.data(), s_.o.data(),
                    attn_tmp_);
  L.wo->forward(pool, s_.o.data(), N, s_.x1.data(), ws_);
  add_bias_rows(s_.x1.data(), L.bo, N);
  add_into(pool, s_.x1.data(), x_in, size_t(N * d));
  rmsnorm_forward(pool, s_.x1.data(), norms_->value(L.ffn_norm), N, d, cfg_.norm_eps, s_.b.data(),
                  s_.rinv2.data());
  L.wg->forward(pool, s_.b.data(), N, s_.gt.data(), ws_);
  L.wu->forward(pool, s_.b.data(), N, s_.up.data(), ws_);
  swiglu_forward(pool, s_.gt.data(), s_.up.data(), N * cfg_.n_ff, s_.h.data());
  L.wd->forward(pool, s_.h.data(), N, x_out, ws_);
  add_into(pool, x_out, s_.x1.data(), size_t(N * d));
}

void Decoder::layer_backward(ThreadPool& pool, size_t il, const float* x_in, float* dx,
                             const AttentionShape& as) {
  Layer& L = layers_[il];
  Saved& s_ = saved(il);
  const int64_t N = as.n_seq * as.n_tok, d = cfg_.n_embd;
  // x_out = x1 + Wd · h: dx flows to x1 unchanged and through the FFN.
  L.wd->backward(pool, s_.h.data(), dx, N, dh_.data(), false, ws_);
  swiglu_backward(pool, s_.gt.data(), s_.up.data(), dh_.data(), N * cfg_.n_ff, dgt_.data(),
                  dup_.data());
  L.wg->backward(pool, s_.b.data(), dgt_.data(), N, db_.data(), false, ws_);
  L.wu->backward(pool, s_.b.data(), dup_.data(), N, db_.data(), true, ws_);
  rmsnorm_backward(pool, s_.x1.data(), norms_->value(L.ffn_norm), s_.rinv2.data(), db_.data(), N, d,
                   dtmp_.data(), norms_->grad(L.ffn_norm));
  add_into(pool, dx, dtmp_.data(), size_t(N * d));  // dx is now ∂L/∂x1
  // x1 = x_in + Wo · attention.
  L.wo->backward(pool, s_.o.data(), dx, N, do_.data(), false, ws_);
  attention_backward(pool, as, s_.q.data(), s_.k.data(), s_.v.data(), s_.p.data(), do_.data(),
                     dq_.data(), dk_.data(), dv_.data(), attn_tmp_);
  rope_rows(pool, rope_, true, dq_.data(), as.n_seq, as.n_head, as.head_dim);
  rope_rows(pool, rope_, true, dk_.data(), as.n_seq, as.n_head_kv, as.head_dim);
  const float* dq = dq_.data();
  const float* dk = dk_.data();
  if (qk_norm_) {  // the norms' own gradients land in frozen_ and are ignored
    rmsnorm_backward(pool, s_.q_pre.data(), norms_->value(L.q_norm), s_.rinv_q.data(), dq,
                     N * as.n_head, as.head_dim, dq_pre_.data(), norms_->grad(L.q_norm));
    rmsnorm_backward(pool, s_.k_pre.data(), norms_->value(L.k_norm), s_.rinv_k.data(), dk,
                     N * as.n_head_kv, as.head_dim, dk_pre_.data(), norms_->grad(L.k_norm));
    dq = dq_pre_.data();
    dk = dk_pre_.data();
  }
  L.wq->backward(pool, s_.a.data(), dq, N, db_.data(), false, ws_);
  L.wk->backward(pool, s_.a.data(), dk, N, db_.data(), true, ws_);
  L.wv->backward(pool, s_.a.data(), dv_.data(), N, db_.data(), true, ws_);
  rmsnorm_backward(pool, x_in, norms_->value(L.attn_norm), s_.rinv1.data(), db_.data(), N, d,
                   dtmp_.data(), norms_->grad(L.attn_norm));
  add_into(pool, dx, dtmp_.data(), size_t(N * d));  // ∂L/∂x_in
}

Result<LossSum> Decoder::run(ThreadPool& pool, const Batch& b, bool backward, float grad_scale,
                             float* logits_out) {
  if (b.n_seq <= 0 || b.n_tok <= 0 || !b.tokens) return invalid_argument("[train] empty batch");
  const int64_t N = b.n_seq * b.n_tok, d = cfg_.n_embd, V = cfg_.n_vocab;
  for (int64_t r = 0; r < N; ++r) {
    if (b.tokens[r] < 0 || b.tokens[r] >= V)
      return invalid_argument("[train] token id " + std::to_string(b.tokens[r]) +
                              " is outside the vocabulary (" + std::to_string(V) + ")");
    if (b.targets && b.targets[r] >= V)
      return invalid_argument("[train] target id " + std::to_string(b.targets[r]) +
                              " is outside the vocabulary");
  }
  reserve(b.n_seq, b.n_tok);
  AttentionShape as;
  as.n_seq = b.n_seq;
  as.n_tok = b.n_tok;
  as.n_head = int(cfg_.n_head);
  as.n_head_kv = int(cfg_.n_head_kv);
  as.head_dim = int(cfg_.head_dim);
  as.scale = 1.0f / std::sqrt(float(cfg_.head_dim));
  const size_t plane = size_t(N) * d;
  auto x_at = [&](size_t l) { return xs_.data() + l * plane; };

  if (frozen_embd_) {
    for (int64_t r = 0; r < N; ++r)
      models::dequantize_row_of(*frozen_embd_, b.tokens[r], x_at(0) + r * d);
  } else {
    const float* E = store_.value(tok_embd_);
    for (int64_t r = 0; r < N; ++r)
      std::memcpy(x_at(0) + r * d, E + size_t(b.tokens[r]) * d, sizeof(float) * size_t(d));
  }
  for (size_t il = 0; il < layers_.size(); ++il)
    layer_forward(pool, il, x_at(il), x_at(il + 1), as);
  const float* xL = x_at(layers_.size());
  rmsnorm_forward(pool, xL, norms_->value(out_norm_), N, d, cfg_.norm_eps, fn_.data(),
                  rinv_out_.data());
  head_->forward(pool, fn_.data(), N, logits_.data(), ws_);
  if (logits_out) std::memcpy(logits_out, logits_.data(), sizeof(float) * size_t(N * V));

  LossSum out;
  if (!b.targets) return out;
  out.loss =
      cross_entropy(pool, logits_.data(), b.targets, b.weights, N, V, grad_scale, &out.weight);
  if (!backward) return out;

  // Head: logits = output · fn.
  head_->backward(pool, fn_.data(), logits_.data(), N, dtmp_.data(), false, ws_);
  rmsnorm_backward(pool, xL, norms_->value(out_norm_), rinv_out_.data(), dtmp_.data(), N, d,
                   dx_.data(), norms_->grad(out_norm_));
  for (size_t il = layers_.size(); il-- > 0;) {
    if (saved_.size() == 1 && layers_.size() > 1)  // checkpointing: recompute this layer
      layer_forward(pool, il, x_at(il), x_at(il + 1), as);
    layer_backward(pool, il, x_at(il), dx_.data(), as);
  }
  if (frozen_embd_) return out;
  float* dE = store_.grad(tok_embd_);
  for (int64_t r = 0; r < N; ++r) {
    float* g = dE + size_t(b.tokens[r]) * d;
    const float* s = dx_.data() + r * d;
    for (int64_t i = 0; i < d; ++i) g[i] += s[i];
  }
  return out;
}

Status Decoder::export_gguf(const std::string& path, const std::string& tokenizer_gguf,
                            const std::string& name, const std::string& chat_template) const {
  HEARTH_ASSIGN_OR_RETURN(auto tok, gguf::GgufFile::open(tokenizer_gguf));
  gguf::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", name);
  w.set_u32("general.file_type", 0);  // all F32
  w.set_u32("llama.context_length", uint32_t(cfg_.n_ctx));
  w.set_u32("llama.embedding_length", uint32_t(cfg_.n_embd));
  w.set_u32("llama.block_count", uint32_t(cfg_.n_layer));
  w.set_u32("llama.feed_forward_length", uint32_t(cfg_.n_ff));
  w.set_u32("llama.attention.head_count", uint32_t(cfg_.n_head));
  w.set_u32("llama.attention.head_count_kv", uint32_t(cfg_.n_head_kv));
  w.set_u32("llama.attention.key_length", uint32_t(cfg_.head_dim));
  w.set_u32("llama.attention.value_length", uint32_t(cfg_.head_dim));
  w.set_u32("llama.rope.dimension_count", uint32_t(cfg_.head_dim));
  w.set_f32("llama.rope.freq_base", cfg_.rope_base);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", cfg_.norm_eps);
  w.set_u32("llama.vocab_size", uint32_t(cfg_.n_vocab));
  int64_t vocab = -1;
  for (const auto& e : tok->metadata()) {
    if (e.key.rfind("tokenizer.", 0) != 0) continue;
    w.copy_value(std::string(e.key), e.value);
  }
  if (!chat_template.empty()) {
    w.remove("tokenizer.chat_template");
    w.set_string("tokenizer.chat_template", chat_template);
  }
  if (auto toks = tok->get_string_array("tokenizer.ggml.tokens"); toks.is_ok())
    vocab = int64_t(toks->size());
  if (vocab != cfg_.n_vocab)
    return invalid_argument("[train] the tokenizer in " + tokenizer_gguf + " has " +
                            std::to_string(vocab) + " tokens; the model has " +
                            std::to_string(cfg_.n_vocab));
  for (const auto& p : store_.infos())
    HEARTH_RETURN_IF_ERROR(w.add_tensor(p.name, DType::F32, p.shape,
                                        store_.values.data() + p.offset, p.count * sizeof(float)));
  return w.write(path);
}

}  // namespace hearth::train
