//===- HfConfig.cpp - a Hugging Face config.json as a pipec model ---------===//

#include "compiler/import/HfConfig.h"
#include "compiler/import/JsonReader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

namespace pipec {

namespace {

using Json = nlohmann::ordered_json;

/// Fields every transformers config may carry that leave the maths alone:
/// bookkeeping, generation settings, token ids, the storage dtype (pipec
/// trains in its target's precision).
const std::set<std::string> kHarmless = {
    "_name_or_path", "architectures", "model_type", "transformers_version",
    "torch_dtype", "dtype", "bos_token_id", "eos_token_id", "pad_token_id",
    "sep_token_id", "decoder_start_token_id", "use_cache", "output_attentions",
    "output_hidden_states", "return_dict", "use_return_dict", "id2label",
    "label2id", "problem_type", "tokenizer_class", "prefix",
    "task_specific_params", "torchscript", "tf_legacy_loss", "use_bfloat16",
    "is_encoder_decoder", "chunk_size_feed_forward", "pruned_heads",
    "tie_encoder_decoder", "finetuning_task", "max_length", "min_length",
    "do_sample", "num_beams", "temperature", "top_k", "top_p",
    "repetition_penalty", "initializer_range", "max_position_embeddings",
    "n_ctx", "output_router_logits",
    // GPT2DoubleHeadsModel's classification head, which the LM head ignores.
    "summary_type", "summary_use_proj", "summary_activation",
    "summary_proj_to_labels", "summary_first_dropout"};

/// The layers a model description may repeat (the importer's repeat
/// limit, docs/MODEL_FORMAT.md).
constexpr int64_t kMaxLayers = 10000;
constexpr const char *kLayersWhy = " (a model description repeats its "
                                   "block at most 10000 times)";

/// Reads one config: every field is either used (`take`), checked to have
/// the value pipec builds (`expect`), harmless, or refused.
class Fields {
public:
  explicit Fields(const Json &config) : config(config) {}

