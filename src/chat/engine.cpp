// Engine: the public face of the library. Joins the pipeline stages and the generation loop.
#include <smolvlm/smolvlm.h>

#include <chrono>

#include "chat/answer_loop.h"
#include "chat/conversation_prompt.h"
#include "chat/engine_impl.h"
#include "kernels/kernels.h"
#include "util/input_text.h"

namespace smolvlm {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
}  // namespace

Engine::Engine() : impl_(std::make_unique<Impl>()) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::string& model_dir, const LoadOptions& options) {
  const auto t0 = Clock::now();
  if (options.threads < 0) throw Error("--threads must be positive");
  std::unique_ptr<Engine> e(new Engine());
  e->impl_->compute = std::make_unique<kernels::Compute>(options.threads, options.kernels);
  e->impl_->model =
      Model::load(model_dir, options.mmproj, options.vision_precision, options.cache_dir);
  e->impl_->path = model_dir;
  const int max_pos = e->impl_->model->config.text.max_positions;
  if (options.context < 0) throw Error("context length must be positive");
  e->impl_->context = options.context > 0 ? std::min(options.context, max_pos) : max_pos;
  e->impl_->load_ms = ms_since(t0);
  return e;
}

int Engine::context_length() const { return impl_->context; }

ModelInfo Engine::info() const {
  const ModelConfig& c = impl_->model->config;
  ModelInfo i;
  i.path = impl_->path;
  for (const NamedShape& t : hf_tensor_shapes(c)) {
    int64_t n = 1;
    for (const int64_t d : t.shape) n *= d;
    i.parameters += n;
  }
  i.text_layers = c.text.layers;
  i.text_hidden = c.text.hidden;
  i.vocab = c.text.vocab;
  i.vision_layers = c.vision.layers;
  i.vision_hidden = c.vision.hidden;
  i.tile_size = c.vision.image_size;
  i.tokens_per_tile = c.image_seq_len;
  i.context = impl_->context;
  i.threads = impl_->compute->threads();
  i.kernels = impl_->compute->path_name();
  return i;
}
double Engine::load_ms() const { return impl_->load_ms; }

Result Engine::generate(const Conversation& conversation, const GenerationOptions& options,
                        const TextCallback& on_text) {
  const Model& model = *impl_->model;
  const kernels::Compute& cx = *impl_->compute;
  if (options.max_new_tokens < 0) throw Error("max new tokens must not be negative");
  Result result;
  result.metrics.load_ms = impl_->load_ms;

  const ImageProcessorConfig proc = processor_for(model, options);
  check_prompt_fits(model, conversation, proc, impl_->context);  // before encoding anything
  std::vector<MediaPtr> media;
  int videos = 0;
  const std::vector<PromptMessage> messages = prompt_messages(
      conversation,
      [&](const Content& c) {
        if (c.kind == Content::Kind::VideoFile) {
          if (++videos > 1) throw Error("only one video per conversation is supported");
          return encode_video_file(model, cx, c.value, options, proc, result.metrics);
        }
        return encode_picture(model, cx, content_picture(c), proc, &result.metrics.vision_ms);
      },
      media);
  const RenderedPrompt prompt = render_prompt(model, messages, media);
  const int n_prompt = static_cast<int>(prompt.size());
  result.metrics.prompt_tokens = n_prompt;
  result.metrics.image_tiles = prompt.n_tiles;
  if (n_prompt >= impl_->context) {
    throw ContextLengthError("the prompt has " + std::to_string(n_prompt) +
                             " tokens, more than the context of " + std::to_string(impl_->context) +
                             " allows");
  }

  // The cache holds the prompt and the answer, no more (memory stays small for short chats).
  const int capacity = std::min(impl_->context, n_prompt + std::max(options.max_new_tokens, 1));
  Sequence sequence(model, capacity);
  const auto t = Clock::now();
  sequence.prefill(cx, prompt);
  result.metrics.prefill_ms = ms_since(t);

  generate_answer(model, cx, sequence, prompt.ids, options, on_text, result);
  return result;
}

}  // namespace smolvlm
