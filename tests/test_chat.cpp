// The Chat API: a dialogue kept in the KV cache must give exactly the ids (and greedy answers) of
// the whole rendered dialogue, compute only what is new, encode each picture once, drop the oldest
// turns when the context fills, and stop on cancel.
#include <gtest/gtest.h>
#include <smolvlm/serving.h>
#include <smolvlm/smolvlm.h>

#include <algorithm>
#include <atomic>

#include "prompt_route_support.h"
#include "test_support.h"

namespace smolvlm {
namespace {

const std::string kImages = test::tiny_model() + "/images/";

Engine& engine() {
  static const std::unique_ptr<Engine> e = Engine::load(test::tiny_model());
  return *e;
}

const Model& model() {
  static const std::unique_ptr<Model> m = Model::load_hf(test::tiny_model());
  return *m;
}

GenerationOptions greedy(int n) {
  GenerationOptions o;
  o.max_new_tokens = n;
  return o;
}

long image_tokens(const std::vector<int32_t>& ids) {
  return std::count(ids.begin(), ids.end(), model().config.image_token_id);
}

// The ids transformers' processor gives for a conversation: render + expand + tokenise.
std::vector<int32_t> reference_ids(const std::vector<PromptMessage>& messages,
                                   const std::vector<std::string>& image_files) {
  std::vector<Image> images;
  for (const auto& f : image_files) images.push_back(load_image_file(f));
  return test::case_prompt(model(), messages, images, model().config.processor).prompt.ids;
}

PromptMessage text_message(const std::string& role, const std::string& text) {
  return {role, {{PromptItem::Kind::Text, text}}};
}

std::vector<int32_t> prefix(const std::vector<int32_t>& ids, int n) {
  return {ids.begin(), ids.begin() + std::min<long>(n, static_cast<long>(ids.size()))};
}

TEST(Chat, SeededHistoryMatchesGoldenMultiTurn) {
  const auto& g = test::golden_json()["cases"]["multi_turn"];
  Chat chat = engine().chat();
  chat.set_image_file(kImages + "img_a.png");
  chat.add_exchange("Describe the image.", "A red square on a blue field.");
  const Result r = chat.ask("What color is the square?", greedy(12));
  const auto golden_ids = test::parse_int_list(g["input_ids"]);
  EXPECT_EQ(r.metrics.prompt_tokens, static_cast<int>(golden_ids.size()));
  EXPECT_EQ(prefix(chat.context_ids(), r.metrics.prompt_tokens), golden_ids);
  auto golden_new = test::parse_int_list(g["greedy_new_ids"]);
  golden_new.resize(12);
  EXPECT_EQ(r.tokens, golden_new);
  EXPECT_EQ(chat.turns(), 2);
}

TEST(Chat, LaterTurnsComputeOnlyWhatIsNewAndMatchTheWholeDialogue) {
  Chat chat = engine().chat();
  chat.set_image_file(kImages + "img_b.png");
  const Result r1 = chat.ask("Describe the image.", greedy(10));
  EXPECT_GT(r1.metrics.vision_ms, 0.0);
  EXPECT_EQ(r1.metrics.cached_tokens, 0);
  EXPECT_EQ(r1.metrics.image_tiles, 13);
  const Result r2 = chat.ask("What else?", greedy(10));
  const Result r3 = chat.ask("And the colours?", greedy(10));

  // Turn 2's prompt as the whole rendered dialogue, tokenised at once.
  std::vector<PromptMessage> m = {
      {"user", {{PromptItem::Kind::Image, {}}, {PromptItem::Kind::Text, "Describe the image."}}},
      text_message("assistant", r1.text),
      text_message("user", "What else?")};
  const auto ids2 = reference_ids(m, {kImages + "img_b.png"});
  m.push_back(text_message("assistant", r2.text));
  m.push_back(text_message("user", "And the colours?"));
  const auto ids3 = reference_ids(m, {kImages + "img_b.png"});
  EXPECT_EQ(r2.metrics.prompt_tokens, static_cast<int>(ids2.size()));
  EXPECT_EQ(r3.metrics.prompt_tokens, static_cast<int>(ids3.size()));
  EXPECT_EQ(prefix(chat.context_ids(), r3.metrics.prompt_tokens), ids3);

  // Earlier turns were not recomputed: at least turn 1's whole prompt came from the cache (the
  // answer's tail may be re-run where BPE merges its text differently from the generated ids),
  // the picture was encoded once, and its tokens are in the context once.
  EXPECT_GE(r2.metrics.cached_tokens, r1.metrics.prompt_tokens);
  EXPECT_GE(r3.metrics.cached_tokens, r2.metrics.prompt_tokens);
  EXPECT_EQ(r2.metrics.vision_ms, 0.0);
  EXPECT_EQ(r3.metrics.vision_ms, 0.0);
  EXPECT_EQ(image_tokens(chat.context_ids()), 13 * model().config.image_seq_len);

  // The greedy answer equals a fresh run over the whole dialogue.
  Conversation conv = {
      {"user", {Content::image_file(kImages + "img_b.png"), Content::text("Describe the image.")}},
      {"assistant", {Content::text(r1.text)}},
      {"user", {Content::text("What else?")}},
      {"assistant", {Content::text(r2.text)}},
      {"user", {Content::text("And the colours?")}}};
  EXPECT_EQ(engine().generate(conv, greedy(10)).tokens, r3.tokens);
}

TEST(Chat, TokenBoundariesBetweenTurnsMatchTheWholeDialogue) {
  // Texts whose first or last characters would merge with their neighbours under BPE if the turns
  // were tokenised one by one: ":" after "Assistant:", whitespace before "<end_of_utterance>",
  // a newline after "\n" + "User: ".
  const std::vector<std::pair<std::string, std::string>> exchanges = {
      {"Hi", ":) fine.\n"}, {"\nlist?", "  - a\n  - b  "}, {"1", "2"}};
  Chat chat = engine().chat();
  std::vector<PromptMessage> m;
  for (const auto& [user, answer] : exchanges) {
    chat.add_exchange(user, answer);
    m.push_back(text_message("user", user));
    m.push_back(text_message("assistant", answer));
  }
  const Result r = chat.ask(" 3", greedy(4));
  m.push_back(text_message("user", " 3"));
  EXPECT_EQ(prefix(chat.context_ids(), r.metrics.prompt_tokens), reference_ids(m, {}));
  // One more turn after a generated answer: the whole dialogue again, and only its end computed.
  const Result r2 = chat.ask("::", greedy(4));
  m.push_back(text_message("assistant", r.text));
  m.push_back(text_message("user", "::"));
  EXPECT_EQ(prefix(chat.context_ids(), r2.metrics.prompt_tokens), reference_ids(m, {}));
  EXPECT_GE(r2.metrics.cached_tokens, r.metrics.prompt_tokens);
}

TEST(Chat, ImageMarkerReusesTheEncodedPicture) {
  Chat chat = engine().chat();
  chat.set_image_file(kImages + "img_a.png");
  const Result r1 = chat.ask("Describe the image.", greedy(4));
  const Result r2 = chat.ask("Compare with this: <image>", greedy(4));
  EXPECT_EQ(r2.metrics.vision_ms, 0.0);  // features reused
  EXPECT_EQ(r2.metrics.image_tiles, 26);
  EXPECT_EQ(image_tokens(chat.context_ids()), 26 * model().config.image_seq_len);
  EXPECT_NE(chat.transcript().find("Compare with this: <image><end_of_utterance>"),
            std::string::npos)
      << chat.transcript();
  EXPECT_GE(r2.metrics.cached_tokens, r1.metrics.prompt_tokens);
}

TEST(Chat, TextOnlyChatNeedsNoPictureAndMarkerWithoutPictureIsAnError) {
  Chat chat = engine().chat();
  const Result r = chat.ask("What is the capital of France?", greedy(12));
  auto golden = test::parse_int_list(test::golden_json()["cases"]["text_only"]["greedy_new_ids"]);
  golden.resize(12);
  EXPECT_EQ(r.tokens, golden);
  EXPECT_THROW(chat.ask("What is in <image>?", greedy(4)), Error);
  EXPECT_EQ(chat.turns(), 1);
}

TEST(Chat, SeedSemanticsPlaceThePictureOnlyWhereAsked) {
  ChatOptions o;
  o.image_first = false;
  Chat chat = engine().chat(o);
  chat.set_image_file(kImages + "img_a.png");
  EXPECT_EQ(chat.ask("Hello", greedy(2)).metrics.image_tiles, 0);
  EXPECT_EQ(chat.ask("<image>Describe it.", greedy(2)).metrics.image_tiles, 13);
}

TEST(Chat, ASwitchedPictureWithTheSameGridIsNotTakenFromTheCache) {
  Image a = Image::from_file(kImages + "img_a.png");
  Image inverted = a;
  for (auto& v : inverted.rgb) v = static_cast<uint8_t>(255 - v);

  Chat chat = engine().chat();
  chat.set_image(a);
  const Result ra = chat.ask("Describe the image.", greedy(8));
  chat.clear();
  chat.set_image(inverted);
  const Result rb = chat.ask("Describe the image.", greedy(8));
  EXPECT_GT(rb.metrics.vision_ms, 0.0);
  // Only the tokens before the first image token ("<|im_start|>User:" and the tile tags) match.
  const auto ids = chat.context_ids();
  const auto first_image = std::find(ids.begin(), ids.end(), model().config.image_token_id);
  EXPECT_EQ(rb.metrics.cached_tokens, first_image - ids.begin());

  Chat fresh = engine().chat();
  fresh.set_image(inverted);
  const Result rf = fresh.ask("Describe the image.", greedy(8));
  EXPECT_EQ(rb.tokens, rf.tokens);
  EXPECT_NE(ra.tokens, rf.tokens);  // the pictures do lead to different answers
}

TEST(Chat, ClearForgetsTheDialogueButKeepsThePicture) {
  Chat chat = engine().chat();
  chat.set_image_file(kImages + "img_b.png");
  const Result r1 = chat.ask("Describe the image.", greedy(12));
  chat.ask("Anything else?", greedy(6));
  chat.clear();
  EXPECT_EQ(chat.turns(), 0);
  const Result r = chat.ask("Describe the image.", greedy(12));
  EXPECT_EQ(r.tokens, r1.tokens);
  EXPECT_EQ(r.metrics.vision_ms, 0.0);
  // Same picture at the same place: its prefill is reused too.
  EXPECT_EQ(r.metrics.cached_tokens, r.metrics.prompt_tokens - 1);
  auto golden = test::parse_int_list(test::golden_json()["cases"]["image_split"]["greedy_new_ids"]);
  golden.resize(12);
  EXPECT_EQ(r.tokens, golden);
}

TEST(Chat, OverflowDropsTheOldestTurnsAndKeepsThePicture) {
  ChatOptions o;
  o.context = 160;
  Chat chat = engine().chat(o);
  chat.set_image_file(kImages + "img_a.png");  // 13 tiles: 52 image tokens, ~94 with the turn
  GenerationOptions g = greedy(16);
  int dropped = 0;
  for (int turn = 0; turn < 6; ++turn) {
    const Result r = chat.ask("Tell me more, please.", g);
    EXPECT_LE(r.metrics.prompt_tokens + g.max_new_tokens, 160);
    EXPECT_LE(chat.context_tokens(), 160);
    dropped += r.dropped_turns;
    // The picture stays in the dialogue, once.
    EXPECT_EQ(image_tokens(chat.context_ids()), 13 * model().config.image_seq_len)
        << "turn " << turn;
    EXPECT_NE(chat.transcript().find("User:<image>"), std::string::npos) << chat.transcript();
  }
  EXPECT_GT(dropped, 0);
  EXPECT_LT(chat.turns(), 6);
}

TEST(Chat, ATurnThatCanNeverFitIsAnErrorAndTheDialogueGoesOn) {
  ChatOptions o;
  o.context = 64;
  Chat chat = engine().chat(o);
  const Result r1 = chat.ask("Hi.", greedy(8));
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "word ";
  try {
    chat.ask(long_text, greedy(8));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than the context of 64"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(chat.turns(), 1);
  const Result r2 = chat.ask("Again?", greedy(8));
  EXPECT_GE(r2.metrics.cached_tokens, r1.metrics.prompt_tokens);
  EXPECT_EQ(chat.turns(), 2);
}

TEST(Chat, CancelStopsTheAnswerAndTheChatGoesOn) {
  Chat chat = engine().chat();
  std::atomic<bool> cancel{false};
  GenerationOptions g = greedy(200);
  g.cancel = &cancel;
  int pieces = 0;
  const Result r = chat.ask("Tell me a long story.", g, [&](std::string_view) {
    if (++pieces == 3) cancel.store(true);
    return true;
  });
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.stopped_by_eos);
  EXPECT_GE(r.tokens.size(), 3u);
  EXPECT_LE(r.tokens.size(), 6u);
  cancel.store(false);
  const Result r2 = chat.ask("Shorter, please.", g);
  EXPECT_FALSE(r2.cancelled);
  EXPECT_GT(r2.tokens.size(), 0u);
  EXPECT_NE(chat.transcript().find(r.text + "<end_of_utterance>"), std::string::npos);
}

TEST(Chat, EngineGenerateHonoursCancelAndReportsMemory) {
  std::atomic<bool> cancel{true};
  GenerationOptions g = greedy(20);
  g.cancel = &cancel;
  const Result r = engine().generate({{"user", {Content::text("Hi")}}}, g);
  EXPECT_TRUE(r.cancelled);
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_GT(r.metrics.peak_rss_bytes, 1 << 20);
}

TEST(Chat, ImagesFromMemoryConvertBgrAndStride) {
  const uint8_t bgr[] = {1, 2, 3, 4,  5,  6,  99, 99,  // row 0 + 2 bytes of padding
                         7, 8, 9, 10, 11, 12, 99, 99};
  const Image im = Image::from_bgr(2, 2, bgr, 8);
  EXPECT_EQ(im.rgb, (std::vector<uint8_t>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10}));
  EXPECT_EQ(Image::from_rgb(2, 2, bgr, 8).rgb,
            (std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_THROW(Image::from_rgb(0, 2, bgr), Error);
  EXPECT_THROW(Image::from_rgb(2, 2, bgr, 5), Error);
  Chat chat = engine().chat();
  EXPECT_THROW(chat.set_image_file(kImages + "missing.png"), Error);
  EXPECT_FALSE(chat.has_image());
  Image bad{4, 4, std::vector<uint8_t>(5)};
  EXPECT_THROW(chat.set_image(bad), Error);
}

// The media-cache figures and Chat::clear_media under their old names, kept for code written
// against them: the same members.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST(Chat, OldNamesOfMediaCacheAndClearStillWork) {
  const SchedulerOptions o{.slots = 2, .image_cache_bytes = 1234};
  EXPECT_EQ(o.media_cache_bytes, 1234);
  Metrics m;
  m.media_cache_hits = 3;
  EXPECT_EQ(m.image_cache_hits, 3);
  SchedulerStats st;
  st.media_cache_misses = 5;
  EXPECT_EQ(st.image_cache_misses, 5);
  Chat chat = engine().chat();
  chat.set_image_file(kImages + "img_a.png");
  chat.clear_image();
  EXPECT_FALSE(chat.has_image());
}
#pragma GCC diagnostic pop

}  // namespace
}  // namespace smolvlm
