#include "chat/conversation_prompt.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "util/input_text.h"
#include "video/video.h"
#include "vision/image.h"

namespace smolvlm {

namespace {

uint64_t next_uid() {
  static std::atomic<uint64_t> uid{1};
  return uid.fetch_add(1);
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::vector<PromptMessage> prompt_messages(const Conversation& conversation,
                                           const std::function<MediaPtr(const Content&)>& media_for,
                                           std::vector<MediaPtr>& media) {
  if (conversation.empty()) throw Error("the conversation is empty");
  std::vector<PromptMessage> out;
  for (const Message& m : conversation) {
    if (m.role != "user" && m.role != "assistant" && m.role != "system")
      throw Error("unknown role " + quote_input(m.role) + " (expected system, user or assistant)");
    PromptMessage pm{m.role, {}};
    for (const Content& c : m.content) {
      if (c.kind == Content::Kind::Text) {
        pm.content.push_back({PromptItem::Kind::Text, c.value, c.plain});
        continue;
      }
      media.push_back(media_for(c));
      pm.content.push_back(
          {c.kind == Content::Kind::VideoFile ? PromptItem::Kind::Video : PromptItem::Kind::Image,
           {}});
    }
    out.push_back(std::move(pm));
  }
  return out;
}

Image content_picture(const Content& c) {
  switch (c.kind) {
    case Content::Kind::Image:
      if (!c.picture) throw Error("an image item holds no picture");
      return *c.picture;
    case Content::Kind::ImageFile:
      return Image::from_file(c.value);
    case Content::Kind::ImageBytes:
      return Image::from_bytes(reinterpret_cast<const uint8_t*>(c.value.data()), c.value.size());
    default:
      throw Error("this item is not a picture");
  }
}

int64_t picture_tokens_at_least(const Model& model, int width, int height,
                                const ImageProcessorConfig& proc) {
  if (!check_image_dims(width, height).empty()) return 0;  // refused when decoded
  return int64_t{plan_image(width, height, proc).n_tiles} * model.config.image_seq_len;
}

void check_prompt_fits(const Model& model, const Conversation& conversation,
                       const ImageProcessorConfig& proc, int context) {
  int64_t media_tokens = 0;
  int videos = 0;
  std::map<std::string, int64_t> file_tokens;  // by path: a picture named 10,000 times
  std::vector<PromptMessage> text_only;        // the template and the text, media left out
  auto over = [&](int64_t tokens) {
    throw ContextLengthError("the prompt needs at least " + std::to_string(tokens) +
                             " tokens (pictures at " + std::to_string(model.config.image_seq_len) +
                             " a tile, plus the text), more than the context of " +
                             std::to_string(context) + " allows; nothing was encoded");
  };
  for (const Message& m : conversation) {
    PromptMessage pm{m.role, {}};
    for (const Content& c : m.content) {
      int w = 0, h = 0;
      switch (c.kind) {
        case Content::Kind::Text:
          pm.content.push_back({PromptItem::Kind::Text, c.value});
          continue;
        case Content::Kind::VideoFile:
          if (++videos > 1) throw Error("only one video per conversation is supported");
          media_tokens += model.config.image_seq_len;  // at least one frame
          break;
        case Content::Kind::Image:
          if (c.picture)
            media_tokens +=
                picture_tokens_at_least(model, c.picture->width, c.picture->height, proc);
          break;
        case Content::Kind::ImageBytes:
          // A format whose header this does not read counts one tile: every picture has one.
          media_tokens += image_header_size(reinterpret_cast<const uint8_t*>(c.value.data()),
                                            c.value.size(), w, h)
                              ? picture_tokens_at_least(model, w, h, proc)
                              : model.config.image_seq_len;
          break;
        case Content::Kind::ImageFile: {
          auto it = file_tokens.find(c.value);
          if (it == file_tokens.end()) {
            const int64_t n = image_file_header_size(c.value, w, h)
                                  ? picture_tokens_at_least(model, w, h, proc)
                                  : model.config.image_seq_len;
            it = file_tokens.emplace(c.value, n).first;
          }
          media_tokens += it->second;
          break;
        }
      }
      if (media_tokens >= context) over(media_tokens);
    }
    text_only.push_back(std::move(pm));
  }
  // Cheap first: the text can take no more tokens than its bytes (plus the template's few).
  const std::string rendered = render_chat(text_only, true);
  if (media_tokens + static_cast<int64_t>(rendered.size()) < context) return;
  const int64_t text_tokens = static_cast<int64_t>(model.tokenizer.encode(rendered).size());
  if (media_tokens + text_tokens >= context) over(media_tokens + text_tokens);
}

ImageProcessorConfig processor_for(const Model& model, const GenerationOptions& options) {
  ImageProcessorConfig proc = model.config.processor;
  proc.do_split = proc.do_split && options.split_images;
  proc.max_tiles = options.max_tiles;
  return proc;
}

MediaPtr encode_picture(const Model& model, const kernels::Compute& cx, const Image& picture,
                        const ImageProcessorConfig& proc, double* vision_ms) {
  const auto t = std::chrono::steady_clock::now();
  const PictureTiles tiles = preprocess_image_tiles(picture, proc);
  auto m = std::make_shared<EncodedMedia>();
  m->uid = next_uid();
  m->slot = {tiles.rows, tiles.cols};
  m->n_tiles = tiles.n_tiles;
  model.with_vision_resident([&] { m->features = model.vision.image_features(cx, tiles); });
  if (vision_ms) *vision_ms += ms_since(t);
  return m;
}

MediaPtr encode_video_file(const Model& model, const kernels::Compute& cx, const std::string& path,
                           const GenerationOptions& options, const ImageProcessorConfig& proc,
                           Metrics& m) {
  if (options.video_max_frames < 0 || options.video_fps < 0)
    throw Error("video max frames and fps must not be negative");
  auto t = std::chrono::steady_clock::now();
  VideoReader reader(path);
  const VideoInfo info = reader.info();
  VideoSampling sampling;
  sampling.fps = options.video_fps > 0 ? options.video_fps : proc.video_fps;
  sampling.max_frames =
      options.video_max_frames > 0 ? options.video_max_frames : proc.video_max_frames;
  const std::vector<int> indices =
      sample_frame_indices(info.total_frames, info.native_fps, sampling);
  double decode_ms = ms_since(t);

  // The decoder thread hands frames over through a queue of at most two, so it decodes frame
  // k+1 while frame k is encoded and never holds more than a few frames.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Image> ready;
  bool finished = false, stop = false;
  std::exception_ptr decode_error;
  double blocked_ms = 0, producer_ms = 0;
  std::thread decoder([&] {
    const auto t0 = std::chrono::steady_clock::now();
    int done = 0;
    try {
      reader.read_frames(indices, [&](int, Image&& frame) {
        const auto wait0 = std::chrono::steady_clock::now();
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return ready.size() < 2 || stop; });
        blocked_ms += ms_since(wait0);
        if (stop) throw Error("video decoding stopped");
        ready.push_back(std::move(frame));
        cv.notify_all();
        lock.unlock();
        if (options.on_video_progress)
          options.on_video_progress(++done, static_cast<int>(indices.size()));
      });
    } catch (...) {
      std::lock_guard lock(mu);
      if (!stop) decode_error = std::current_exception();
    }
    std::lock_guard lock(mu);
    producer_ms = ms_since(t0);
    finished = true;
    cv.notify_all();
  });