  /// The field's value, or `fallback` (transformers' default) when absent.
  Json take(const std::string &key, const Json &fallback) {
    used.insert(key);
    auto it = config.find(key);
    return it == config.end() || it->is_null() ? fallback : *it;
  }
  /// An integer field from 1 to `most` (2^31, a dimension's limit, by
  /// default; `why` says where a smaller limit comes from).
  bool positive(const std::string &key, int64_t fallback, int64_t &out,
                std::string &error, int64_t most = int64_t(1) << 31,
                const char *why = "") {
    Json v = take(key, fallback);
    if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
        v.get<int64_t>() > most) {
      error = key + ": expected an integer from 1 to " +
              (most == (int64_t(1) << 31) ? std::string("2^31")
                                          : std::to_string(most)) +
              why + ", got " + v.dump();
      return false;
    }
    out = v.get<int64_t>();
    return true;
  }
  /// A positive finite number.
  bool number(const std::string &key, double fallback, double &out,
              std::string &error) {
    Json v = take(key, fallback);
    if (!v.is_number() || !(v.get<double>() > 0) ||
        !std::isfinite(v.get<double>())) {
      error = key + ": expected a positive number, got " + v.dump();
      return false;
    }
    out = v.get<double>();
    return true;
  }
  /// A field whose value must be `want` (its default when absent), else
  /// refused with `why`.
  bool expect(const std::string &key, const Json &want, const Json &fallback,
              const std::string &why, std::string &error) {
    Json v = take(key, fallback);
    if (v != want) {
      error = key + " = " + v.dump() + ": " + why;
      return false;
    }
    return true;
  }
  /// A dropout probability: 0, or (with dropDropout) anything, ignored.
  bool dropout(const std::string &key, double fallback, bool dropDropout,
               std::string &error) {
    Json v = take(key, fallback);
    if (!v.is_number() || v.get<double>() < 0 || v.get<double>() >= 1) {
      error = key + ": expected a probability, got " + v.dump();
      return false;
    }
    if (v.get<double>() > 0 && !dropDropout) {
      error = key + " = " + v.dump() +
              ": pipec trains without dropout, so the training would not be "
              "the model's; set it to 0 in config.json or pass "
              "--drop-dropout to train without it";
      return false;
    }
    if (v.get<double>() > 0)
      droppedDropout.push_back(key);
    return true;
  }
  /// model_type (already read) and architectures, which must name the
  /// causal-LM class whose weights the description's names are.
  bool family(const std::string &lmClass, std::string &error) {
    take("model_type", nullptr);
    Json a = take("architectures", nullptr);
    if (a.is_null())
      return true;
    if (!a.is_array() || std::find(a.begin(), a.end(), Json(lmClass)) == a.end()) {
      error = "architectures = " + a.dump() + ": pipec imports " + lmClass +
              " (its parameter names are the checkpoint's)";
      return false;
    }
    return true;
  }
  /// Sorts the rest into harmless (listed) and unknown (refused).
  bool rest(std::vector<std::string> &ignored, std::string &error) {
    for (auto it = config.begin(); it != config.end(); ++it) {
      if (used.count(it.key()))
        continue;
      if (!kHarmless.count(it.key())) {
        error = it.key() + ": a field pipec does not know, so it cannot tell "
                           "whether it changes the model; remove it from "
                           "config.json if it does not";
        return false;
      }
      ignored.push_back(it.key());
    }
    for (const std::string &key : droppedDropout)
      ignored.push_back(key + " (--drop-dropout)");
    std::sort(ignored.begin(), ignored.end());
    return true;
  }

private:
  const Json &config;
  std::set<std::string> used;
  std::vector<std::string> droppedDropout;
};

Json param(const Json &shape, const char *init, double std = 0) {
  Json p = {{"shape", shape}, {"init", init}};
  if (std > 0)
    p["std"] = std;
  return p;
}

Json op(const char *name, Json inputs, const char *output) {
  return {{"op", name}, {"inputs", std::move(inputs)}, {"output", output}};
}

/// The training hyperparameters every pipec model carries; pipec-run's
/// flags override them (docs/TRAINING.md).
Json defaultTrain() {
  return {{"seed", 1337},          {"lr", 6e-4},        {"warmup_steps", 100},
          {"decay", "cosine"},     {"decay_steps", 10000}, {"min_lr", 6e-5},
          {"beta1", 0.9},          {"beta2", 0.95},     {"eps", 1e-8},
          {"weight_decay", 0.1},   {"grad_clip", 1.0}};
}

Json tokenInputs() {
  return {{"tokens", {{"shape", {"batch", "seq"}}, {"dtype", "i32"}}},
          {"targets", {{"shape", {"batch", "seq"}}, {"dtype", "i32"}}}};
}

/// A description's head, in its key order: name (--name, else the family
/// and sizes, e.g. gpt2_l12_d768), description, config, the default train
/// section and the token inputs.
Json startModel(const HfImportOptions &o, const char *family, int64_t layers,
                int64_t d, const char *description, Json config) {
  Json m;
  m["name"] = o.name.empty() ? std::string(family) + "_l" +
                                   std::to_string(layers) + "_d" +
                                   std::to_string(d)
                             : o.name;
  m["description"] = description;
  m["config"] = std::move(config);
  m["train"] = defaultTrain();
  m["inputs"] = tokenInputs();
  return m;
}

int64_t defaultSeq(const HfImportOptions &o, int64_t context) {
  return o.seq > 0 ? o.seq : std::min<int64_t>(1024, context);
}

/// Ends both families alike: the LM head (`headWeight`, [vocab, d_model],
/// applied transposed) on x_final, the loss, and the config kept verbatim.
void finish(Json &m, Json &graph, const std::string &headWeight,
            const Json &config, const char *family, HfImportResult &r) {
  Json head = op("matmul", {"x_final", headWeight}, "logits");
  head["transpose_rhs"] = true;
  graph.push_back(head);
  graph.push_back(op("cross_entropy", {"logits", "targets"}, "loss"));
  m["graph"] = graph;
  m["loss"] = "loss";
  m["huggingface"] = config;
  r.family = family;
  r.modelJson = m.dump(2) + "\n";
}

std::string gpt2(const Json &config, const HfImportOptions &o,
                 HfImportResult &r) {
  Fields f(config);
  std::string e;
  if (!f.family("GPT2LMHeadModel", e))
    return e;
  int64_t vocab, ctx, d, layers, heads;
  double eps, initStd;
  if (!f.positive("vocab_size", 50257, vocab, e) ||
      !f.positive("n_positions", 1024, ctx, e) ||
      !f.positive("n_embd", 768, d, e) || !f.positive("n_layer", 12, layers, e, kMaxLayers, kLayersWhy) ||
      !f.positive("n_head", 12, heads, e) ||
      !f.number("layer_norm_epsilon", 1e-5, eps, e) ||
      !f.number("initializer_range", 0.02, initStd, e))
    return e;
  Json inner = f.take("n_inner", nullptr);
  int64_t ff = 4 * d;
  if (!inner.is_null()) {
    if (!inner.is_number_integer() || inner.get<int64_t>() < 1)
      return "n_inner: expected a positive integer or null, got " +
             inner.dump();
    ff = inner.get<int64_t>();
  }
  if (d % heads)
    return "n_embd = " + std::to_string(d) + " is not a multiple of n_head = " +
           std::to_string(heads);
  Json act = f.take("activation_function", "gelu_new");
  if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    return "activation_function = " + act.dump() +
           ": pipec's gelu is the tanh approximation (gelu_new, "
           "gelu_pytorch_tanh)";
  if (!f.dropout("resid_pdrop", 0.1, o.dropDropout, e) ||
      !f.dropout("embd_pdrop", 0.1, o.dropDropout, e) ||
      !f.dropout("attn_pdrop", 0.1, o.dropDropout, e) ||
      !f.expect("scale_attn_weights", true, true,
                "pipec's attention scales the scores by 1/sqrt(head_dim)", e) ||
      !f.expect("scale_attn_by_inverse_layer_idx", false, false,
                "pipec does not scale the scores by the layer index", e) ||
      !f.expect("add_cross_attention", false, false,
                "pipec builds decoder-only models", e) ||
      !f.expect("tie_word_embeddings", true, true,
                "GPT-2's head is its token embedding (untied heads: the "
                "Llama family)",
                e))
    return e;
  // In float32 this only changes where the scores are upcast: nowhere.
  if (!f.take("reorder_and_upcast_attn", nullptr).is_null())
    r.ignored.push_back("reorder_and_upcast_attn (no effect in float32)");
  if (!f.rest(r.ignored, e))
    return e;

  int64_t seq = defaultSeq(o, ctx);
  if (seq > ctx)
    return "--seq " + std::to_string(seq) + " is longer than n_positions = " +
           std::to_string(ctx);
  Json m = startModel(
      o, "gpt2", layers, d,
      "Imported from a Hugging Face GPT2LMHeadModel config.json (pipec "
      "import-hf): transformers' parameter names and layout (Conv1D weights "
      "[in, out]; the head tied to transformer.wte.weight).",
      {{"batch", o.batch}, {"seq", seq},       {"n_ctx", ctx},
       {"vocab", vocab},   {"n_layer", layers}, {"n_head", heads},
       {"d_model", d},     {"d_qkv", 3 * d},    {"d_ff", ff}});
  m["params"] = {
      {"transformer.wte.weight", param({"vocab", "d_model"}, "normal", initStd)},
      {"transformer.wpe.weight", param({"n_ctx", "d_model"}, "normal", initStd)},
      {"transformer.ln_f.weight", param({"d_model"}, "ones")},
      {"transformer.ln_f.bias", param({"d_model"}, "zeros")}};
  const std::string h = "transformer.h.{i}.";
  auto n = [&](const char *s) { return h + s; };
  Json block;
  block["repeat"] = "n_layer";
  block["index"] = "i";
  block["carry"] = "x";
  block["params"] = {
      {n("ln_1.weight"), param({"d_model"}, "ones")},
      {n("ln_1.bias"), param({"d_model"}, "zeros")},
      {n("attn.c_attn.weight"), param({"d_model", "d_qkv"}, "normal", initStd)},
      {n("attn.c_attn.bias"), param({"d_qkv"}, "zeros")},
      {n("attn.c_proj.weight"),
       param({"d_model", "d_model"}, "scaled_normal", initStd)},
      {n("attn.c_proj.bias"), param({"d_model"}, "zeros")},
      {n("ln_2.weight"), param({"d_model"}, "ones")},
      {n("ln_2.bias"), param({"d_model"}, "zeros")},
      {n("mlp.c_fc.weight"), param({"d_model", "d_ff"}, "normal", initStd)},
      {n("mlp.c_fc.bias"), param({"d_ff"}, "zeros")},
      {n("mlp.c_proj.weight"), param({"d_ff", "d_model"}, "scaled_normal", initStd)},
      {n("mlp.c_proj.bias"), param({"d_model"}, "zeros")}};
  Json ops = Json::array();
  Json ln1 = op("layernorm", {"x", n("ln_1.weight"), n("ln_1.bias")}, "ln1");
  ln1["eps"] = eps;
  ops.push_back(ln1);
  ops.push_back(op("matmul", {"ln1", n("attn.c_attn.weight"),
                              n("attn.c_attn.bias")},
                   "qkv"));
  const char *parts[] = {"q", "k", "v"};
  for (int p = 0; p < 3; ++p) {
    Json s = op("slice", {"qkv"}, parts[p]);
    s["axis"] = 2;
    s["offset"] = p * d;
    s["size"] = "d_model";
    ops.push_back(s);
  }
  Json attn = op("attention", {"q", "k", "v"}, "attn");
  attn["heads"] = "n_head";
  attn["causal"] = true;
  ops.push_back(attn);
  ops.push_back(op("matmul", {"attn", n("attn.c_proj.weight"),
                              n("attn.c_proj.bias")},
                   "attn_out"));
  ops.push_back(op("add", {"x", "attn_out"}, "x_attn"));
  Json ln2 = op("layernorm", {"x_attn", n("ln_2.weight"), n("ln_2.bias")},
                "ln2");
  ln2["eps"] = eps;
  ops.push_back(ln2);
  ops.push_back(
      op("matmul", {"ln2", n("mlp.c_fc.weight"), n("mlp.c_fc.bias")}, "fc"));
  ops.push_back(op("gelu", {"fc"}, "fc_act"));
  ops.push_back(op("matmul", {"fc_act", n("mlp.c_proj.weight"),
                              n("mlp.c_proj.bias")},
                   "mlp_out"));
  ops.push_back(op("add", {"x_attn", "mlp_out"}, "x_out"));
  block["ops"] = ops;
  block["yield"] = "x_out";

  Json graph = Json::array();
  graph.push_back(op("embedding", {"transformer.wte.weight", "tokens"}, "tok_emb"));
  Json pos = op("position_embedding", {"transformer.wpe.weight"}, "pos_emb");
  pos["length"] = "seq";
  graph.push_back(pos);
  graph.push_back(op("add", {"tok_emb", "pos_emb"}, "x"));
  graph.push_back(block);
  Json lnf = op("layernorm", {"x", "transformer.ln_f.weight",
                              "transformer.ln_f.bias"},
                "x_final");
  lnf["eps"] = eps;
  graph.push_back(lnf);
  finish(m, graph, "transformer.wte.weight", config, "gpt2", r);
  return "";
}

std::string llama(const Json &config, const HfImportOptions &o,
                  HfImportResult &r) {
  Fields f(config);
  std::string e;
  if (!f.family("LlamaForCausalLM", e))
    return e;
  int64_t vocab, d, ff, layers, heads, ctx;
  double eps, initStd;
  if (!f.positive("vocab_size", 32000, vocab, e) ||
      !f.positive("hidden_size", 4096, d, e) ||
      !f.positive("intermediate_size", 11008, ff, e) ||
      !f.positive("num_hidden_layers", 32, layers, e, kMaxLayers,
                  kLayersWhy) ||
      !f.positive("num_attention_heads", 32, heads, e) ||
      !f.positive("max_position_embeddings", 2048, ctx, e) ||
      !f.number("rms_norm_eps", 1e-6, eps, e) ||
      !f.number("initializer_range", 0.02, initStd, e))
    return e;
  int64_t kvHeads = heads, headDim = 0;
  if (!f.positive("num_key_value_heads", heads, kvHeads, e))
    return e;
  if (heads % kvHeads)
    return "num_key_value_heads = " + std::to_string(kvHeads) +
           " does not divide num_attention_heads = " + std::to_string(heads);
  if (d % heads && config.value("head_dim", Json()).is_null())
    return "hidden_size = " + std::to_string(d) +
           " is not a multiple of num_attention_heads = " +
           std::to_string(heads) + " (and head_dim is not given)";
  if (!f.positive("head_dim", d / std::max<int64_t>(heads, 1), headDim, e))
    return e;
  if (headDim % 2)
    return "head_dim = " + std::to_string(headDim) +
           ": rotary embeddings rotate pairs, so it must be even";
  // Rotary settings: transformers 4 writes rope_theta and rope_scaling,
  // transformers 5 one rope_parameters object.
  double theta = 10000.0;
  const bool thetaGiven = config.contains("rope_theta") &&
                          !config["rope_theta"].is_null();
  if (!f.number("rope_theta", 10000.0, theta, e))
    return e;
  Json scaling = f.take("rope_scaling", nullptr);
  if (!scaling.is_null())
    return "rope_scaling = " + scaling.dump() +
           ": pipec builds the default rotary embedding only";
  Json rp = f.take("rope_parameters", nullptr);
  if (!rp.is_null()) {
    if (!rp.is_object())
      return "rope_parameters: expected an object, got " + rp.dump();
    for (auto it = rp.begin(); it != rp.end(); ++it) {
      if (it.key() == "rope_type") {
        if (*it != "default")
          return "rope_parameters.rope_type = " + it->dump() +
                 ": pipec builds the default rotary embedding only";
      } else if (it.key() == "rope_theta") {
        if (!it->is_number() || !(it->get<double>() > 0))
          return "rope_parameters.rope_theta: expected a positive number, "
                 "got " +
                 it->dump();
        // Both forms, disagreeing: which one the checkpoint was trained
        // with cannot be known.
        if (thetaGiven && it->get<double>() != theta)
          return "rope_theta = " + config["rope_theta"].dump() +
                 " and rope_parameters.rope_theta = " + it->dump() +
                 " disagree: give one";
        theta = it->get<double>();
      } else {
        return "rope_parameters." + it.key() +
               ": pipec builds the default rotary embedding only";
      }
    }
  }
  Json act = f.take("hidden_act", "silu");
  if (act != "silu")
    return "hidden_act = " + act.dump() + ": pipec's Llama MLP is SwiGLU (silu)";
  bool attnBias = f.take("attention_bias", false) == true;
  bool mlpBias = f.take("mlp_bias", false) == true;
  bool tied = f.take("tie_word_embeddings", false) == true;
  if (!f.dropout("attention_dropout", 0.0, o.dropDropout, e) ||
      !f.expect("pretraining_tp", 1, 1,
                "pipec computes each projection as one matrix product", e))
    return e;
  for (const char *k : {"sliding_window", "use_sliding_window",
                        "layer_types", "attn_logit_softcapping",
                        "final_logit_softcapping"}) {
    Json v = f.take(k, nullptr);
    if (!v.is_null() && v != false)
      return std::string(k) + " = " + v.dump() +
             ": pipec's Llama attends to every earlier token";
  }
  if (!f.rest(r.ignored, e))
    return e;

  int64_t seq = defaultSeq(o, ctx);
  Json m = startModel(
      o, "llama", layers, d,
      "Imported from a Hugging Face LlamaForCausalLM config.json (pipec "
      "import-hf): transformers' parameter names and layout (Linear weights "
      "[out, in], applied with transpose_rhs; rotate-half rotary "
      "embeddings).",
      {{"batch", o.batch},          {"seq", seq},
       {"vocab", vocab},            {"n_layer", layers},
       {"n_head", heads},           {"n_kv_head", kvHeads},
       {"d_model", d},              {"d_q", heads * headDim},
       {"d_kv", kvHeads * headDim}, {"d_ff", ff}});
  m["params"] = {
      {"model.embed_tokens.weight", param({"vocab", "d_model"}, "normal", initStd)},
      {"model.norm.weight", param({"d_model"}, "ones")}};
  if (!tied)
    m["params"]["lm_head.weight"] =
        param({"vocab", "d_model"}, "normal", initStd);
  const std::string l = "model.layers.{i}.";
  auto n = [&](const char *s) { return l + s; };
  Json block;
  block["repeat"] = "n_layer";
  block["index"] = "i";
  block["carry"] = "x";
  Json ps;
  ps[n("input_layernorm.weight")] = param({"d_model"}, "ones");
  struct Proj {
    const char *name, *out, *in;
    bool bias;
  };
  const Proj projs[] = {{"self_attn.q_proj", "d_q", "d_model", attnBias},
                        {"self_attn.k_proj", "d_kv", "d_model", attnBias},
                        {"self_attn.v_proj", "d_kv", "d_model", attnBias},
                        {"self_attn.o_proj", "d_model", "d_q", attnBias},
                        {"mlp.gate_proj", "d_ff", "d_model", mlpBias},
                        {"mlp.up_proj", "d_ff", "d_model", mlpBias},
                        {"mlp.down_proj", "d_model", "d_ff", mlpBias}};
  for (const Proj &p : projs) {
    if (std::string(p.name) == "mlp.gate_proj")
      ps[n("post_attention_layernorm.weight")] = param({"d_model"}, "ones");
    ps[l + p.name + ".weight"] = param({p.out, p.in}, "normal", initStd);
    if (p.bias)
      ps[l + p.name + ".bias"] = param({p.out}, "zeros");
  }
  block["params"] = ps;
  auto linear = [&](const char *in, const Proj &p, const char *out) {
    Json inputs = {in, l + p.name + ".weight"};
    if (p.bias)
      inputs.push_back(l + p.name + ".bias");
    Json mm = op("matmul", inputs, out);
    mm["transpose_rhs"] = true;
    return mm;
  };
  Json ops = Json::array();
  Json rms1 = op("rmsnorm", {"x", n("input_layernorm.weight")}, "h");
  rms1["eps"] = eps;
  ops.push_back(rms1);
  ops.push_back(linear("h", projs[0], "q"));
  ops.push_back(linear("h", projs[1], "k"));
  ops.push_back(linear("h", projs[2], "v"));
  Json rq = op("rope", {"q"}, "q_rot");
  rq["heads"] = "n_head";
  rq["theta"] = theta;
  ops.push_back(rq);
  Json rk = op("rope", {"k"}, "k_rot");
  rk["heads"] = "n_kv_head";
  rk["theta"] = theta;
  ops.push_back(rk);
  Json attn = op("attention", {"q_rot", "k_rot", "v"}, "attn");
  attn["heads"] = "n_head";
  attn["kv_heads"] = "n_kv_head";
  attn["causal"] = true;
  ops.push_back(attn);
  ops.push_back(linear("attn", projs[3], "attn_out"));
  ops.push_back(op("add", {"x", "attn_out"}, "x_attn"));
  Json rms2 = op("rmsnorm", {"x_attn", n("post_attention_layernorm.weight")},
                 "h2");
  rms2["eps"] = eps;
  ops.push_back(rms2);
  ops.push_back(linear("h2", projs[4], "gate"));
  ops.push_back(linear("h2", projs[5], "up"));
  ops.push_back(op("silu", {"gate"}, "gate_act"));
  ops.push_back(op("mul", {"gate_act", "up"}, "gated"));
  ops.push_back(linear("gated", projs[6], "mlp_out"));
  ops.push_back(op("add", {"x_attn", "mlp_out"}, "x_out"));
  block["ops"] = ops;
  block["yield"] = "x_out";

  Json graph = Json::array();
  graph.push_back(op("embedding", {"model.embed_tokens.weight", "tokens"}, "x"));
  graph.push_back(block);
  Json rmsf = op("rmsnorm", {"x", "model.norm.weight"}, "x_final");
  rmsf["eps"] = eps;
  graph.push_back(rmsf);
  finish(m, graph, tied ? "model.embed_tokens.weight" : "lm_head.weight",
         config, "llama", r);
  return "";
}

} // namespace

