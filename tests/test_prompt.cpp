// The prompt format against the real 256M processor's outputs (tests/fixtures/reference/
// processor_cases.json): chat template renders, image and video expansion, token counts.
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include "chat/prompt.h"
#include "test_support.h"
#include "text/tokenizer.h"
#include "video/video.h"
#include "vision/image_processor.h"

namespace smolvlm {
namespace {

const nlohmann::json& cases() {
  static const nlohmann::json j =
      nlohmann::json::parse(read_text_file(test::fixtures() + "/reference/processor_cases.json"));
  return j;
}

const Tokenizer& tokenizer() {  // the tiny model ships the real SmolVLM2 tokenizer
  static const Tokenizer t = Tokenizer::from_hf_json_file(test::tiny_model() + "/tokenizer.json");
  return t;
}

PromptItem text(const std::string& t) { return {PromptItem::Kind::Text, t}; }
const PromptItem kImage{PromptItem::Kind::Image, {}};
const PromptItem kVideo{PromptItem::Kind::Video, {}};

TEST(ChatTemplate, RendersAsTheReference) {
  const auto& want = cases()["chat_template_renders"];
  EXPECT_EQ(render_chat({{"user", {text("Hi")}}}, true), want["text"]);
  EXPECT_EQ(render_chat({{"system", {text("Be brief.")}}, {"user", {text("Hi")}}}, true),
            want["system"]);
  EXPECT_EQ(render_chat({{"user", {kImage, text("What?")}},
                         {"assistant", {text("A cat.")}},
                         {"user", {text("Color?")}}},
                        true),
            want["multi"]);
  EXPECT_EQ(render_chat({{"user", {text("Look:"), kImage}}}, true), want["text_then_image"]);
  EXPECT_EQ(render_chat({{"user", {kVideo, text("Summarize.")}}}, true), want["video"]);
  EXPECT_EQ(render_chat({{"user", {text("Hi")}}}, false),
            "<|im_start|>User: Hi<end_of_utterance>\n");
}

// Every size the real processor was run on: our processor's grid, the expanded prompt string
// and its token count.
TEST(ImageExpansion, MatchesRealProcessorForEverySize) {
  ImageProcessorConfig real;  // SmolVLM2-256M: longest edge 2048, tiles 512
  real.longest_edge = 2048;
  real.tile_size = 512;
  const std::string prompt = render_chat({{"user", {kImage, text("Describe the image.")}}}, true);
  for (const auto& s : cases()["sizes"]) {
    const int w = s["w"].get<int>(), h = s["h"].get<int>();
    SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h));
    Image img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3, 128)};
    const ProcessedImage p = preprocess_image(img, real);
    EXPECT_EQ(p.rows, s["default"]["rows"].get<int>());
    EXPECT_EQ(p.cols, s["default"]["cols"].get<int>());
    const std::string expanded = expand_prompt(prompt, {{p.rows, p.cols}}, {}, 64);
    if (s.contains("expanded_prompt")) {
      EXPECT_EQ(expanded, s["expanded_prompt"].get<std::string>());
    }
    EXPECT_EQ(static_cast<int>(tokenizer().encode(expanded).size()), s["num_input_ids"].get<int>());
  }
}

TEST(VideoExpansion, MatchesRealProcessor) {
  const std::string prompt = render_chat({{"user", {kVideo, text("Summarize.")}}}, true);
  VideoSlot v{{0, 1, 2, 3, 4, 5}, 6.0};
  EXPECT_EQ(expand_prompt(prompt, {}, {v}, 64),
            cases()["video_expanded_prompt"].get<std::string>());
}