  auto media = std::make_shared<EncodedMedia>();
  media->uid = next_uid();
  media->is_video = true;
  media->video.duration_s = info.duration_s;
  double encode_ms = 0;
  try {
    model.with_vision_resident([&] {
      VisionEncoder::TileScratch scratch;  // one set of buffers for all the frames
      for (size_t k = 0;; ++k) {
        Image frame;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return !ready.empty() || finished; });
          if (ready.empty()) break;
          frame = std::move(ready.front());
          ready.pop_front();
          cv.notify_all();
        }
        const auto te = std::chrono::steady_clock::now();
        const ProcessedImage pre = preprocess_video_frame(frame, proc);
        const std::vector<float> rows =
            model.vision.image_features(cx, pre.pixels.data(), pre.n_tiles, &scratch);
        media->features.insert(media->features.end(), rows.begin(), rows.end());
        media->video.timestamps_s.push_back(indices[k] / info.native_fps);
        encode_ms += ms_since(te);
      }
    });
  } catch (...) {
    {
      std::lock_guard lock(mu);
      stop = true;
      cv.notify_all();
    }
    decoder.join();
    throw;
  }
  decoder.join();
  if (decode_error) std::rethrow_exception(decode_error);
  media->n_tiles = static_cast<int>(media->video.timestamps_s.size());
  if (media->n_tiles == 0)
    throw Error("cannot decode video " + quote_input(path, 300) + ": no frames decoded");
  decode_ms += producer_ms - blocked_ms;
  m.video_decode_ms += decode_ms;
  m.vision_ms += encode_ms;
  return media;
}