std::string importHfConfig(const std::string &configText,
                           const HfImportOptions &o, HfImportResult &result) {
  result = HfImportResult();
  Json config = Json::parse(configText, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) {
    // The importer's own reader says where the text stops being JSON.
    json::Value value;
    json::ReadError err;
    if (!json::read(configText, value, err)) {
      json::LineCol at = json::LineTable(configText).lookup(err.offset);
      return std::to_string(at.line) + ":" + std::to_string(at.column) +
             ": not JSON (" + err.message + "; a transformers config.json)";
    }
    return "not JSON (a transformers config.json)";
  }
  if (!config.is_object())
    return "not a JSON object (a transformers config.json)";
  if (o.batch < 1 || o.batch > (int64_t(1) << 31) || o.seq < 0 ||
      o.seq > (int64_t(1) << 31))
    return "--batch and --seq must be positive";
  std::string type = config.value("model_type", std::string());
  if (type == "gpt2")
    return gpt2(config, o, result);
  if (type == "llama")
    return llama(config, o, result);
  return "model_type = " + (config.contains("model_type")
                                ? config["model_type"].dump()
                                : std::string("(missing)")) +
         ": pipec imports the gpt2 (GPT2LMHeadModel) and llama "
         "(LlamaForCausalLM) families";
}

} // namespace pipec