// A 10-frame and a 64-frame video at HF's defaults: the frames sampled, the template's video
// branch, the expanded prompt and its ids, against HF's template (node oracle), HF's processor
// (the numpy oracle) and HF's tokenizer (tools/make_video_prompt_vectors.py).
TEST(VideoExpansion, TenAndSixtyFourFramePromptsMatchHfIds) {
  const nlohmann::json j =
      nlohmann::json::parse(read_text_file(test::fixtures() + "/reference/video_prompts.json"));
  ASSERT_EQ(j["cases"].size(), 2u);
  for (const auto& c : j["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto indices = sample_frame_indices(c["total_frames"].get<int64_t>(),
                                              c["native_fps"].get<double>(), VideoSampling{});
    EXPECT_EQ(indices, c["indices"].get<std::vector<int>>());
    VideoSlot v;
    for (int i : indices) v.timestamps_s.push_back(i / c["native_fps"].get<double>());
    v.duration_s =
        static_cast<double>(c["total_frames"].get<int64_t>()) / c["native_fps"].get<double>();
    const std::string rendered =
        render_chat({{"user", {kVideo, text(c["question"].get<std::string>())}}}, true);
    EXPECT_EQ(rendered, c["rendered_template"].get<std::string>());
    const std::string prompt = expand_prompt(rendered, {}, {v}, c["image_seq_len"].get<int>());
    EXPECT_EQ(prompt, c["prompt"].get<std::string>());
    EXPECT_EQ(tokenizer().encode(prompt), c["input_ids"].get<std::vector<int32_t>>());
  }
}

TEST(VideoExpansion, DurationAndTimestampFormats) {
  VideoSlot v{{0.5, 75.0 * 60 + 3.9}, 3723.0};
  const std::string b = video_block(v, 1);
  EXPECT_NE(b.find("two frames from a 1:02:03 [H:MM:SS] video."), std::string::npos) << b;
  EXPECT_NE(b.find("Frame from 00:00:"), std::string::npos);
  EXPECT_NE(b.find("Frame from 75:03:"), std::string::npos);  // minutes are not folded into hours
}

TEST(NumberWords, AsNum2Words) {
  EXPECT_EQ(number_words(9), "nine");
  EXPECT_EQ(number_words(21), "twenty-one");
  EXPECT_EQ(number_words(64), "sixty-four");
  EXPECT_EQ(number_words(100), "one hundred");
  EXPECT_EQ(number_words(40), "forty");
}

TEST(ImageExpansion, CountMismatchesAreErrors) {
  EXPECT_THROW(expand_prompt("<image><image>", {{0, 0}}, {}, 4), Error);
  EXPECT_THROW(expand_prompt("no marker", {{0, 0}}, {}, 4), Error);
  EXPECT_THROW(expand_prompt("<video>", {}, {}, 4), Error);
  EXPECT_EQ(expand_prompt("a<image>b", {{0, 0}}, {}, 1),
            "a<fake_token_around_image><global-img><image><fake_token_around_image>b");
}

}  // namespace
}  // namespace smolvlm

namespace smolvlm {
namespace {

// The one splitter of the prompt's markers (ask -p, Chat's turns, the template's expansion).
TEST(Markers, SplitLeftToRightWithTheTextBetween) {
  const std::vector<MarkedPiece> p = split_markers("<image>a<video><image>b<imag");
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].kind, MarkedPiece::Kind::Image);
  EXPECT_EQ(p[1].kind, MarkedPiece::Kind::Text);
  EXPECT_EQ(p[1].text, "a");
  EXPECT_EQ(p[2].kind, MarkedPiece::Kind::Video);
  EXPECT_EQ(p[3].kind, MarkedPiece::Kind::Image);
  EXPECT_EQ(p[4].text, "b<imag");
  EXPECT_TRUE(split_markers("").empty());
  EXPECT_EQ(split_markers(std::string(100000, 'x') + "<video>").size(), 2u);
}

TEST(Markers, RemovedAlsoWhenRemovingOneJoinsAnother) {
  EXPECT_EQ(without_markers("a<image>b<video>c"), "abc");
  EXPECT_EQ(without_markers("<ima<image>ge>x<vi<image>deo>"), "x");
  EXPECT_EQ(without_markers("<<<image>image>image>!"), "!");
  EXPECT_EQ(without_markers("<image"), "<image");
}

}  // namespace
}  // namespace smolvlm
