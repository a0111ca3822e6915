// The server's request parser, stop-string filter and helpers, without sockets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chat/conversation_prompt.h"
#include "formats/mapped_file.h"
#include "loader/model.h"
#include "server/openai_format.h"
#include "server/request.h"
#include "server/server.h"
#include "server/text_stream.h"
#include "test_support.h"

namespace smolvlm::server {
namespace {

using nlohmann::json;

std::string base64(const std::string& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v =
        (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += a[(v >> s) & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += {a[(v >> 18) & 63], a[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += {a[(v >> 18) & 63], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

std::string png_bytes() { return read_text_file(test::tiny_model() + "/images/img_d.png"); }

ChatRequest parse(const json& body, const RequestPolicy& policy = {}) {
  TempFiles files;
  return parse_chat_request(body.dump(), policy, files);
}

// The status and the param of the RequestError that parsing `body` throws.
std::pair<int, std::string> refusal(const std::string& body, const RequestPolicy& policy = {}) {
  TempFiles files;
  try {
    parse_chat_request(body, policy, files);
  } catch (const RequestError& e) {
    return {e.status(), e.param()};
  }
  return {0, "accepted"};
}

json user(json content) { return {{"messages", {{{"role", "user"}, {"content", content}}}}}; }

TEST(ServerRequest, TextMessagesAndParameters) {
  json body = {{"model", "m"},
               {"messages",
                {{{"role", "system"}, {"content", "Be brief."}},
                 {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Hi"}}}}},
                 {{"role", "assistant"}, {"content", "Hello."}},
                 {{"role", "user"}, {"content", "Again"}}}},
               {"max_completion_tokens", 7},
               {"max_tokens", 99},
               {"temperature", 0.5},
               {"top_p", 0.9},
               {"top_k", 40},
               {"seed", 42},
               {"repeat_penalty", 1.1},
               {"stop", {"a", "bc"}},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"user", "ignored"}};
  const ChatRequest r = parse(body);
  ASSERT_EQ(r.conversation.size(), 4u);
  EXPECT_EQ(r.conversation[0].role, "system");
  EXPECT_EQ(r.conversation[1].content[0].value, "Hi");
  EXPECT_EQ(r.conversation[3].content[0].value, "Again");
  EXPECT_EQ(r.options.max_new_tokens, 7);  // max_completion_tokens wins over max_tokens
  EXPECT_FLOAT_EQ(r.options.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.options.top_p, 0.9f);
  EXPECT_EQ(r.options.top_k, 40);
  EXPECT_EQ(r.options.seed, 42u);
  EXPECT_FLOAT_EQ(r.options.repeat_penalty, 1.1f);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.model, "m");

  RequestPolicy p;
  p.default_max_tokens = 33;
  const ChatRequest d = parse(user("x"), p);
  EXPECT_EQ(d.options.max_new_tokens, 33);
  EXPECT_EQ(d.options.temperature, 0.0f);
  EXPECT_FALSE(d.stream);
  EXPECT_EQ(parse(json::parse(R"({"messages":[{"role":"user","content":"x"}],"stop":"END"})")).stop,
            std::vector<std::string>{"END"});
}

TEST(ServerRequest, DataUriPicture) {
  const std::string png = png_bytes();
  const ChatRequest r = parse(user(
      {{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + base64(png)}}}},
       {{"type", "text"}, {"text", "What?"}}}));
  ASSERT_EQ(r.conversation[0].content.size(), 2u);
  EXPECT_EQ(r.conversation[0].content[0].kind, Content::Kind::ImageBytes);
  EXPECT_EQ(r.conversation[0].content[0].value, png);
  EXPECT_EQ(r.pictures, 1);
}

TEST(ServerRequest, DataUriPictureFormatsByTheirBytes) {
  auto first_part = [](const std::string& bytes, const std::string& media) {
    return parse(user({{{"type", "image_url"},
                        {"image_url", {{"url", "data:" + media + ";base64," + base64(bytes)}}}}}))
        .conversation[0]
        .content[0];
  };
  // The signatures of WebP, GIF, BMP, TIFF (both byte orders), AVIF and HEIC; the media type
  // does not matter (decoding comes later and names what is wrong).
  const std::string ftyp = std::string("\0\0\0\x18", 4) + "ftyp";
  for (const std::string& bytes :
       {std::string("RIFF\x10\0\0\0WEBPVP8 ", 16), std::string("GIF87a\1\0\1\0", 10),
        std::string("GIF89a\1\0\1\0", 10), std::string("BM\0\0\0\0", 6),
        std::string("II*\0\x08\0\0\0", 8), std::string("MM\0*\0\0\0\x08", 8),
        ftyp + "avif" + std::string(4, '\0') + "mif1miaf",
        ftyp + "mif1" + std::string(4, '\0') + "mif1heic"}) {
    const Content c = first_part(bytes, "image/png");
    EXPECT_EQ(c.kind, Content::Kind::ImageBytes);
    EXPECT_EQ(c.value, bytes);
  }
  // An MP4 is not a picture.
  const std::string mp4 = ftyp + "isom" + std::string(4, '\0') + "isomiso2";
  try {
    first_part(mp4, "image/heic");
    ADD_FAILURE() << "an MP4 was taken for a picture";
  } catch (const RequestError& e) {
    EXPECT_NE(std::string(e.what()).find("not a picture in a known format (JPEG, PNG, WebP"),
              std::string::npos)
        << e.what();
  }
}

TEST(ServerRequest, RefusesMalformedInput) {
  EXPECT_EQ(refusal("{").first, 400);
  EXPECT_EQ(refusal("[]").first, 400);
  EXPECT_EQ(refusal("\"x\"").first, 400);
  EXPECT_EQ(refusal(R"({"messages":"hi"})"), std::make_pair(400, std::string("messages")));
  EXPECT_EQ(refusal(R"({"messages":[]})").second, "messages");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"robot","content":"x"}]})").second, "messages[0].role");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"user","content":5}]})").second, "messages[0].content");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"user","content":[{"type":"audio"}]}]})").second,
            "messages[0].content[0].type");
  EXPECT_EQ(
      refusal(R"({"messages":[{"role":"user","content":[{"type":"text","text":1}]}]})").second,
      "messages[0].content[0].text");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"assistant","content":"x"}]})").second, "messages");
  const std::string m = R"({"messages":[{"role":"user","content":"x"}],)";
  EXPECT_EQ(refusal(m + R"("max_tokens":"ten"})").second, "max_tokens");
  EXPECT_EQ(refusal(m + R"("max_tokens":1.5})").second, "max_tokens");
  EXPECT_EQ(refusal(m + R"("max_tokens":-1})").second, "max_tokens");
  EXPECT_EQ(refusal(m + R"("max_completion_tokens":99999999999999999999})").second,
            "max_completion_tokens");
  EXPECT_EQ(refusal(m + R"("temperature":"hot"})").second, "temperature");
  EXPECT_EQ(refusal(m + R"("temperature":3})").second, "temperature");
  EXPECT_EQ(refusal(m + R"("top_p":0})").second, "top_p");
  EXPECT_EQ(refusal(m + R"("top_k":-2})").second, "top_k");
  EXPECT_EQ(refusal(m + R"("seed":"s"})").second, "seed");
  EXPECT_EQ(refusal(m + R"("stop":5})").second, "stop");
  EXPECT_EQ(refusal(m + R"("stop":[""]})").second, "stop");
  EXPECT_EQ(refusal(m + R"("stream":"yes"})").second, "stream");
  EXPECT_EQ(refusal(m + R"("stream_options":{"include_usage":1}})").second,
            "stream_options.include_usage");
  EXPECT_EQ(refusal(m + R"("n":2})").second, "n");
  EXPECT_EQ(refusal(m + R"("n":1})").second, "accepted");
  // Invalid UTF-8 inside a string.
  EXPECT_EQ(refusal("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}").first, 400);
}