RenderedPrompt render_prompt(const Model& model, const std::vector<PromptMessage>& messages,
                             const std::vector<MediaPtr>& media, bool add_generation_prompt) {
  // render_chat writes the placeholders in item order, so the media, listed in item order, are
  // also the order of the image tokens; expand_prompt fills pictures and videos from their own
  // lists.
  std::vector<ImageSlot> slots;
  std::vector<VideoSlot> videos;
  std::vector<const EncodedMedia*> order;
  for (const PromptMessage& m : messages) {
    for (const PromptItem& item : m.content) {
      if (item.kind == PromptItem::Kind::Text) continue;
      if (order.size() >= media.size() || !media[order.size()])
        throw Error("the conversation has more picture or video items than media");
      const EncodedMedia& e = *media[order.size()];
      if ((item.kind == PromptItem::Kind::Video) != e.is_video)
        throw Error("a picture item was given a video, or a video item a picture");
      if (e.is_video) {
        videos.push_back(e.video);
      } else {
        slots.push_back(e.slot);
      }
      order.push_back(&e);
    }
  }
  if (order.size() != media.size()) throw Error("more media given than the conversation places");

  const int seq = model.config.image_seq_len;
  std::vector<TextSpan> plain, expanded_plain;
  const std::string text = render_chat(messages, add_generation_prompt, &plain);
  RenderedPrompt p;
  p.text = expand_prompt(text, slots, videos, seq, plain, &expanded_plain);
  p.ids = model.tokenizer.encode(p.text, expanded_plain);
  p.source.assign(p.ids.size(), kTextSource);
  p.rows.assign(p.ids.size(), nullptr);

  const size_t hidden = static_cast<size_t>(model.config.text.hidden);
  size_t k = 0, row = 0;
  auto rows_of = [&](size_t i) { return static_cast<size_t>(order[i]->n_tiles) * seq; };
  for (size_t i = 0; i < p.ids.size(); ++i) {
    if (p.ids[i] != model.config.image_token_id) continue;
    while (k < order.size() && row == rows_of(k)) {
      ++k;
      row = 0;
    }
    if (k == order.size())
      throw Error(
          "the prompt holds more image tokens than its pictures give (is there a literal "
          "<image> in the text?)");
    // Media without features (not encoded: tests of the ids alone) leave the rows null; a prompt
    // with null image rows cannot be embedded (embed_positions refuses it).
    if (!order[k]->features.empty() && order[k]->features.size() != rows_of(k) * hidden)
      throw Error("a picture's features do not match its tiles");
    p.source[i] = media_source(order[k]->uid, row);
    if (!order[k]->features.empty()) p.rows[i] = order[k]->features.data() + row * hidden;
    ++row;
  }
  if (!order.empty() && (k + 1 != order.size() || row != rows_of(k)))
    throw Error("the prompt holds fewer image tokens than its pictures give");
  for (const EncodedMedia* e : order) p.n_tiles += e->n_tiles;
  return p;
}

std::vector<float> embed_positions(const Model& model, const RenderedPrompt& prompt, size_t from,
                                   size_t n) {
  const size_t hidden = static_cast<size_t>(model.config.text.hidden);
  std::vector<float> x(n * hidden);
  model.decoder.embed(prompt.ids.data() + from, static_cast<int>(n), x.data());
  for (size_t i = 0; i < n; ++i) {
    if (prompt.rows[from + i]) {
      std::memcpy(x.data() + i * hidden, prompt.rows[from + i], sizeof(float) * hidden);
    } else if (prompt.source[from + i] != kTextSource) {
      throw Error("an image token of the prompt has no features");
    }
  }
  return x;
}

}  // namespace smolvlm
