#include "models/kv_cache_scales.h"

#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <string>

#include "core/dtype.h"

namespace kite {
namespace {

constexpr std::string_view kSupported = "auto, float32, bfloat16, fp8 (= fp8_e4m3)";

// The one value of a scale tensor, checked.
Result<float> scale_value(const std::string& name, const TensorView& t) {
  if (t.numel() != 1 || t.ndim > 1) {
    return invalid_argument(fmt::format(
        "KV cache scale {} must hold one value (shape [] or [1]), got {}", name, t.to_string()));
  }
  float x = 0;
  switch (t.dtype) {
    case DType::kF32:
      x = *t.as<const float>();
      break;
    case DType::kBF16:
      x = bf16_to_f32(*t.as<const bf16_t>());
      break;
    case DType::kF16:
      x = f16_to_f32(*t.as<const f16_t>());
      break;
    default:
      return invalid_argument(
          fmt::format("KV cache scale {} must be F32, BF16 or F16, got {}", name, t.to_string()));
  }
  if (!std::isfinite(x) || x <= 0) {
    return invalid_argument(
        fmt::format("KV cache scale {} must be finite and > 0, got {}", name, x));
  }
  return x;
}

// The first of `names` the store holds, checked; nullopt when none is there.
Result<std::optional<float>> first_scale(const WeightStore& store,
                                         const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (const Status* why = store.unusable(name)) {
      return invalid_argument(
          fmt::format("KV cache scale {} cannot be read: {}", name, why->message()));
    }
    const TensorView* t = store.find(name);
    if (t == nullptr) continue;
    KITE_ASSIGN_OR_RETURN(float x, scale_value(name, *t));
    return std::optional<float>(x);
  }
  return std::optional<float>();
}

}  // namespace

Result<KvCacheDtype> parse_kv_cache_dtype(std::string_view name) {
  if (name == "auto") return KvCacheDtype::kKvCacheDtypeAuto;
  if (name == "float32") return KvCacheDtype::kKvCacheDtypeFloat32;
  if (name == "bfloat16") return KvCacheDtype::kKvCacheDtypeBFloat16;
  if (name == "fp8" || name == "fp8_e4m3") return KvCacheDtype::kKvCacheDtypeFp8E4M3;
  if (name == "fp8_e5m2") {
    return unimplemented(
        fmt::format("kv_cache_dtype 'fp8_e5m2' is not supported (supported: {})", kSupported));
  }
  return invalid_argument(
      fmt::format("kv_cache_dtype must be one of {}, got '{}'", kSupported, name));
}

Result<KvCacheScales> read_kv_cache_scales(const WeightStore& store, int64_t num_layers) {
  KvCacheScales s;
  s.k.assign(static_cast<size_t>(num_layers), 1.f);
  s.v.assign(static_cast<size_t>(num_layers), 1.f);
  for (int64_t l = 0; l < num_layers; ++l) {
    for (const char kv : {'k', 'v'}) {
      std::vector<std::string> names;
      for (const char* root : {"model.layers.", "model.language_model.layers."}) {
        const std::string p = fmt::format("{}{}.self_attn.", root, l);
        names.push_back(fmt::format("{}{}_scale", p, kv));
        names.push_back(fmt::format("{}{}_proj.output_scale", p, kv));
        names.push_back(fmt::format("{}{}_proj.{}_scale", p, kv, kv));
        names.push_back(fmt::format("{}qkv_proj.{}_scale", p, kv));
        names.push_back(p + "kv_scale");
      }
      KITE_ASSIGN_OR_RETURN(std::optional<float> x, first_scale(store, names));
      if (!x && store.config().quantization.kv_cache_scales) {
        return not_found(fmt::format(
            "KV cache scale {} is missing (quantization_config has a kv_cache_scheme; also looked "
            "for {}_proj.output_scale, {}_proj.{}_scale, qkv_proj.{}_scale and kv_scale)",
            names[0], kv, kv, kv, kv));
      }
      if (!x) continue;
      (kv == 'k' ? s.k : s.v)[static_cast<size_t>(l)] = *x;
      ++s.num_from_checkpoint;
    }
  }
  return s;
}

Status complete_kv_cache_scales(KvCacheScales* s, int64_t num_layers) {
  const auto layers = static_cast<size_t>(num_layers);
  if (s->k.empty()) s->k.assign(layers, 1.f);
  if (s->v.empty()) s->v.assign(layers, 1.f);
  if (s->k.size() != layers || s->v.size() != layers) {
    return invalid_argument(fmt::format("FP8 KV cache: {} K and {} V scales for {} layers",
                                        s->k.size(), s->v.size(), layers));
  }
  return ok_status();
}

}  // namespace kite