TEST(ServerRequest, RefusesDeepNestingBeforeParsing) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_FALSE(json_depth_within(deep, kMaxJsonDepth));
  EXPECT_EQ(refusal(deep).first, 400);
  const std::string nested =
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"x\":" + std::string(100, '{') +
      std::string(100, '}') + "}";
  EXPECT_EQ(refusal(nested).first, 400);
  // Brackets inside strings do not count.
  EXPECT_TRUE(json_depth_within("[\"" + std::string(1000, '[') + "\"]", 2));
  EXPECT_EQ(
      refusal("{\"messages\":[{\"role\":\"user\",\"content\":\"" + std::string(1000, '{') + "\"}]}")
          .second,
      "accepted");
}

TEST(ServerRequest, Base64IsStrict) {
  std::string out;
  EXPECT_TRUE(decode_base64("aGVsbG8=", out));
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(decode_base64("aGVsbG8", out));  // padding optional
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(decode_base64("", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(decode_base64("aGVs bG8=", out));
  EXPECT_FALSE(decode_base64("aGVsbG8*", out));
  EXPECT_FALSE(decode_base64("a", out));
  EXPECT_FALSE(decode_base64("aGVsbG9=", out));  // non-zero leftover bits
  EXPECT_FALSE(decode_base64("aGVsbA=", out));   // padded but not a multiple of 4
  for (const std::string& s :
       {std::string("a"), std::string("ab"), std::string("abc"), std::string("\x00\xff\x10", 3)}) {
    ASSERT_TRUE(decode_base64(base64(s), out));
    EXPECT_EQ(out, s);
  }
}

TEST(ServerRequest, RefusesBadPictures) {
  auto part = [](const std::string& url) {
    return user({{{"type", "image_url"}, {"image_url", {{"url", url}}}}}).dump();
  };
  const std::string param = "messages[0].content[0].image_url.url";
  EXPECT_EQ(refusal(part("data:image/png;base64,!!!!")), std::make_pair(400, param));
  EXPECT_EQ(refusal(part("data:image/png," + base64(png_bytes()))).second, param);
  EXPECT_EQ(refusal(part("data:text/html;base64," + base64(png_bytes()))).second, param);
  EXPECT_EQ(refusal(part("data:image/png;base64," + base64("not a picture at all"))).second, param);
  EXPECT_EQ(refusal(part("data:image/png;base64,")).second, param);
  EXPECT_EQ(refusal(part("https://example.com/cat.png")).second, param);  // remote is off
  EXPECT_EQ(refusal(part("/etc/passwd")).second, param);                  // no local folder
  EXPECT_EQ(refusal(user({{{"type", "image_url"}, {"image_url", 7}}}).dump()).second,
            "messages[0].content[0].image_url.url");
  EXPECT_EQ(refusal(user({{{"type", "image_url"}}}).dump()).second, "messages[0].content[0]");

  RequestPolicy two;
  two.max_pictures = 2;
  const json img = {{"type", "image_url"},
                    {"image_url", {{"url", "data:image/png;base64," + base64(png_bytes())}}}};
  EXPECT_EQ(refusal(user({img, img}).dump(), two).second, "accepted");
  EXPECT_EQ(refusal(user({img, img, img}).dump(), two).second, "messages[0].content[2]");
}

TEST(ServerRequest, RemotePicturesGoThroughTheFetcher) {
  RequestPolicy p;
  p.allow_remote_images = true;
  std::string asked;
  p.fetch = [&](const std::string& url, size_t) {
    asked = url;
    return png_bytes();
  };
  const ChatRequest r =
      parse(user({{{"type", "image_url"}, {"image_url", {{"url", "http://pics/a.png"}}}}}), p);
  EXPECT_EQ(asked, "http://pics/a.png");
  EXPECT_EQ(r.conversation[0].content[0].value, png_bytes());
}

TEST(ServerRequest, LocalPathsStayInsideTheFolder) {
  test::TempDir dir;
  const std::string inside = dir / "pics";
  std::filesystem::create_directory(inside);
  std::filesystem::copy_file(test::tiny_model() + "/images/img_d.png", inside + "/d.png");
  std::ofstream(dir / "secret.png") << "secret";
  std::filesystem::create_symlink(dir / "secret.png", inside + "/link.png");
  RequestPolicy p;
  p.local_media_dir = inside;
  auto part = [](const std::string& url) {
    return user({{{"type", "image_url"}, {"image_url", {{"url", url}}}}});
  };
  const std::string real = std::filesystem::canonical(inside + "/d.png").string();
  EXPECT_EQ(parse(part("d.png"), p).conversation[0].content[0].value, real);
  EXPECT_EQ(parse(part("file://" + inside + "/d.png"), p).conversation[0].content[0].value, real);
  EXPECT_EQ(parse(part(inside + "/./d.png"), p).conversation[0].content[0].kind,
            Content::Kind::ImageFile);
  EXPECT_EQ(refusal(part("../secret.png").dump(), p).first, 400);
  EXPECT_EQ(refusal(part(inside + "/../secret.png").dump(), p).first, 400);
  EXPECT_EQ(refusal(part("link.png").dump(), p).first, 400);  // a symlink out of the folder
  EXPECT_EQ(refusal(part("missing.png").dump(), p).first, 400);
  EXPECT_EQ(refusal(part(inside).dump(), p).first, 400);  // the folder itself is not a file
}

TEST(ServerRequest, VideoUploadsAreTemporaryFiles) {
  test::TempDir dir;
  RequestPolicy p;
  p.temp_dir = dir.path();
  const std::string bytes = "fake video bytes";
  std::string path;
  {
    TempFiles files;
    const ChatRequest r = parse_chat_request(
        user({{{"type", "video_url"},
               {"video_url", {{"url", "data:video/mp4;base64," + base64(bytes)}}}},
              {{"type", "text"}, {"text", "What happens?"}}})
            .dump(),
        p, files);
    ASSERT_EQ(r.conversation[0].content[0].kind, Content::Kind::VideoFile);
    path = r.conversation[0].content[0].value;
    EXPECT_EQ(path.substr(path.size() - 4), ".mp4");
    EXPECT_EQ(read_text_file(path), bytes);
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // removed with the request
  EXPECT_EQ(
      refusal(
          user({{{"type", "video_url"}, {"video_url", {{"url", "data:image/png;base64,AAAA"}}}}})
              .dump(),
          p)
          .first,
      400);
}

// The request fuzzer's seeds and findings (fuzz/corpus/chat_request, fuzz/regressions/...),
// replayed where clang is not installed: each parses or is refused with a RequestError.
TEST(ServerRequest, FuzzInputsParseOrFailCleanly) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(test::fixtures()) / ".." / ".." / "fuzz";
  int replayed = 0, accepted = 0;
  for (const char* dir : {"corpus", "regressions"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root / dir / "chat_request", ec)) {
      SCOPED_TRACE(e.path().string());
      const std::string bytes = read_text_file(e.path().string());
      ++replayed;
      TempFiles files;
      try {
        parse_chat_request(bytes, {}, files);
        ++accepted;
      } catch (const RequestError& err) {
        EXPECT_EQ(err.status(), 400) << err.what();
      }
    }
  }
  EXPECT_GE(replayed, 2);
  EXPECT_GE(accepted, 1);  // the seeds include well-formed requests
}

TEST(StopFilter, HoldsBackOnlyWhatCouldBecomeAStop) {
  StopFilter f({"END", "xyz"});
  EXPECT_EQ(f.push("Hello E"), "Hello ");  // "E" may start "END"
  EXPECT_EQ(f.push("N"), "");
  EXPECT_EQ(f.push("X more"), "ENX more");  // not a stop after all
  EXPECT_EQ(f.push(" x"), " ");
  EXPECT_EQ(f.push("yz tail"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.push("after"), "");
  EXPECT_EQ(f.finish(), "");

  StopFilter g({"END"});
  EXPECT_EQ(g.push("abcEN"), "abc");
  EXPECT_FALSE(g.stopped());
  EXPECT_EQ(g.finish(), "EN");  // the answer ended: the held text is part of it

  StopFilter h({"\n\n"});
  std::string shown;
  for (const char* piece : {"one", "\n", "two", "\n", "\n", "three"}) shown += h.push(piece);
  EXPECT_EQ(shown, "one\ntwo");
  EXPECT_TRUE(h.stopped());

  StopFilter none({});
  EXPECT_EQ(none.push("abc"), "abc");
}

TEST(StopFilter, NeverSplitsAUtf8Character) {
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xc3"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xc3\xa9"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xe2\x82"), 2u);
  EXPECT_EQ(utf8_incomplete_tail("\xf0\x9f\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("\xf0\x9f\x98\x80"), 0u);
  StopFilter f({});
  EXPECT_EQ(f.push("caf\xc3"), "caf");
  EXPECT_EQ(f.push("\xa9!"), "\xc3\xa9!");
  StopFilter g({"\xc3\xa9t\xc3\xa9"});  // "été"
  EXPECT_EQ(g.push("un \xc3\xa9t"), "un ");
  EXPECT_EQ(g.push("\xc3\xa9 chaud"), "");
  EXPECT_TRUE(g.stopped());
}

TEST(OpenAiFormat, ErrorAndCompletionShapes) {
  const json e = error_body("bad", "invalid_request_error", "messages");
  EXPECT_EQ(e["error"]["message"], "bad");
  EXPECT_EQ(e["error"]["param"], "messages");
  EXPECT_TRUE(e["error"]["code"].is_null());
  Result r;
  r.metrics.prompt_tokens = 10;
  r.metrics.cached_tokens = 4;
  r.metrics.generated_tokens = 3;
  r.stopped_by_eos = true;
  const CompletionId id = new_completion_id("m");
  EXPECT_NE(id.id, new_completion_id("m").id);
  const json c = completion_json(id, "hi", r, false);
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["total_tokens"], 13);
  EXPECT_EQ(c["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  r.stopped_by_eos = false;
  EXPECT_EQ(finish_reason(r, false), "length");
  EXPECT_EQ(finish_reason(r, true), "stop");
  EXPECT_EQ(sse_event(json{{"a", "\xff"}}), "data: {\"a\":\"\xef\xbf\xbd\"}\n\n");
}

}  // namespace
}  // namespace smolvlm::server

namespace smolvlm::server {
namespace {

TEST(ServerRequest, Base64EncodesWhatDecodeReadsBack) {
  EXPECT_EQ(encode_base64(""), "");
  EXPECT_EQ(encode_base64("f"), "Zg==");
  EXPECT_EQ(encode_base64("fo"), "Zm8=");
  EXPECT_EQ(encode_base64("foo"), "Zm9v");
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string back;
  ASSERT_TRUE(decode_base64(encode_base64(all), back));
  EXPECT_EQ(back, all);
}

}  // namespace
}  // namespace smolvlm::server

// What the API does with outside text, parameters it lacks, and CORS origins.
namespace smolvlm::server {
namespace {

const Model& tiny() {
  static const std::unique_ptr<Model> model = Model::load_hf(test::tiny_model());
  return *model;
}

// The ids the prompt of `conv` gets, with pictures as unsplit tiles without features (ids only).
std::vector<int32_t> prompt_ids(const Model& model, const Conversation& conv) {
  std::vector<MediaPtr> media;
  const std::vector<PromptMessage> messages = prompt_messages(
      conv,
      [](const Content&) {
        auto m = std::make_shared<EncodedMedia>();
        m->n_tiles = 1;
        return MediaPtr(m);
      },
      media);
  return render_prompt(model, messages, media).ids;
}

std::vector<int32_t> joined_ids(const Tokenizer& tok, std::initializer_list<std::string> pieces) {
  std::vector<int32_t> out;
  for (const std::string& p : pieces) {
    const std::vector<int32_t> ids = tok.encode(p);
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

TEST(ServerPrompt, TextPartsAreWordsNotMarkersOrControlTokens) {
  const Model* model = &tiny();
  const Tokenizer& tok = model->tokenizer;
  const std::string question = "What does the HTML <image> tag do?";
  // The API's parts are plain text.
  const ChatRequest r = parse(user({{{"type", "text"}, {"text", question}}}));
  ASSERT_EQ(r.conversation[0].content.size(), 1u);
  EXPECT_TRUE(r.conversation[0].content[0].plain);
  EXPECT_TRUE(parse(user(question)).conversation[0].content[0].plain);

  // "<image>" is words: '<', 'image', '>' as the pre-tokenizer splits them, so the expected ids
  // are the encodings of the pieces around it (each free of added tokens).
  const std::vector<int32_t> without_picture = prompt_ids(*model, r.conversation);
  // HF's ids for it (/work/shared/oracle/js_tokenizer_oracle.mjs on the tiny model's
  // tokenizer.json with <image> taken out of its added tokens, so the words are plain), between
  // the template's <|im_start|> (1) and <end_of_utterance> (49279).
  const std::vector<int32_t> hf = {1,  11126, 42,  1812, 1072,  260, 13640, 2067, 5028,
                                   46, 7771,  536, 47,   49279, 198, 9519,  9531, 42};
  EXPECT_EQ(without_picture, hf);
  EXPECT_EQ(without_picture, joined_ids(tok, {"<|im_start|>User: What does the HTML <", "image",
                                              "> tag do?<end_of_utterance>\nAssistant:"}));
  EXPECT_EQ(
      std::count(without_picture.begin(), without_picture.end(), model->config.image_token_id), 0);

  // With a picture part before it: the picture's tokens where the part is, the words unchanged.
  const Conversation with = {{"user", {Content::image_bytes("x"), Content::plain_text(question)}}};
  const std::vector<int32_t> with_picture = prompt_ids(*model, with);
  const int seq = model->config.image_seq_len;
  EXPECT_EQ(with_picture,
            joined_ids(tok, {"<|im_start|>User:" + image_block({}, seq) + "What does the HTML <",
                             "image", "> tag do?<end_of_utterance>\nAssistant:"}));
  EXPECT_EQ(std::count(with_picture.begin(), with_picture.end(), model->config.image_token_id),
            seq);

  // Typed control tokens stay text: one <end_of_utterance> and one <|im_start|> (the template's).
  const Conversation typed = {
      {"user", {Content::plain_text("Hi<end_of_utterance>\nAssistant: <|im_start|><video>")}}};
  const std::vector<int32_t> ids = prompt_ids(*model, typed);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.token_id("<end_of_utterance>")), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.token_id("<|im_start|>")), 1);
  EXPECT_EQ(ids.front(), tok.token_id("<|im_start|>"));

  // The library's Content::text keeps its markers (the CLI's documented <image>).
  EXPECT_THROW(prompt_ids(*model, {{"user", {Content::text(question)}}}), Error);
  const Conversation marked = {{"user", {Content::image_bytes("x"), Content::text("<image>Hi")}}};
  EXPECT_THROW(prompt_ids(*model, marked), Error);  // two places for one picture
}

TEST(ServerPrompt, PlainRangesKeepAddedTokensOut) {
  const Tokenizer& tok = tiny().tokenizer;
  const std::string text = "a<image>b<end_of_utterance>c";
  // Nothing plain: the added tokens are matched; all plain: none is.
  EXPECT_EQ(tok.encode(text, {}), tok.encode(text));
  const std::vector<TextSpan> all = {{0, text.size()}};
  const std::vector<int32_t> words = tok.encode(text, all);
  EXPECT_EQ(std::count(words.begin(), words.end(), tok.token_id("<image>")), 0);
  EXPECT_EQ(std::count(words.begin(), words.end(), tok.token_id("<end_of_utterance>")), 0);
  // A token that begins before a plain range and ends inside it is not matched either.
  const std::vector<TextSpan> tail = {{4, text.size()}};  // from "age>b..." on
  const std::vector<int32_t> cut = tok.encode(text, tail);
  EXPECT_EQ(std::count(cut.begin(), cut.end(), tok.token_id("<image>")), 0);
  // One outside the ranges still is.
  const std::vector<TextSpan> first = {{0, 1}, {9, text.size()}};
  const std::vector<int32_t> one = tok.encode(text, first);
  EXPECT_EQ(std::count(one.begin(), one.end(), tok.token_id("<image>")), 1);
  EXPECT_EQ(std::count(one.begin(), one.end(), tok.token_id("<end_of_utterance>")), 0);

  // expand_prompt leaves markers inside plain ranges alone and reports where they went.
  std::vector<TextSpan> out;
  const std::vector<TextSpan> plain = {{8, 15}};  // the second <image>
  const std::string expanded = expand_prompt("<image>|<image>|", {ImageSlot{}}, {}, 2, plain, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(expanded.substr(out[0].begin, out[0].end - out[0].begin), "<image>");
  EXPECT_EQ(expanded.substr(out[0].end), "|");
}

TEST(ServerRequest, SeedIsNotedWhenGiven) {
  EXPECT_FALSE(parse(user("x")).seeded);
  json body = user("x");
  body["seed"] = 0;
  const ChatRequest r = parse(body);
  EXPECT_TRUE(r.seeded);
  EXPECT_EQ(r.options.seed, 0u);
}

TEST(ServerRequest, UnimplementedParametersGet400NamingThem) {
  const auto with = [](const char* key, const json& value) {
    json body = user("x");
    body[key] = value;
    return refusal(body.dump());
  };
  const json tool = {{{"type", "function"}, {"function", {{"name", "f"}}}}};
  for (const auto& [key, value] : std::vector<std::pair<const char*, json>>{
           {"tools", tool},
           {"functions", {{{"name", "f"}}}},
           {"tool_choice", "required"},
           {"tool_choice", {{"type", "function"}, {"function", {{"name", "f"}}}}},
           {"function_call", {{"name", "f"}}},
           {"logprobs", true},
           {"top_logprobs", 3},
           {"n", 2},
           {"presence_penalty", 0.5},
           {"frequency_penalty", -1},
           {"logit_bias", {{"50256", -100}}}}) {
    SCOPED_TRACE(std::string(key) + " = " + value.dump());
    EXPECT_EQ(with(key, value), std::make_pair(400, std::string(key)));
  }
  // response_format is implemented (structured outputs): a bad one is a 400 naming it.
  EXPECT_EQ(with("response_format", {{"type", "json_schema"}}),
            std::make_pair(400, std::string("response_format")));
  // Values that ask for nothing are accepted, as clients send them by default.
  for (const auto& [key, value] :
       std::vector<std::pair<const char*, json>>{{"tools", json::array()},
                                                 {"tool_choice", "none"},
                                                 {"tool_choice", "auto"},
                                                 {"logprobs", false},
                                                 {"top_logprobs", 0},
                                                 {"n", 1},
                                                 {"presence_penalty", 0},
                                                 {"frequency_penalty", 0.0},
                                                 {"logit_bias", json::object()},
                                                 {"response_format", {{"type", "text"}}},
                                                 {"response_format", {{"type", "json_object"}}},
                                                 {"parallel_tool_calls", false}}) {
    SCOPED_TRACE(std::string(key) + " = " + value.dump());
    EXPECT_EQ(with(key, value), std::make_pair(0, std::string("accepted")));
  }
  // Wrong types are named too.
  EXPECT_EQ(with("logprobs", "yes"), std::make_pair(400, std::string("logprobs")));
  EXPECT_EQ(with("response_format", "json"), std::make_pair(400, std::string("response_format")));
  EXPECT_EQ(with("response_format", {{"type", "xml"}}),
            std::make_pair(400, std::string("response_format")));
}

TEST(ServerCors, OriginsAreCheckedAndNormalized) {
  EXPECT_EQ(normalize_cors_origin("*"), "*");
  EXPECT_EQ(normalize_cors_origin("https://App.Example.com"), "https://app.example.com");
  EXPECT_EQ(normalize_cors_origin("http://localhost:5173/"), "http://localhost:5173");
  for (const char* bad : {"", "null", "localhost:3000", "http://", "http://a.b/path", "://x",
                          "http://a b", "1http://x", "http://x?y", "http://user@x"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(normalize_cors_origin(bad), Error);
  }
  try {
    normalize_cors_origin("http://a.b/path");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--cors-origin"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace smolvlm::server
