#include "ops/rope.h"

#include <algorithm>
#include <cmath>

namespace hearth::ops {
namespace {

// Dimension index at which a rotation of `n_rot_turns` full turns over n_ctx_orig happens.
float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot_turns, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot_turns * 2 * float(M_PI))) / (2 * std::log(base));
}

float yarn_ramp(float low, float high, int i0) {
  const float y = (i0 / 2 - low) / std::max(0.001f, high - low);
  return 1 - std::min(1.0f, std::max(0.0f, y));
}

// Interleaved M-RoPE: sector s goes to axis t when s % 3 == 0 and s < 3·sections[0], h when
// s % 3 == 1 and s < 3·sections[1], w when s % 3 == 2 and s < 3·sections[2], else e.
bool text_axis(const int* sec, int s) {
  return (s % 3 == 0 && s < 3 * sec[0]) || (s % 3 == 1 && s < 3 * sec[1]) ||
         (s % 3 == 2 && s < 3 * sec[2]);
}

}  // namespace

void rope_cos_sin(const RopeParams& p, int64_t pos, float* cs) {
  const int n = p.n_rot;
  const float theta_scale = std::pow(p.freq_base, -2.0f / float(n));
  float corr[2] = {0, 0};
  if (p.ext_factor != 0) {
    const float start = std::floor(yarn_corr_dim(n, p.n_ctx_orig, p.beta_fast, p.freq_base));
    const float end = std::ceil(yarn_corr_dim(n, p.n_ctx_orig, p.beta_slow, p.freq_base));
    corr[0] = std::max(0.0f, start);
    corr[1] = std::min(float(n - 1), end);
  }
  float theta = float(pos);
  const int sect = p.sections[0] + p.sections[1] + p.sections[2] + p.sections[3];
  for (int i0 = 0; i0 < n; i0 += 2) {
    if (sect > 0 && !text_axis(p.sections, (i0 / 2) % sect)) {  // axis e: position 0
      cs[i0] = p.attn_factor;
      cs[i0 + 1] = 0;
      theta *= theta_scale;
      continue;
    }
    const float ff = p.freq_factors ? p.freq_factors[i0 / 2] : 1.0f;
    const float theta_extrap = theta / ff;
    const float theta_interp = p.freq_scale * theta_extrap;
    float t = theta_interp;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0) {
      const float mix = yarn_ramp(corr[0], corr[1], i0) * p.ext_factor;
      t = theta_interp * (1 - mix) + theta_extrap * mix;
      mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
    }
    cs[i0] = std::cos(t) * mscale;
    cs[i0 + 1] = std::sin(t) * mscale;
    theta *= theta_scale;
  }
}

void rope_apply(const RopeParams& p, const float* cs, float* x, int n_heads, int head_dim) {
  const int n = p.n_rot;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + size_t(h) * head_dim;
    if (p.mode == RopeMode::kNorm) {
      for (int i0 = 0; i0 < n; i0 += 2) {
        const float c = cs[i0], s = cs[i0 + 1];
        const float x0 = v[i0], x1 = v[i0 + 1];
        v[i0] = x0 * c - x1 * s;
        v[i0 + 1] = x0 * s + x1 * c;
      }
    } else {
      const int half = n / 2;
      for (int i0 = 0; i0 < n; i0 += 2) {
        const float c = cs[i0], s = cs[i0 + 1];
        const float x0 = v[i0 / 2], x1 = v[i0 / 2 + half];
        v[i0 / 2] = x0 * c - x1 * s;
        v[i0 / 2 + half] = x0 * s + x1 * c;
      }
    }
  }
}

}  // namespace hearth::ops
